//! `check_vec_env`: the conformance checker every environment runs in its tests.

use quantrl_core::{Actions, Rng, Space, StepBatch, VecEnv};
use thiserror::Error;

/// A way an environment broke the [`VecEnv`] contract.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EnvCheckError {
    /// A space is malformed (empty, inverted bounds, zero choices).
    #[error("{which} space is malformed: {reason}")]
    BadSpace {
        /// `observation` or `action`.
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An observation that is NaN or outside the observation space.
    #[error("step {step}, env {env}: observation {obs:?} is outside the observation space")]
    ObsOutOfSpace {
        /// Step index (0 = after reset).
        step: usize,
        /// Environment index.
        env: usize,
        /// The observation.
        obs: Vec<f32>,
    },
    /// A final observation that is NaN or outside the observation space.
    #[error("step {step}, env {env}: final observation {obs:?} is outside the observation space")]
    FinalObsOutOfSpace {
        /// Step index.
        step: usize,
        /// Environment index.
        env: usize,
        /// The observation.
        obs: Vec<f32>,
    },
    /// A NaN or infinite reward.
    #[error("step {step}, env {env}: reward {reward} is not finite")]
    NonFiniteReward {
        /// Step index.
        step: usize,
        /// Environment index.
        env: usize,
        /// The reward.
        reward: f32,
    },
    /// An action mask with no allowed action (per discrete component).
    #[error("step {step}, env {env}: the action mask allows no action")]
    EmptyMask {
        /// Step index.
        step: usize,
        /// Environment index.
        env: usize,
    },
    /// The environment says it has masks but the batch holds none, or the reverse.
    #[error("action masks: {0}")]
    MaskPresence(String),
    /// An environment rejected an action inside its space (and allowed by its mask).
    #[error("step {step}: a valid action was rejected: {error}")]
    RejectedValidAction {
        /// Step index.
        step: usize,
        /// The environment's error.
        error: String,
    },
    /// An action outside the action space was accepted.
    #[error("an action outside the action space was accepted")]
    AcceptedInvalidAction,
    /// Two runs from the same seed with the same actions differ.
    #[error("not reproducible: runs from seed {seed} differ at step {step}")]
    NotDeterministic {
        /// The seed.
        seed: u64,
        /// First differing step.
        step: usize,
    },
    /// The batch buffers have the wrong size.
    #[error("batch buffers have the wrong size: {0}")]
    BufferSize(String),
}

/// What [`check_vec_env`] saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Steps taken (per environment).
    pub steps: usize,
    /// Episodes that ended by termination.
    pub terminations: usize,
    /// Episodes that ended by truncation.
    pub truncations: usize,
}

fn check_space(which: &'static str, space: &Space) -> Result<(), EnvCheckError> {
    let bad = |reason: &str| EnvCheckError::BadSpace {
        which,
        reason: reason.to_string(),
    };
    match space {
        Space::Discrete { n } if *n == 0 => Err(bad("Discrete(0)")),
        Space::MultiDiscrete { nvec } if nvec.is_empty() || nvec.contains(&0) => {
            Err(bad("MultiDiscrete with no or zero-sized components"))
        }
        Space::Box { low, high } => {
            if low.is_empty() || low.len() != high.len() {
                Err(bad("Box bounds empty or of different lengths"))
            } else if low
                .iter()
                .zip(high)
                .any(|(l, h)| l.is_nan() || h.is_nan() || l > h)
            {
                Err(bad("Box with NaN or inverted bounds"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Draw an action per environment, honouring masks where present.
fn draw_actions(
    space: &Space,
    batch: &StepBatch,
    rng: &mut Rng,
    ints: &mut [u32],
    floats: &mut [f32],
) {
    let n = batch.num_envs;
    match space {
        Space::Box { .. } => {
            let d = space.flat_dim();
            for i in 0..n {
                space.sample_box(rng, &mut floats[i * d..(i + 1) * d]);
            }
        }
        Space::Discrete { n: k } => {
            for i in 0..n {
                ints[i] = match &batch.action_masks {
                    Some(m) => {
                        let row = &m[i * k..(i + 1) * k];
                        let w: Vec<f32> = row.iter().map(|&b| b as u8 as f32).collect();
                        rng.categorical(&w) as u32
                    }
                    None => rng.below(*k as u64) as u32,
                };
            }
        }
        Space::MultiDiscrete { nvec } => {
            let d = nvec.len();
            let total: usize = nvec.iter().sum();
            for i in 0..n {
                let mut off = 0;
                for (c, &k) in nvec.iter().enumerate() {
                    ints[i * d + c] = match &batch.action_masks {
                        Some(m) => {
                            let row = &m[i * total + off..i * total + off + k];
                            let w: Vec<f32> = row.iter().map(|&b| b as u8 as f32).collect();
                            rng.categorical(&w) as u32
                        }
                        None => rng.below(k as u64) as u32,
                    };
                    off += k;
                }
            }
        }
    }
}

fn check_batch(
    space: &Space,
    batch: &StepBatch,
    step: usize,
    action_space: &Space,
) -> Result<(), EnvCheckError> {
    let d = batch.obs_dim;
    for i in 0..batch.num_envs {
        let obs = batch.obs_of(i);
        if !space.contains_f32(obs) {
            return Err(EnvCheckError::ObsOutOfSpace {
                step,
                env: i,
                obs: obs.to_vec(),
            });
        }
        if step > 0 {
            let r = batch.rewards[i];
            if !r.is_finite() {
                return Err(EnvCheckError::NonFiniteReward {
                    step,
                    env: i,
                    reward: r,
                });
            }
            if batch.done(i) {
                let f = &batch.final_obs[i * d..(i + 1) * d];
                if !space.contains_f32(f) {
                    return Err(EnvCheckError::FinalObsOutOfSpace {
                        step,
                        env: i,
                        obs: f.to_vec(),
                    });
                }
            }
        }
        if let Some(m) = &batch.action_masks {
            let blocks: Vec<usize> = match action_space {
                Space::Discrete { n } => vec![*n],
                Space::MultiDiscrete { nvec } => nvec.clone(),
                Space::Box { .. } => vec![],
            };
            let total: usize = blocks.iter().sum();
            let mut off = 0;
            for k in blocks {
                if !m[i * total + off..i * total + off + k].iter().any(|&b| b) {
                    return Err(EnvCheckError::EmptyMask { step, env: i });
                }
                off += k;
            }
        }
    }
    Ok(())
}

/// Run `steps` random (mask-respecting) steps on two environments built by `make` and check
/// the [`VecEnv`] contract: well-formed spaces, buffer sizes, observations and final
/// observations inside the observation space and never NaN, finite rewards, non-empty masks,
/// valid actions accepted, an out-of-space action refused, and the same trajectory from the
/// same seed.
///
/// ```
/// use quantrl_envs::{check_vec_env, CartPole, CartPoleConfig};
/// let report = check_vec_env(|| CartPole::new(CartPoleConfig::default()), 600, 7).unwrap();
/// assert!(report.terminations > 0);
/// ```
pub fn check_vec_env<E: VecEnv>(
    make: impl Fn() -> E,
    steps: usize,
    seed: u64,
) -> Result<CheckReport, EnvCheckError> {
    let mut a = make();
    let mut b = make();
    check_space("observation", a.observation_space())?;
    check_space("action", a.action_space())?;
    if !matches!(a.observation_space(), Space::Box { .. }) {
        return Err(EnvCheckError::BadSpace {
            which: "observation",
            reason: "must be a Box".into(),
        });
    }
    let n = a.num_envs();
    if n == 0 {
        return Err(EnvCheckError::BufferSize("num_envs is 0".into()));
    }
    let obs_space = a.observation_space().clone();
    let act_space = a.action_space().clone();
    let mut ba = StepBatch::for_env(&a);
    let mut bb = StepBatch::for_env(&b);
    if a.has_action_masks() != ba.action_masks.is_some() {
        return Err(EnvCheckError::MaskPresence(
            "has_action_masks disagrees with the action space".into(),
        ));
    }
    a.reset(Some(seed), &mut ba);
    b.reset(Some(seed), &mut bb);
    if ba.obs.len() != n * obs_space.flat_dim() {
        return Err(EnvCheckError::BufferSize(format!(
            "obs has {} floats",
            ba.obs.len()
        )));
    }
    check_batch(&obs_space, &ba, 0, &act_space)?;
    if ba.obs != bb.obs {
        return Err(EnvCheckError::NotDeterministic { seed, step: 0 });
    }

    // An out-of-space action must be refused (discrete spaces only: boxes may clip).
    if let Space::Discrete { n: k } = act_space {
        let mut c = make();
        let mut bc = StepBatch::for_env(&c);
        c.reset(Some(seed), &mut bc);
        let bad = vec![k as u32; n];
        if c.step(Actions::Discrete(&bad), &mut bc).is_ok() {
            return Err(EnvCheckError::AcceptedInvalidAction);
        }
    }

    let mut rng = Rng::seed_from_u64(seed ^ 0xC0FFEE);
    let mut ints = vec![0u32; n * act_space.flat_dim()];
    let mut floats = vec![0f32; n * act_space.flat_dim()];
    let mut report = CheckReport::default();
    for step in 1..=steps {
        draw_actions(&act_space, &ba, &mut rng, &mut ints, &mut floats);
        let actions = match act_space {
            Space::Box { .. } => Actions::Continuous(&floats),
            _ => Actions::Discrete(&ints),
        };
        a.step(actions, &mut ba)
            .map_err(|e| EnvCheckError::RejectedValidAction {
                step,
                error: e.to_string(),
            })?;
        b.step(actions, &mut bb)
            .map_err(|e| EnvCheckError::RejectedValidAction {
                step,
                error: e.to_string(),
            })?;
        check_batch(&obs_space, &ba, step, &act_space)?;
        let same = ba.obs == bb.obs
            && ba.rewards == bb.rewards
            && ba.terminated == bb.terminated
            && ba.truncated == bb.truncated
            && ba.action_masks == bb.action_masks;
        if !same {
            return Err(EnvCheckError::NotDeterministic { seed, step });
        }
        report.terminations += ba.terminated.iter().filter(|&&t| t).count();
        report.truncations += ba
            .truncated
            .iter()
            .zip(&ba.terminated)
            .filter(|&(&t, &te)| t && !te)
            .count();
        report.steps = step;
    }
    Ok(report)
}

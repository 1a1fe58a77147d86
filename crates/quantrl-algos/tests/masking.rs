//! Action masks are honoured by PPO's rollouts and its loss: a masked action is never sampled
//! and training on mostly-masked action sets stays finite (no NaN from `log 0`).

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use quantrl_algos::{EncoderSettings, EvalConfig, PolicyNetwork, Ppo, TrainConfig};
use quantrl_core::{Actions, EnvError, Space, StepBatch, VecEnv};
use quantrl_nets::{ActorCritic, RecurrentActorCritic};

type B = Autodiff<NdArray<f32>>;

/// Each step allows 2 of 6 actions (one of them pays 1); a masked action is an error.
struct MaskedBandit {
    n: usize,
    t: Vec<u32>,
    obs_space: Space,
    act_space: Space,
}

impl MaskedBandit {
    fn allowed(t: u32) -> (usize, usize) {
        ((t % 6) as usize, ((t + 3) % 6) as usize)
    }
    fn write(&self, i: usize, batch: &mut StepBatch) {
        let (good, other) = Self::allowed(self.t[i]);
        batch.obs[i * 6..(i + 1) * 6]
            .iter_mut()
            .enumerate()
            .for_each(|(k, o)| *o = (k == good) as u8 as f32);
        let m = batch.action_masks.as_mut().unwrap();
        for k in 0..6 {
            m[i * 6 + k] = k == good || k == other;
        }
    }
}

impl VecEnv for MaskedBandit {
    fn num_envs(&self) -> usize {
        self.n
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn has_action_masks(&self) -> bool {
        true
    }
    fn reset(&mut self, _seed: Option<u64>, batch: &mut StepBatch) {
        for i in 0..self.n {
            self.t[i] = i as u32;
            self.write(i, batch);
        }
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        let Actions::Discrete(a) = actions else {
            unreachable!()
        };
        for i in 0..self.n {
            let (good, other) = Self::allowed(self.t[i]);
            let act = a[i] as usize;
            if act != good && act != other {
                return Err(EnvError::InvalidAction {
                    env: i,
                    action: act.to_string(),
                    space: "mask".into(),
                });
            }
            batch.rewards[i] = (act == good) as u8 as f32;
            self.t[i] += 1;
            let done = self.t[i].is_multiple_of(20);
            batch.terminated[i] = false;
            batch.truncated[i] = done;
            if done {
                batch.final_obs[i * 6..(i + 1) * 6].copy_from_slice(&batch.obs[i * 6..(i + 1) * 6]);
            }
            self.write(i, batch);
        }
        Ok(())
    }
    fn name(&self) -> &str {
        "MaskedBandit"
    }
}

#[test]
fn masked_actions_are_never_taken_and_training_stays_finite() {
    let env = MaskedBandit {
        n: 4,
        t: vec![0; 4],
        obs_space: Space::uniform_box(6, 0.0, 1.0),
        act_space: Space::Discrete { n: 6 },
    };
    let mut config = TrainConfig {
        total_steps: 4 * 64 * 30,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    config.ppo.n_envs = 4;
    config.ppo.n_steps = 64;
    config.ppo.batch_size = 64;
    config.ppo.n_epochs = 4;
    config.ppo.ent_coef = 0.01;
    let device = Default::default();
    let mut ppo = Ppo::<B, _>::new(config, env, &device).unwrap();
    let mut last = None;
    while !ppo.is_done() {
        // An invalid action would surface as Err(EnvError::InvalidAction); a NaN as Diverged.
        let stats = ppo.train_iteration().unwrap();
        assert!(
            stats.loss.is_finite() && stats.entropy_loss.is_finite(),
            "{stats:?}"
        );
        // The entropy of a 2-of-6 masked policy is at most ln 2.
        assert!(
            -stats.entropy_loss <= 2f64.ln() + 1e-4,
            "entropy counts masked actions: {}",
            -stats.entropy_loss
        );
        last = Some(stats);
    }
    // It learns to pick the paying action among the two allowed ones (random: 10 per episode).
    let (ret, _) = ppo.recent_episodes();
    assert!(
        ret > 16.0,
        "mean episode return {ret} after training; last update {last:?}"
    );
}

/// Counts the actions taken that the mask of the current step forbids.
struct MaskAudit<E> {
    inner: E,
    invalid: usize,
    steps: usize,
}

impl<E: VecEnv> VecEnv for MaskAudit<E> {
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn has_action_masks(&self) -> bool {
        self.inner.has_action_masks()
    }
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        self.inner.reset(seed, batch)
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        let Actions::Discrete(a) = actions else {
            unreachable!()
        };
        let k = self.action_space().n().unwrap();
        let m = batch.action_masks.as_ref().unwrap();
        self.invalid += a
            .iter()
            .enumerate()
            .filter(|&(i, &x)| !m[i * k + x as usize])
            .count();
        self.steps += a.len();
        self.inner.step(actions, batch)
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
}

/// sb3-contrib's `InvalidActionEnvDiscrete` (40 actions, 30 masked each step, 100-step
/// episodes): PPO with masks reaches the maximum return of 100 within 50k steps, and over
/// 10k evaluation steps never picks a masked action.
fn masked_identity_is_solved<M>(config: TrainConfig)
where
    M: PolicyNetwork<B> + AutodiffModule<B>,
    M::InnerModule: PolicyNetwork<NdArray<f32>>,
{
    use quantrl_envs::{MaskedIdentity, MaskedIdentityConfig};
    let make = |n| {
        MaskedIdentity::new(MaskedIdentityConfig {
            num_envs: n,
            ..Default::default()
        })
        .unwrap()
    };
    let device = Default::default();
    let mut ppo = Ppo::<B, _, M>::new(config, make(8), &device).unwrap();
    let mut eval_env = make(4);
    let last = ppo
        .learn(Some(&mut eval_env), &mut quantrl_algos::no_callback())
        .unwrap()
        .expect("evaluated");
    assert!(
        last.mean_return >= 100.0 - 1e-9 && ppo.num_timesteps <= 50_000,
        "mean return {} after {} steps",
        last.mean_return,
        ppo.num_timesteps
    );
    let mut audit = MaskAudit {
        inner: make(4),
        invalid: 0,
        steps: 0,
    };
    let stats = ppo.evaluate(&mut audit, 100, 7).unwrap();
    assert!(audit.steps >= 10_000, "{} evaluation steps", audit.steps);
    assert_eq!(audit.invalid, 0, "masked actions chosen at evaluation");
    assert!(
        (stats.mean_return - 100.0).abs() < 1e-9,
        "{}",
        stats.mean_return
    );
}

/// The distributional critic, twin critics and the CVaR objective go through the same mask
/// path: masked actions are never sampled, everything stays finite, and it still learns.
#[test]
fn distributional_ppo_with_cvar_honours_masks() {
    distributional_masked_bandit::<ActorCritic<B>>(None);
}

/// The same with a recurrent (GRU) policy and its quantile critic.
#[test]
fn recurrent_distributional_ppo_with_cvar_honours_masks() {
    distributional_masked_bandit::<RecurrentActorCritic<B>>(Some(EncoderSettings {
        hidden: 32,
        ..Default::default()
    }));
}

fn distributional_masked_bandit<M>(encoder: Option<EncoderSettings>)
where
    M: PolicyNetwork<B> + AutodiffModule<B>,
    M::InnerModule: PolicyNetwork<NdArray<f32>>,
{
    use quantrl_algos::{CvarPolicyConfig, DistributionalConfig};
    let env = MaskedBandit {
        n: 4,
        t: vec![0; 4],
        obs_space: Space::uniform_box(6, 0.0, 1.0),
        act_space: Space::Discrete { n: 6 },
    };
    let mut config = TrainConfig {
        total_steps: 4 * 64 * 30,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let recurrent = encoder.is_some();
    config.policy.encoder = encoder;
    config.ppo.n_envs = 4;
    config.ppo.n_steps = 64;
    config.ppo.batch_size = 64;
    config.ppo.n_epochs = 4;
    config.ppo.ent_coef = 0.01;
    if recurrent {
        config.ppo.seq_len = Some(16);
    }
    config.ppo.distributional = Some(DistributionalConfig {
        n_quantiles: 8,
        twin_critics: true,
        cvar: Some(CvarPolicyConfig::default()),
        ..Default::default()
    });
    let mut ppo = Ppo::<B, _, M>::new(config, env, &Default::default()).unwrap();
    assert_eq!(ppo.model().n_quantiles(), 8);
    while !ppo.is_done() {
        let stats = ppo.train_iteration().unwrap();
        assert!(
            stats.loss.is_finite() && stats.cvar_loss.is_some_and(f64::is_finite),
            "{stats:?}"
        );
        assert!(-stats.entropy_loss <= 2f64.ln() + 1e-4, "{stats:?}");
    }
    let (ret, _) = ppo.recent_episodes();
    assert!(ret > 16.0, "mean episode return {ret} after training");
}

fn masked_identity_config() -> TrainConfig {
    TrainConfig {
        total_steps: 50_000,
        eval: EvalConfig {
            every: 5_000,
            episodes: 20,
            stop_at_return: Some(100.0),
        },
        ..Default::default()
    }
}

#[test]
fn masked_identity_reaches_the_maximum_return() {
    masked_identity_is_solved::<ActorCritic<B>>(masked_identity_config());
}

/// The same with a recurrent (GRU) policy: recurrence and masks together. Training sequences
/// of 8 steps in minibatches of 8 sequences (four gradient steps per epoch instead of one), a
/// constant learning rate and clip range, and `gamma` 0.5: the reward of a step does not depend
/// on earlier actions, so a short horizon only removes variance from the advantages.
///
/// Margin, measured on 2026-11-23 for seeds 0 to 3: the return of 100 is first reached at the
/// evaluations after 20k, 20k, 20k and 35k steps of the 50k allowed. (With `gamma` 0.98 and
/// the clip range decaying to 0 it took 25k to 55k steps, so last-ulp changes to the
/// arithmetic moved the fixed seed across the deadline.)
#[test]
fn recurrent_masked_identity_reaches_the_maximum_return() {
    let mut config = masked_identity_config();
    config.policy.encoder = Some(EncoderSettings::default());
    config.ppo.seq_len = Some(8);
    config.ppo.batch_size = 64;
    config.ppo.learning_rate = quantrl_core::Schedule::Constant(1e-3);
    config.ppo.clip_range = quantrl_core::Schedule::Constant(0.2);
    config.ppo.gamma = 0.5;
    masked_identity_is_solved::<RecurrentActorCritic<B>>(config);
}

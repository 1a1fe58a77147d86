//! `MaskedIdentity`: sb3-contrib's `InvalidActionEnvDiscrete`, the standard check of
//! invalid-action masking.

use quantrl_core::{Actions, ConfigError, EnvError, Rng, Space, StepBatch, VecEnv};
use serde::{Deserialize, Serialize};

/// Configuration of [`MaskedIdentity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskedIdentityConfig {
    /// Number of environments.
    pub num_envs: usize,
    /// Number of actions (and of states).
    pub dim: usize,
    /// Actions masked at every step (never the rewarding one).
    pub n_invalid_actions: usize,
    /// Steps per episode (a time limit: truncation).
    pub ep_length: u32,
}

impl Default for MaskedIdentityConfig {
    /// sb3-contrib's test setting: 40 actions, 30 invalid, 100 steps.
    fn default() -> Self {
        Self {
            num_envs: 8,
            dim: 40,
            n_invalid_actions: 30,
            ep_length: 100,
        }
    }
}

/// Each step shows a random state `s` in `0..dim` (one-hot) and pays 1 for action `s`, 0
/// otherwise; `n_invalid_actions` random actions other than `s` are masked. The best return
/// of an episode is `ep_length`. A masked action is accepted (and pays 0), as in
/// sb3-contrib: the environment tests the agent, not the caller.
#[derive(Debug, Clone)]
pub struct MaskedIdentity {
    config: MaskedIdentityConfig,
    state: Vec<u32>,
    steps: Vec<u32>,
    rngs: Vec<Rng>,
    order: Vec<u32>,
    obs_space: Space,
    action_space: Space,
    is_reset: bool,
}

impl MaskedIdentity {
    /// Build the environments; `n_invalid_actions < dim` and every size positive.
    pub fn new(config: MaskedIdentityConfig) -> Result<Self, EnvError> {
        if config.num_envs == 0 || config.dim == 0 || config.ep_length == 0 {
            return Err(ConfigError::Inconsistent(
                "num_envs, dim and ep_length must be positive".into(),
            )
            .into());
        }
        if config.n_invalid_actions >= config.dim {
            return Err(ConfigError::out_of_range(
                "n_invalid_actions",
                config.n_invalid_actions,
                format!("< dim = {}", config.dim),
            )
            .into());
        }
        let n = config.num_envs;
        Ok(Self {
            state: vec![0; n],
            steps: vec![0; n],
            rngs: Rng::streams(0, n),
            order: (0..config.dim as u32).collect(),
            obs_space: Space::uniform_box(config.dim, 0.0, 1.0),
            action_space: Space::Discrete { n: config.dim },
            is_reset: false,
            config,
        })
    }

    /// Draw a new state for env `i` and write its observation and mask.
    fn next_state(&mut self, i: usize, batch: &mut StepBatch) {
        let d = self.config.dim;
        let rng = &mut self.rngs[i];
        let s = rng.below(d as u64) as u32;
        self.state[i] = s;
        let obs = &mut batch.obs[i * d..(i + 1) * d];
        obs.fill(0.0);
        obs[s as usize] = 1.0;
        if let Some(m) = batch.action_masks.as_mut() {
            let mask = &mut m[i * d..(i + 1) * d];
            mask.fill(true);
            // A partial Fisher-Yates shuffle picks the invalid actions among the others.
            let others = &mut self.order;
            for (k, v) in others.iter_mut().enumerate() {
                *v = k as u32;
            }
            others.swap(s as usize, d - 1);
            for k in 0..self.config.n_invalid_actions {
                let j = k + rng.below((d - 1 - k) as u64) as usize;
                others.swap(k, j);
                mask[others[k] as usize] = false;
            }
        }
    }
}

impl VecEnv for MaskedIdentity {
    fn num_envs(&self) -> usize {
        self.config.num_envs
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.action_space
    }
    fn has_action_masks(&self) -> bool {
        true
    }
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        if let Some(seed) = seed {
            self.rngs = Rng::streams(seed, self.rngs.len());
        }
        for i in 0..self.config.num_envs {
            self.steps[i] = 0;
            self.next_state(i, batch);
            batch.rewards[i] = 0.0;
            batch.terminated[i] = false;
            batch.truncated[i] = false;
        }
        self.is_reset = true;
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        if !self.is_reset {
            return Err(EnvError::NotReset);
        }
        let n = self.config.num_envs;
        let d = self.config.dim;
        let a = actions.discrete_for(n, &self.action_space)?;
        for i in 0..n {
            batch.rewards[i] = (a[i] == self.state[i]) as u8 as f32;
            self.steps[i] += 1;
            let done = self.steps[i] >= self.config.ep_length;
            batch.terminated[i] = false;
            batch.truncated[i] = done;
            if done {
                let (obs, fin) = (&batch.obs, &mut batch.final_obs);
                fin[i * d..(i + 1) * d].copy_from_slice(&obs[i * d..(i + 1) * d]);
                self.steps[i] = 0;
            }
            self.next_state(i, batch);
        }
        Ok(())
    }
    fn name(&self) -> &str {
        "InvalidActionEnvDiscrete"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_vec_env;

    #[test]
    fn conforms_and_masks_exactly_the_invalid_count() {
        let make = || MaskedIdentity::new(MaskedIdentityConfig::default()).unwrap();
        let r = check_vec_env(make, 300, 1).unwrap();
        assert!(r.truncations > 0);
        let mut env = make();
        let mut b = StepBatch::for_env(&env);
        env.reset(Some(2), &mut b);
        for _ in 0..50 {
            let m = b.action_masks.clone().unwrap();
            for i in 0..8 {
                let row = &m[i * 40..(i + 1) * 40];
                assert_eq!(row.iter().filter(|&&x| !x).count(), 30);
                assert!(
                    row[env.state[i] as usize],
                    "the paying action is never masked"
                );
            }
            let acts: Vec<u32> = env.state.clone();
            env.step(Actions::Discrete(&acts), &mut b).unwrap();
            assert!(b.rewards.iter().all(|&r| r == 1.0));
        }
        assert!(
            MaskedIdentity::new(MaskedIdentityConfig {
                n_invalid_actions: 40,
                ..Default::default()
            })
            .is_err()
        );
    }
}

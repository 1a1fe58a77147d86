//! Observation and reward normalization, as Stable-Baselines3's `VecNormalize` (which the
//! RL-Zoo turns on with `normalize: True`), for every PPO variant.
//!
//! - **Observations**: each feature is mapped to `clip((x - μ) / sqrt(σ² + 1e-8), ±clip_obs)`
//!   with a running mean `μ` and variance `σ²` of the observations collected so far. The map
//!   lives inside the network ([`quantrl_nets::ObsNormalizer`]), so it is saved with the
//!   weights and applied wherever the network is loaded: evaluation, backtests, prediction.
//!   The statistics move once per iteration, after the update, from the rollout just trained
//!   on (the first rollout sees the identity): a rollout and the update on it see the same
//!   map, so the stored log-probabilities are exactly the ones the update recomputes. (SB3
//!   moves them at every step, so its stored observations were normalized with statistics
//!   that are already stale when it trains on them.)
//! - **Rewards** (training only): each environment keeps a discounted return
//!   `R ← γ R + r` (reset at episode ends), a running variance `σ_R²` of those returns moves at
//!   every step, and the reward stored for training is `clip(r / sqrt(σ_R² + 1e-8), ±clip_reward)`
//!   (SB3's scaling, without centring). Reported returns (episode statistics, evaluations)
//!   stay in the environment's units. A truncated episode's bootstrap `γ V(final obs)` is in the
//!   critic's (normalized) units, like the rewards it is added to.
//!
//! The running statistics ([`RunningMeanStd`], f64) are part of the checkpoint, so a resumed run
//! continues exactly.

use quantrl_core::{ConfigError, check_positive};
use serde::{Deserialize, Serialize};

/// What to normalize (`[ppo.normalize]` in a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Normalize observations (inside the network).
    pub obs: bool,
    /// Scale training rewards by the running standard deviation of the discounted return.
    pub reward: bool,
    /// Clip bound of normalized observations.
    pub clip_obs: f64,
    /// Clip bound of scaled rewards.
    pub clip_reward: f64,
}

impl Default for NormalizeConfig {
    /// SB3's `VecNormalize` defaults: both on, clip 10.
    fn default() -> Self {
        Self {
            obs: true,
            reward: true,
            clip_obs: 10.0,
            clip_reward: 10.0,
        }
    }
}

impl NormalizeConfig {
    /// Both clip bounds must be positive and finite.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("ppo.normalize.clip_obs", self.clip_obs)?;
        check_positive("ppo.normalize.clip_reward", self.clip_reward)
    }
}

/// Running mean and variance of vectors, merged batch by batch with Chan et al.'s parallel
/// formula (SB3's `RunningMeanStd`: it starts at mean 0, variance 1 with a weight of `1e-4`
/// samples, so the first batch all but replaces it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature (population) variance.
    pub var: Vec<f64>,
    /// Samples seen (plus the initial `1e-4`).
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dim` features, before any sample.
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Merge a batch of rows (`[n, dim]`, row-major). Non-finite rows are skipped, so one bad
    /// observation cannot poison the statistics.
    pub fn update(&mut self, rows: &[f32]) {
        let d = self.dim();
        let finite = |r: &&[f32]| r.iter().all(|v| v.is_finite());
        let n = rows.chunks_exact(d).filter(finite).count();
        if n == 0 {
            return;
        }
        let mut mean = vec![0f64; d];
        for r in rows.chunks_exact(d).filter(finite) {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; d];
        for r in rows.chunks_exact(d).filter(finite) {
            for ((s, &v), &m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        var.iter_mut().for_each(|s| *s /= n as f64);
        self.merge(&mean, &var, n as f64);
    }

    /// Merge the moments of a batch of `n` samples.
    pub fn merge(&mut self, batch_mean: &[f64], batch_var: &[f64], n: f64) {
        let total = self.count + n;
        for i in 0..self.dim() {
            let delta = batch_mean[i] - self.mean[i];
            let m2 = self.var[i] * self.count
                + batch_var[i] * n
                + delta * delta * self.count * n / total;
            self.mean[i] += delta * n / total;
            self.var[i] = m2 / total;
        }
        self.count = total;
    }

    /// `(mean, var)` as f32, for the network's normalizer.
    pub fn as_f32(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.mean.iter().map(|&v| v as f32).collect(),
            self.var.iter().map(|&v| v as f32).collect(),
        )
    }
}

/// Everything normalization carries from step to step (saved in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizerState {
    /// Observation statistics (`None` when observations are not normalized).
    pub obs: Option<RunningMeanStd>,
    /// Statistics of the discounted returns (`None` when rewards are not scaled).
    pub ret: Option<RunningMeanStd>,
    /// Each environment's discounted return so far.
    pub returns: Vec<f64>,
}

impl NormalizerState {
    /// Fresh statistics for `n_envs` environments with `obs_dim` features.
    pub fn new(config: &NormalizeConfig, n_envs: usize, obs_dim: usize) -> Self {
        Self {
            obs: config.obs.then(|| RunningMeanStd::new(obs_dim)),
            ret: config.reward.then(|| RunningMeanStd::new(1)),
            returns: vec![0.0; n_envs],
        }
    }

    /// Scale one step's rewards in place (SB3's `normalize_reward` after `_update_reward`):
    /// the discounted returns move first, then every reward is divided by their standard
    /// deviation and clipped; environments whose episode ended restart their return.
    pub fn scale_rewards(&mut self, rewards: &mut [f32], dones: &[bool], gamma: f64, clip: f64) {
        let Some(ret) = &mut self.ret else {
            return;
        };
        for (r, &x) in self.returns.iter_mut().zip(rewards.iter()) {
            *r = *r * gamma + x as f64;
        }
        let n = self.returns.len() as f64;
        let mean = self.returns.iter().sum::<f64>() / n;
        let var = self
            .returns
            .iter()
            .map(|r| (r - mean) * (r - mean))
            .sum::<f64>()
            / n;
        if mean.is_finite() && var.is_finite() {
            ret.merge(&[mean], &[var], n);
        }
        let scale = (ret.var[0] + quantrl_nets::obs_norm::OBS_NORM_EPSILON).sqrt();
        for x in rewards.iter_mut() {
            *x = (*x as f64 / scale).clamp(-clip, clip) as f32;
        }
        for (r, &done) in self.returns.iter_mut().zip(dones) {
            if done {
                *r = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_to_the_moments_of_everything() {
        let rows: Vec<f32> = (0..60)
            .map(|i| ((i * 37) % 11) as f32 * 0.5 - 1.0)
            .collect();
        let mut once = RunningMeanStd::new(3);
        once.update(&rows);
        let mut parts = RunningMeanStd::new(3);
        for chunk in rows.chunks(9) {
            parts.update(chunk);
        }
        for f in 0..3 {
            let xs: Vec<f64> = rows.iter().skip(f).step_by(3).map(|&v| v as f64).collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64;
            // The 1e-4 prior weight moves the result by about 1e-5 relative.
            for s in [&once, &parts] {
                assert!((s.mean[f] - m).abs() < 1e-4, "{} vs {m}", s.mean[f]);
                assert!(
                    (s.var[f] - v).abs() < 1e-4 * v.max(1.0),
                    "{} vs {v}",
                    s.var[f]
                );
            }
            assert!((once.mean[f] - parts.mean[f]).abs() < 1e-12);
            assert!((once.var[f] - parts.var[f]).abs() < 1e-12);
        }
        assert!((once.count - 20.0001).abs() < 1e-9);
    }

    #[test]
    fn non_finite_rows_are_skipped() {
        let mut s = RunningMeanStd::new(2);
        s.update(&[1.0, f32::NAN, 3.0, 4.0, 5.0, 6.0]);
        assert!((s.count - 2.0001).abs() < 1e-9);
        assert!(s.mean.iter().chain(&s.var).all(|v| v.is_finite()));
        assert!((s.mean[0] - 4.0).abs() < 1e-3);
    }

    #[test]
    fn rewards_are_scaled_by_the_return_spread_and_clipped() {
        let config = NormalizeConfig::default();
        let mut st = NormalizerState::new(&config, 2, 1);
        // Constant rewards of 1 in both environments: the discounted returns grow
        // 1, 1.9, 2.71, ... and their running variance (over time) sets the scale.
        let mut history = Vec::new();
        for _ in 0..50 {
            let mut r = [1.0f32, 1.0];
            st.scale_rewards(&mut r, &[false, false], 0.9, 10.0);
            history.push(r[0]);
            assert_eq!(r[0], r[1]);
        }
        let ret = st.ret.as_ref().unwrap();
        let want = 1.0 / (ret.var[0] + 1e-8).sqrt();
        assert!((*history.last().unwrap() as f64 - want).abs() < 1e-6);
        // The early scale is tiny (the returns barely varied yet): the clip holds.
        assert!(history.iter().all(|&r| r <= 10.0));
        // An episode end restarts that environment's return.
        let mut r = [1.0f32, 1.0];
        st.scale_rewards(&mut r, &[true, false], 0.9, 10.0);
        assert_eq!(st.returns[0], 0.0);
        assert!(st.returns[1] > 9.0);
        // Off: untouched.
        let mut off = NormalizerState::new(
            &NormalizeConfig {
                reward: false,
                ..config
            },
            1,
            1,
        );
        let mut r = [3.0f32];
        off.scale_rewards(&mut r, &[false], 0.9, 10.0);
        assert_eq!(r, [3.0]);
    }

    #[test]
    fn bad_clips_are_config_errors() {
        let bad = NormalizeConfig {
            clip_obs: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("clip_obs"));
        let bad = NormalizeConfig {
            clip_reward: f64::INFINITY,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("clip_reward")
        );
    }
}

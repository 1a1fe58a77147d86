//! The PPO loss (Schulman et al. 2017) with Stable-Baselines3's exact conventions.

use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::{ConfigError, check_non_negative, check_open, check_positive};
use serde::{Deserialize, Serialize};

/// Coefficients of the PPO loss for one minibatch (schedules already evaluated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PpoLossConfig {
    /// Policy ratio clip ε, in `(0, 1)`.
    pub clip_range: f64,
    /// Value clip around the old values; `None` disables value clipping.
    pub clip_range_vf: Option<f64>,
    /// Entropy bonus coefficient.
    pub ent_coef: f64,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Normalize advantages per minibatch (`(A - mean) / (std_unbiased + 1e-8)`; skipped for
    /// a minibatch of one, as SB3 does).
    pub normalize_advantage: bool,
}

impl Default for PpoLossConfig {
    fn default() -> Self {
        Self {
            clip_range: 0.2,
            clip_range_vf: None,
            ent_coef: 0.0,
            vf_coef: 0.5,
            normalize_advantage: true,
        }
    }
}

impl PpoLossConfig {
    /// Check the ranges (clip in (0, 1), coefficients non-negative).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_open("clip_range", self.clip_range, 0.0, 1.0)?;
        if let Some(c) = self.clip_range_vf {
            check_positive("clip_range_vf", c)?;
        }
        check_non_negative("ent_coef", self.ent_coef)?;
        check_non_negative("vf_coef", self.vf_coef)
    }
}

/// Everything the PPO loss computed, by name. Scalars are one-element tensors so that reading
/// them (a device sync) is left to the caller's logging cadence.
#[derive(Debug, Clone)]
pub struct PpoLossTerms<B: Backend> {
    /// `policy_loss + ent_coef * entropy_loss + vf_coef * value_loss`, the tensor to
    /// differentiate.
    pub loss: Tensor<B, 1>,
    /// Clipped surrogate loss `-mean(min(A r, A clip(r)))`.
    pub policy_loss: Tensor<B, 1>,
    /// Mean squared error of the (optionally clipped) value predictions; not halved.
    pub value_loss: Tensor<B, 1>,
    /// `-mean(entropy)`.
    pub entropy_loss: Tensor<B, 1>,
    /// `mean((r - 1) - log r)`, without gradient.
    pub approx_kl: Tensor<B, 1>,
    /// Fraction of samples with `|r - 1| > clip_range`, without gradient.
    pub clip_fraction: Tensor<B, 1>,
}

/// Inputs of the PPO loss for one minibatch.
#[derive(Debug, Clone)]
pub struct PpoLossInputs<B: Backend> {
    /// Log-probabilities of the taken actions under the current policy, `[batch]`.
    pub log_prob: Tensor<B, 1>,
    /// Log-probabilities recorded at rollout time, `[batch]`.
    pub old_log_prob: Tensor<B, 1>,
    /// Entropy of the current policy per sample, `[batch]`.
    pub entropy: Tensor<B, 1>,
    /// Raw advantages as stored in the rollout buffer, `[batch]`.
    pub advantages: Tensor<B, 1>,
    /// Current value predictions, `[batch]`.
    pub values: Tensor<B, 1>,
    /// Value predictions recorded at rollout time, `[batch]`.
    pub old_values: Tensor<B, 1>,
    /// Value targets (GAE returns), `[batch]`.
    pub returns: Tensor<B, 1>,
}

/// Advantages normalized as SB3 does: `(A - mean) / (std(ddof=1) + 1e-8)`; unchanged for a
/// batch of one.
///
/// # Shapes
/// - `advantages`: `[batch]` → `[batch]`
pub fn normalize_advantages<B: Backend>(advantages: Tensor<B, 1>) -> Tensor<B, 1> {
    let [n] = advantages.dims();
    if n <= 1 {
        return advantages;
    }
    let mean = advantages.clone().mean();
    let centered = advantages - mean;
    let var = centered.clone().square().sum().div_scalar((n - 1) as f64);
    centered / var.sqrt().add_scalar(1e-8)
}

/// Clipped surrogate policy loss and the probability ratio.
///
/// # Shapes
/// - `log_prob`, `old_log_prob`, `advantages`: `[batch]`
/// - output: `(policy_loss [1], ratio [batch])`
pub fn clipped_surrogate<B: Backend>(
    log_prob: Tensor<B, 1>,
    old_log_prob: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    clip_range: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let ratio = (log_prob - old_log_prob).exp();
    let unclipped = advantages.clone() * ratio.clone();
    let clipped = advantages * ratio.clone().clamp(1.0 - clip_range, 1.0 + clip_range);
    (unclipped.min_pair(clipped).mean().neg(), ratio)
}

/// Mean squared value error, with the value prediction clipped to `old ± clip_range_vf` when
/// given (SB3's convention; not halved).
///
/// # Shapes
/// - all inputs `[batch]`; output `[1]`
pub fn value_loss<B: Backend>(
    values: Tensor<B, 1>,
    old_values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    clip_range_vf: Option<f64>,
) -> Tensor<B, 1> {
    let pred = match clip_range_vf {
        Some(c) => old_values.clone() + (values - old_values).clamp(-c, c),
        None => values,
    };
    (returns - pred).square().mean()
}

/// The whole PPO loss for one minibatch, as SB3's `PPO.train` computes it.
pub fn ppo_loss<B: Backend>(inputs: PpoLossInputs<B>, config: &PpoLossConfig) -> PpoLossTerms<B> {
    let advantages = if config.normalize_advantage {
        normalize_advantages(inputs.advantages)
    } else {
        inputs.advantages
    };
    let (policy_loss, ratio) = clipped_surrogate(
        inputs.log_prob.clone(),
        inputs.old_log_prob.clone(),
        advantages,
        config.clip_range,
    );
    let value_loss = value_loss(
        inputs.values,
        inputs.old_values,
        inputs.returns,
        config.clip_range_vf,
    );
    let entropy_loss = inputs.entropy.mean().neg();
    let loss = policy_loss.clone()
        + entropy_loss.clone().mul_scalar(config.ent_coef)
        + value_loss.clone().mul_scalar(config.vf_coef);
    let ratio = ratio.detach();
    let log_ratio = (inputs.log_prob - inputs.old_log_prob).detach();
    let approx_kl = (ratio.clone().sub_scalar(1.0) - log_ratio).mean();
    let clip_fraction = ratio
        .sub_scalar(1.0)
        .abs()
        .greater_elem(config.clip_range)
        .float()
        .mean();
    PpoLossTerms {
        loss,
        policy_loss,
        value_loss,
        entropy_loss,
        approx_kl,
        clip_fraction,
    }
}

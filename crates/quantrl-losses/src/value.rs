//! Value-loss options beyond SB3's: a loss scaled by the variance of the returns, and a value
//! clip range that adapts to it.
//!
//! With `R` the value targets of the minibatch, `V` the predictions, `V_old` the rollout's
//! predictions and `s² = Var(R)` the unbiased (ddof = 1) variance of the targets, computed
//! without gradient (0 for a batch of one):
//!
//! * clip range: [`ValueClip::Fixed`]`(c)` uses `c`; [`ValueClip::VarianceAdaptive`]`{ k }` uses
//!   `k · s`, so the clip follows the scale of the returns; the prediction used is
//!   `V_old + clamp(V - V_old, -c, c)` (SB3's clipping around the old values);
//! * loss: [`ValueScale::Mse`] is `mean((R - V')²)` (SB3's, not halved);
//!   [`ValueScale::VarianceScaled`]`{ eps }` is `mean((R - V')²) / (s² + eps)`, the fraction of
//!   the return variance left unexplained: scale-free, so `vf_coef` needs no retuning when the
//!   reward scale changes.

use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::{ConfigError, check_positive};
use serde::{Deserialize, Serialize};

/// How the value prediction is clipped around the old prediction.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueClip {
    /// No clipping.
    #[default]
    None,
    /// Clip range `c > 0` (SB3's `clip_range_vf`).
    Fixed(f64),
    /// Clip range `k · std(R)`, `k > 0`.
    VarianceAdaptive {
        /// Multiple of the return standard deviation.
        k: f64,
    },
}

/// How the squared error is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueScale {
    /// `mean((R - V)²)`.
    #[default]
    Mse,
    /// `mean((R - V)²) / (Var(R) + eps)`, `eps > 0`.
    VarianceScaled {
        /// Floor added to the variance.
        eps: f64,
    },
}

/// Value-loss options (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueLossOptions {
    /// Clipping of the prediction.
    pub clip: ValueClip,
    /// Scaling of the loss.
    pub scale: ValueScale,
}

impl ValueLossOptions {
    /// Check the clip range, the multiple and the epsilon are positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.clip {
            ValueClip::None => {}
            ValueClip::Fixed(c) => check_positive("value.clip", c)?,
            ValueClip::VarianceAdaptive { k } => check_positive("value.clip_k", k)?,
        }
        match self.scale {
            ValueScale::Mse => Ok(()),
            ValueScale::VarianceScaled { eps } => check_positive("value.eps", eps),
        }
    }
}

/// Unbiased variance of `x` without gradient, `[1]` (0 for one element).
fn detached_variance<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let [n] = x.dims();
    let x = x.detach();
    if n <= 1 {
        return x.sum().mul_scalar(0.0);
    }
    let centered = x.clone() - x.mean();
    centered.square().sum().div_scalar((n - 1) as f64)
}

/// The value loss with `options` (see the [module docs](self)).
///
/// # Shapes
/// - all inputs `[batch]`; output `[1]`
pub fn value_loss_with<B: Backend>(
    values: Tensor<B, 1>,
    old_values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    options: &ValueLossOptions,
) -> Tensor<B, 1> {
    let needs_var = matches!(options.clip, ValueClip::VarianceAdaptive { .. })
        || matches!(options.scale, ValueScale::VarianceScaled { .. });
    let var = needs_var.then(|| detached_variance(returns.clone()));
    let pred = match (options.clip, &var) {
        (ValueClip::None, _) => values,
        (ValueClip::Fixed(c), _) => old_values.clone() + (values - old_values).clamp(-c, c),
        (ValueClip::VarianceAdaptive { k }, Some(var)) => {
            let [n] = values.dims();
            let c = var.clone().sqrt().mul_scalar(k).expand([n]);
            let diff = values - old_values.clone();
            // clamp(diff, -c, c) with a tensor bound: min(max(diff, -c), c).
            old_values + diff.max_pair(c.clone().neg()).min_pair(c)
        }
        (ValueClip::VarianceAdaptive { .. }, None) => unreachable!("variance computed above"),
    };
    let mse = (returns - pred).square().mean();
    match (options.scale, var) {
        (ValueScale::VarianceScaled { eps }, Some(var)) => mse / var.add_scalar(eps),
        _ => mse,
    }
}

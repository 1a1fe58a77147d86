//! The quantile Huber loss of distributional RL (QR-DQN: Dabney et al. 2018; TQC: Kuznetsov
//! et al. 2020), with sb3-contrib's `quantile_huber_loss` conventions exactly.
//!
//! For current quantiles `θ_i` (`i < N`) and target quantiles `T_j` (`j < M`), with
//! `d_ij = T_j - θ_i`:
//!
//! ```text
//! huber_κ(d) = 0.5 d²            if |d| <= κ
//!            = κ (|d| - 0.5 κ)   otherwise
//! ρ_ij       = |τ_i - 1{d_ij < 0}| · huber_κ(d_ij) / κ
//! ```
//!
//! The indicator carries no gradient. sb3-contrib hard-codes `κ = 1` (its default here); for
//! another `κ` the loss is divided by `κ` as in Dabney et al., so the two agree at `κ = 1`.
//! `sum_over_quantiles = true` sums over the current-quantile axis `i` and averages over
//! everything else (batch, critics, `j`); `false` averages over all elements.
//!
//! The default levels are `τ_i = (i + 0.5) / N` computed in float32, as sb3-contrib does, and
//! the weight `|τ_i - 1{d < 0}|` is rounded to float32 before it meets the (float64) Huber term:
//! float64 results then agree with the reference to ~1e-12 for every `N`.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, check_positive};
use serde::{Deserialize, Serialize};

/// Options of [`quantile_huber_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantileHuberConfig {
    /// Huber threshold `κ > 0` (sb3-contrib: 1).
    pub kappa: f64,
    /// Sum over the current-quantile axis, then average (`true`, sb3-contrib's default), or
    /// average over all pairs (`false`).
    pub sum_over_quantiles: bool,
}

impl Default for QuantileHuberConfig {
    fn default() -> Self {
        Self {
            kappa: 1.0,
            sum_over_quantiles: true,
        }
    }
}

impl QuantileHuberConfig {
    /// Check that `kappa` is finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("quantile_huber.kappa", self.kappa)
    }
}

/// The default quantile levels `τ_i = (i + 0.5) / N` as float32 (sb3-contrib's `cum_prob`).
///
/// Panics when `n_quantiles == 0` (validate configs with [`check_n_quantiles`] first).
pub fn default_taus(n_quantiles: usize) -> Vec<f32> {
    assert!(n_quantiles > 0, "default_taus needs at least one quantile");
    (0..n_quantiles)
        .map(|i| (i as f32 + 0.5) / n_quantiles as f32)
        .collect()
}

/// Check a number of quantiles (at least one), naming the field.
pub fn check_n_quantiles(field: &str, n_quantiles: usize) -> Result<(), ConfigError> {
    if n_quantiles == 0 {
        Err(ConfigError::out_of_range(field, 0, ">= 1"))
    } else {
        Ok(())
    }
}

/// Quantile Huber loss of the TQC form.
///
/// `taus` are the levels of the current quantiles (`None`: [`default_taus`]). Both tensors may
/// carry gradients; in RL the target is detached by the caller.
///
/// # Shapes
/// - `current`: `[batch, n_critics, N]`
/// - `target`: `[batch, 1 or n_critics, M]` (broadcast over critics)
/// - `taus`: `N` values
/// - output: `[1]`
pub fn quantile_huber_loss<B: Backend>(
    current: Tensor<B, 3>,
    target: Tensor<B, 3>,
    taus: Option<&[f64]>,
    config: &QuantileHuberConfig,
) -> Tensor<B, 1> {
    let [batch, n_critics, n] = current.dims();
    let [tb, tc, m] = target.dims();
    assert!(
        tb == batch && (tc == 1 || tc == n_critics),
        "quantile_huber_loss: target {:?} does not broadcast against current {:?}",
        [tb, tc, m],
        [batch, n_critics, n]
    );
    let device = current.device();
    // Weights for d >= 0 (tau) and for d < 0 (|tau - 1|), each rounded as the reference does.
    let (w_pos, w_neg): (Vec<f64>, Vec<f64>) = match taus {
        None => default_taus(n)
            .into_iter()
            .map(|t| (t as f64, (1.0f32 - t) as f64))
            .unzip(),
        Some(t) => {
            assert_eq!(
                t.len(),
                n,
                "quantile_huber_loss: {} taus for N = {n}",
                t.len()
            );
            t.iter().map(|&t| (t.abs(), (t - 1.0).abs())).unzip()
        }
    };
    let column = |w: Vec<f64>| {
        Tensor::<B, 4>::from_data(
            TensorData::new(w, [1, 1, n, 1]).convert::<B::FloatElem>(),
            &device,
        )
    };
    let (w_pos, w_neg) = (column(w_pos), column(w_neg));

    // d[b, c, i, j] = target[b, c, j] - current[b, c, i]
    let delta = target.unsqueeze_dim::<4>(2) - current.unsqueeze_dim::<4>(3);
    let negative = delta.clone().detach().lower_elem(0.0).float();
    let weight = w_pos.clone() + negative * (w_neg - w_pos);
    let kappa = config.kappa;
    // huber_κ(d) = c (|d| - c / 2) with c = min(|d|, κ): one expression for both branches,
    // whose derivative is d inside the threshold and κ sign(d) outside.
    let abs = delta.abs();
    let c = abs.clone().clamp_max(kappa);
    let huber = c.clone() * (abs - c.mul_scalar(0.5));
    let elementwise = (weight * huber).div_scalar(kappa);
    if config.sum_over_quantiles {
        elementwise.sum_dim(2).mean().reshape([1])
    } else {
        elementwise.mean().reshape([1])
    }
}

/// Quantile Huber loss of the QR-DQN form: [`quantile_huber_loss`] with one critic.
///
/// # Shapes
/// - `current`: `[batch, N]`, `target`: `[batch, M]`; output `[1]`
pub fn quantile_huber_loss_2d<B: Backend>(
    current: Tensor<B, 2>,
    target: Tensor<B, 2>,
    taus: Option<&[f64]>,
    config: &QuantileHuberConfig,
) -> Tensor<B, 1> {
    quantile_huber_loss(
        current.unsqueeze_dim(1),
        target.unsqueeze_dim(1),
        taus,
        config,
    )
}

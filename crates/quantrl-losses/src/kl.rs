//! The adaptive KL penalty of PPO (Schulman et al. 2017, section 4): a KL-penalized surrogate as
//! an alternative to clipping, and the controller that moves its coefficient toward a KL target.

use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::{ConfigError, check_non_negative, check_positive};
use serde::{Deserialize, Serialize};

/// The KL-penalty coefficient `β` and its adaptation toward `target` (the PPO paper's rule):
/// after each update, with `d` the measured KL, `β <- 2β` if `d > 1.5 target` and `β <- β / 2`
/// if `d < target / 1.5`; otherwise `β` stays. Serializable, so a checkpoint resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveKlController {
    /// The current coefficient `β >= 0`.
    pub coef: f64,
    /// The KL target `> 0`.
    pub target: f64,
}

impl AdaptiveKlController {
    /// A controller starting at `initial_coef`, validated.
    pub fn new(initial_coef: f64, target: f64) -> Result<Self, ConfigError> {
        let c = Self {
            coef: initial_coef,
            target,
        };
        c.validate()?;
        Ok(c)
    }

    /// Check `coef >= 0` and `target > 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("kl.coef", self.coef)?;
        check_positive("kl.target", self.target)
    }

    /// Adapt the coefficient to a measured KL; returns the new coefficient. A non-finite
    /// measurement leaves it unchanged.
    pub fn update(&mut self, kl: f64) -> f64 {
        if kl > 1.5 * self.target {
            self.coef *= 2.0;
        } else if kl < self.target / 1.5 {
            self.coef /= 2.0;
        }
        self.coef
    }
}

/// What [`kl_penalized_surrogate`] computed.
#[derive(Debug, Clone)]
pub struct KlPenaltyTerms<B: Backend> {
    /// `surrogate_loss + coef · kl`, the tensor to differentiate, `[1]`.
    pub loss: Tensor<B, 1>,
    /// `-mean(r A)`, `[1]`.
    pub surrogate_loss: Tensor<B, 1>,
    /// The KL estimate `mean((r - 1) - log r)` (with gradient), `[1]`.
    pub kl: Tensor<B, 1>,
}

/// The KL-penalized surrogate `-mean(r A) + β KL(π_old ‖ π)`, `r = exp(log π - log π_old)`.
///
/// The KL is estimated on the sampled actions by `mean((r - 1) - log r)` (the same estimator
/// as `PpoLossTerms::approx_kl`, here differentiable): unbiased for `KL(π_old ‖ π)` and never
/// negative, unlike `mean(-log r)`. Feed the detached value to
/// [`AdaptiveKlController::update`] after the epoch.
///
/// # Shapes
/// - `log_prob`, `old_log_prob`, `advantages`: `[batch]`
pub fn kl_penalized_surrogate<B: Backend>(
    log_prob: Tensor<B, 1>,
    old_log_prob: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    coef: f64,
) -> KlPenaltyTerms<B> {
    let log_ratio = log_prob - old_log_prob;
    let ratio = log_ratio.clone().exp();
    let surrogate_loss = (ratio.clone() * advantages).mean().neg();
    let kl = (ratio.sub_scalar(1.0) - log_ratio).mean();
    KlPenaltyTerms {
        loss: surrogate_loss.clone() + kl.clone().mul_scalar(coef),
        surrogate_loss,
        kl,
    }
}

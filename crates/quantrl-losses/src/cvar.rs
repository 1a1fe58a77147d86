//! Conditional value at risk (CVaR, expected shortfall) as differentiable tensor functions, and a
//! CVaR objective for the policy (a penalty weight or a constraint with a Lagrange multiplier).
//!
//! Values are **returns** (a loss tail is negative), so `CVaR_α` is the mean of the worst `α`
//! fraction of outcomes and a higher CVaR is better; the conventions are those of `cvar.json`.
//!
//! # Quantile distributions
//!
//! A row of `N` quantiles is a distribution of `N` atoms of mass `1/N` at the levels
//! `τ_i = (2i + 1) / 2N`; rows are sorted ascending first. With `m = α N` (snapped to the
//! nearest integer when within `1e-9` of it) and `k = floor(m)`, [`QuantileCvar`] offers:
//!
//! * [`QuantileCvar::Fractional`] (**the default**): the exact lower-tail integral
//!   `(1/α) ∫_0^α F⁻¹(u) du` of the step quantile function, `(Σ_{i<k} q_i + (m - k) q_k) / m`.
//!   It is the default because it is the CVaR of the distribution the atoms define: its weights
//!   sum to one, it is continuous and monotone in `α`, and every atom inside the tail gets a
//!   gradient in proportion to its mass in the tail;
//! * [`QuantileCvar::Ceil`]: the mean of the `max(1, ceil(m))` lowest atoms;
//! * [`QuantileCvar::Floor`]: the mean of the `max(1, floor(m))` lowest atoms;
//! * [`QuantileCvar::Midpoint`]: the mean of the atoms with `τ_i <= α`, i.e. of the lowest
//!   `max(1, floor(m + 1/2))`.
//!
//! # Empirical samples
//!
//! [`cvar_empirical`] is the tensor twin of `quantrl_eval::expected_shortfall` (same
//! `k = floor((n - 1) α)` and the same two tie conventions, [`TailConvention`]), so a CVaR
//! trained on and a CVaR reported agree; a test checks them against each other.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, check_non_negative, check_open, check_positive};
use serde::{Deserialize, Serialize};

/// Which lower-tail average of a quantile distribution [`cvar_quantiles`] computes (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantileCvar {
    /// The exact lower-tail integral of the step quantile function (the default).
    #[default]
    Fractional,
    /// Mean of the `max(1, ceil(α N))` lowest atoms.
    Ceil,
    /// Mean of the `max(1, floor(α N))` lowest atoms.
    Floor,
    /// Mean of the atoms whose level `τ_i <= α`.
    Midpoint,
}

/// Which returns [`cvar_empirical`] averages (`k = floor((n - 1) α)`, as `quantrl-eval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailConvention {
    /// All returns at or below the lower VaR `sorted[k]`, ties included (the default, as
    /// `quantrl-eval`'s reported expected shortfall).
    #[default]
    Lower,
    /// Exactly the `k + 1` smallest returns (empyrical's `conditional_value_at_risk`).
    Empyrical,
}

/// Check a CVaR level: `alpha` in `(0, 1)`.
pub fn check_alpha(field: &str, alpha: f64) -> Result<(), ConfigError> {
    check_open(field, alpha, 0.0, 1.0)
}

/// `x` snapped to the nearest integer when within `1e-9` of it.
fn snap(x: f64) -> f64 {
    if (x - x.round()).abs() < 1e-9 {
        x.round()
    } else {
        x
    }
}

/// The weights over the `n` sorted atoms whose dot product with a sorted row is its
/// `CVaR_alpha` by `convention`. They are non-negative and sum to one.
///
/// Panics when `n == 0` or `alpha` is outside `(0, 1)` (check with [`check_alpha`]).
pub fn cvar_weights(n: usize, alpha: f64, convention: QuantileCvar) -> Vec<f64> {
    assert!(n > 0, "cvar_weights needs at least one atom");
    assert!(
        alpha > 0.0 && alpha < 1.0,
        "cvar_weights: alpha = {alpha} is not in (0, 1)"
    );
    let m = snap(alpha * n as f64);
    let k = m.floor();
    let mut w = vec![0.0; n];
    let uniform = |w: &mut Vec<f64>, count: f64| {
        let count = (count.max(1.0) as usize).min(n);
        w[..count].fill(1.0 / count as f64);
    };
    match convention {
        QuantileCvar::Fractional => {
            let k = k as usize;
            w[..k].fill(1.0 / m);
            if m > k as f64 {
                w[k] = (m - k as f64) / m;
            }
        }
        QuantileCvar::Ceil => uniform(&mut w, m.ceil()),
        QuantileCvar::Floor => uniform(&mut w, k),
        QuantileCvar::Midpoint => uniform(&mut w, snap(m + 0.5).floor()),
    }
    w
}

/// `CVaR_alpha` of each row of a quantile distribution (see the [module docs](self)). Rows
/// are sorted ascending first (Burn's `sort`, differentiable), so raw network outputs may be
/// passed.
///
/// # Shapes
/// - `quantiles`: `[batch, N]` → `[batch]`
pub fn cvar_quantiles<B: Backend>(
    quantiles: Tensor<B, 2>,
    alpha: f64,
    convention: QuantileCvar,
) -> Tensor<B, 1> {
    let [batch, n] = quantiles.dims();
    let w = cvar_weights(n, alpha, convention);
    let w = Tensor::<B, 2>::from_data(
        TensorData::new(w, [n, 1]).convert::<B::FloatElem>(),
        &quantiles.device(),
    );
    quantiles.sort(1).matmul(w).reshape([batch])
}

/// Empirical lower VaR and `CVaR_alpha` of a sample of returns, `(var, cvar)`, with
/// `k = floor((n - 1) alpha)`: `var = sorted[k]`, and `cvar` the mean of the tail chosen by
/// `convention`. Gradients flow to the returns in the tail.
///
/// Panics on an empty sample or `alpha` outside `(0, 1)`.
///
/// # Shapes
/// - `returns`: `[n]`; outputs `[1]` each
pub fn cvar_empirical<B: Backend>(
    returns: Tensor<B, 1>,
    alpha: f64,
    convention: TailConvention,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n] = returns.dims();
    assert!(n > 0, "cvar_empirical needs a non-empty sample");
    assert!(
        alpha > 0.0 && alpha < 1.0,
        "cvar_empirical: alpha = {alpha} is not in (0, 1)"
    );
    let k = ((n - 1) as f64 * alpha).floor() as usize;
    let sorted = returns.sort(0);
    let var = sorted.clone().narrow(0, k, 1);
    let cvar = match convention {
        TailConvention::Empyrical => sorted.narrow(0, 0, k + 1).mean(),
        TailConvention::Lower => {
            // Every return <= VaR, ties included: the tail is a prefix of the sorted sample.
            let in_tail = sorted
                .clone()
                .detach()
                .lower_equal(var.clone().detach().expand([n]))
                .float();
            (sorted * in_tail.clone()).sum() / in_tail.sum()
        }
    };
    (var, cvar)
}

/// How the policy is made to care about `CVaR_alpha` of its return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CvarObjective {
    /// Add `-weight · CVaR` to the loss (maximize expected return plus a tail bonus).
    Penalty {
        /// Weight of the CVaR term, `>= 0`.
        weight: f64,
    },
    /// Enforce `CVaR_alpha(return) >= threshold` with a Lagrange multiplier.
    Constraint(LagrangeMultiplier),
}

impl CvarObjective {
    /// Check the weight or the multiplier's settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Penalty { weight } => check_non_negative("cvar.weight", *weight),
            Self::Constraint(m) => m.validate(),
        }
    }

    /// The term to add to the loss being minimized, from a differentiable CVaR estimate:
    /// `-weight · cvar` for a penalty, `-λ (cvar - threshold)` for a constraint (`λ` a constant
    /// here: it moves only in [`update`](Self::update)).
    ///
    /// # Shapes
    /// - `cvar`: `[1]` → `[1]`
    pub fn loss<B: Backend>(&self, cvar: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            Self::Penalty { weight } => cvar.mul_scalar(-weight),
            Self::Constraint(m) => cvar.sub_scalar(m.threshold).mul_scalar(-m.multiplier),
        }
    }

    /// After an update, feed the CVaR estimate (e.g. of the rollout's returns) to the
    /// multiplier; no-op for a penalty. Returns the weight now on the CVaR term.
    pub fn update(&mut self, cvar_estimate: f64) -> f64 {
        match self {
            Self::Penalty { weight } => *weight,
            Self::Constraint(m) => m.update(cvar_estimate),
        }
    }
}

/// A Lagrange multiplier `λ >= 0` for the constraint `CVaR >= threshold`, moved by projected
/// gradient ascent on the dual: `λ <- max(0, λ + lr · (threshold - cvar))`. It grows while the
/// constraint is violated and decays to zero once it holds with slack. Serializable, so a
/// checkpoint resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagrangeMultiplier {
    /// The required CVaR of the return.
    pub threshold: f64,
    /// The multiplier's own learning rate, `> 0`.
    pub lr: f64,
    /// The current value of `λ`, `>= 0`.
    pub multiplier: f64,
}

impl LagrangeMultiplier {
    /// A multiplier starting at `initial`, validated.
    pub fn new(threshold: f64, lr: f64, initial: f64) -> Result<Self, ConfigError> {
        let m = Self {
            threshold,
            lr,
            multiplier: initial,
        };
        m.validate()?;
        Ok(m)
    }

    /// Check `threshold` finite, `lr > 0`, `multiplier >= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.threshold.is_finite() {
            return Err(ConfigError::out_of_range(
                "cvar.threshold",
                self.threshold,
                "finite",
            ));
        }
        check_positive("cvar.multiplier_lr", self.lr)?;
        check_non_negative("cvar.multiplier", self.multiplier)
    }

    /// One dual step with a CVaR estimate; returns the new `λ`. A non-finite estimate leaves
    /// `λ` unchanged.
    pub fn update(&mut self, cvar_estimate: f64) -> f64 {
        if cvar_estimate.is_finite() {
            self.multiplier =
                (self.multiplier + self.lr * (self.threshold - cvar_estimate)).max(0.0);
        }
        self.multiplier
    }
}

/// A CVaR level and its conventions, validated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CvarConfig {
    /// Tail fraction `alpha` in `(0, 1)`.
    pub alpha: f64,
    /// Convention for quantile distributions.
    pub quantile_convention: QuantileCvar,
    /// Convention for empirical samples.
    pub tail_convention: TailConvention,
}

impl Default for CvarConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            quantile_convention: QuantileCvar::Fractional,
            tail_convention: TailConvention::Lower,
        }
    }
}

impl CvarConfig {
    /// Check `alpha` in `(0, 1)`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_alpha("cvar.alpha", self.alpha)
    }
}

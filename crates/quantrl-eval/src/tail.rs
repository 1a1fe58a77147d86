//! Empirical value at risk and expected shortfall (CVaR) of a sample of returns.
//!
//! Values are **returns**, so a loss tail is negative: a 5% VaR of -0.02 means that 5% of the
//! periods lost 2% or more. With the returns sorted ascending, `x_(0) <= ... <= x_(n-1)`, and
//! `k = floor((n - 1) alpha)` (the conventions of `cvar.json`):
//!
//! * [`QuantileMethod::Lower`]: `VaR = x_(k)`, numpy's `quantile(x, alpha, method='lower')`;
//! * [`QuantileMethod::Linear`]: linear interpolation at `(n - 1) alpha`, numpy's default,
//!   which is empyrical's `value_at_risk`;
//! * [`TailConvention::Lower`]: `ES` = mean of **all** returns `<= x_(k)`, ties included;
//! * [`TailConvention::Empyrical`]: `ES` = mean of exactly the `k + 1` smallest returns,
//!   empyrical's `conditional_value_at_risk`.
//!
//! The two expected shortfalls differ only when values tie with `x_(k)`.

use quantrl_core::check_open;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, check_series};

/// How [`value_at_risk`] takes the empirical `alpha`-quantile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantileMethod {
    /// The sample value `sorted(returns)[floor((n - 1) alpha)]` (numpy `method='lower'`).
    Lower,
    /// Linear interpolation between the two sample values around `(n - 1) alpha` (numpy's
    /// default `method='linear'`, empyrical's `value_at_risk`).
    Linear,
}

/// Which returns [`expected_shortfall`] averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailConvention {
    /// All returns at or below the lower VaR `sorted(returns)[k]`, `k = floor((n - 1) alpha)`,
    /// ties with it included (so more than `k + 1` returns when some tie with it).
    Lower,
    /// Exactly the `k + 1` smallest returns, `k = floor((n - 1) alpha)`, ties broken
    /// arbitrarily (empyrical's `conditional_value_at_risk`).
    Empyrical,
}

/// The lower tail of a sample at one `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmpiricalTail {
    /// The lower VaR `sorted(returns)[k]`, `k = floor((n - 1) alpha)`.
    pub value_at_risk: f64,
    /// The mean of the tail.
    pub expected_shortfall: f64,
    /// How many returns the tail holds.
    pub n_tail: usize,
}

/// The returns sorted ascending, after checking them and `alpha`.
fn sorted_sample(returns: &[f64], alpha: f64) -> Result<Vec<f64>, EvalError> {
    check_series("returns", returns)?;
    check_open("alpha", alpha, 0.0, 1.0)?;
    let mut sorted = returns.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(sorted)
}

/// `floor((n - 1) alpha)`: below `n` for `alpha` in (0, 1).
fn lower_index(n: usize, alpha: f64) -> usize {
    ((n - 1) as f64 * alpha).floor() as usize
}

/// The empirical VaR at level `alpha` in (0, 1): the `alpha`-quantile of the returns taken
/// by `method`, a return (negative in a loss tail, not a negated loss).
///
/// ```
/// use quantrl_eval::{value_at_risk, QuantileMethod};
/// let r = [0.03, -0.02, 0.01, -0.05, 0.0];
/// // (n - 1) alpha = 1: the second smallest return.
/// assert_eq!(value_at_risk(&r, 0.25, QuantileMethod::Lower)?, -0.02);
/// // (n - 1) alpha = 0.4: 40% of the way from -0.05 to -0.02.
/// assert!((value_at_risk(&r, 0.1, QuantileMethod::Linear)? - (-0.038)).abs() < 1e-15);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn value_at_risk(
    returns: &[f64],
    alpha: f64,
    method: QuantileMethod,
) -> Result<f64, EvalError> {
    let sorted = sorted_sample(returns, alpha)?;
    let n = sorted.len();
    Ok(match method {
        QuantileMethod::Lower => sorted[lower_index(n, alpha)],
        QuantileMethod::Linear => {
            let h = (n - 1) as f64 * alpha;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            lerp(sorted[lo], sorted[hi], h - h.floor())
        }
    })
}

/// numpy's `_lerp`: interpolate from the nearer end so that `t = 1` gives `b` exactly.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The empirical expected shortfall (CVaR) at level `alpha` in (0, 1): the mean return of
/// the lower tail chosen by `convention` (see [`TailConvention`]), a return. It is never
/// above the lower VaR nor above the mean return.
///
/// ```
/// use quantrl_eval::{expected_shortfall, TailConvention};
/// let r = [-0.03, -0.01, -0.01, 0.02, 0.04];
/// // k = floor(4 * 0.3) = 1, x_(1) = -0.01 ties with x_(2).
/// let lower = expected_shortfall(&r, 0.3, TailConvention::Lower)?;
/// let empyrical = expected_shortfall(&r, 0.3, TailConvention::Empyrical)?;
/// assert!((lower - (-0.05 / 3.0)).abs() < 1e-15);
/// assert!((empyrical - (-0.02)).abs() < 1e-15);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn expected_shortfall(
    returns: &[f64],
    alpha: f64,
    convention: TailConvention,
) -> Result<f64, EvalError> {
    Ok(empirical_tail(returns, alpha, convention)?.expected_shortfall)
}

/// The lower VaR, the expected shortfall under `convention` and the size of the tail.
pub fn empirical_tail(
    returns: &[f64],
    alpha: f64,
    convention: TailConvention,
) -> Result<EmpiricalTail, EvalError> {
    let sorted = sorted_sample(returns, alpha)?;
    let k = lower_index(sorted.len(), alpha);
    let var = sorted[k];
    let n_tail = match convention {
        // Sorted ascending, so every tie with x_(k) follows it directly.
        TailConvention::Lower => k + 1 + sorted[k + 1..].iter().take_while(|&&x| x <= var).count(),
        TailConvention::Empyrical => k + 1,
    };
    let tail = &sorted[..n_tail];
    Ok(EmpiricalTail {
        value_at_risk: var,
        expected_shortfall: tail.iter().sum::<f64>() / n_tail as f64,
        n_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_must_be_inside_the_unit_interval() {
        for alpha in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let err = value_at_risk(&[0.1, 0.2], alpha, QuantileMethod::Lower).unwrap_err();
            assert!(err.to_string().contains("alpha"), "{err}");
        }
        assert_eq!(
            expected_shortfall(&[], 0.1, TailConvention::Lower),
            Err(EvalError::EmptySeries { series: "returns" })
        );
    }

    #[test]
    fn a_single_return_is_its_own_tail() {
        let tail = empirical_tail(&[-0.04], 0.5, TailConvention::Lower).unwrap();
        assert_eq!(
            tail,
            EmpiricalTail {
                value_at_risk: -0.04,
                expected_shortfall: -0.04,
                n_tail: 1
            }
        );
        assert_eq!(
            value_at_risk(&[-0.04], 0.99, QuantileMethod::Linear).unwrap(),
            -0.04
        );
    }

    #[test]
    fn ties_extend_the_lower_tail() {
        let r = [0.0, -0.01, -0.01, -0.01, 0.05];
        // k = floor(4 * 0.2) = 0: x_(0) = -0.01 ties with two more.
        let lower = empirical_tail(&r, 0.2, TailConvention::Lower).unwrap();
        let empyrical = empirical_tail(&r, 0.2, TailConvention::Empyrical).unwrap();
        assert_eq!((lower.n_tail, empyrical.n_tail), (3, 1));
        assert_eq!(lower.value_at_risk, empyrical.value_at_risk);
        assert_eq!(empyrical.expected_shortfall, -0.01);
    }
}

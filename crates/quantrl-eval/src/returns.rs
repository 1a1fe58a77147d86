//! Return, risk and risk-adjusted return metrics of a series of simple periodic returns.
//!
//! The conventions are empyrical-reloaded 0.7.1's (checked against `metrics.json`):
//!
//! * returns are simple (not log) returns per period; `annualization` is the number of periods
//!   in a year ([`TRADING_DAYS_PER_YEAR`] for daily returns);
//! * standard deviations are sample ones (ddof = 1), except in [`downside_risk`];
//! * a ratio whose denominator is exactly 0 is +/-Infinity, or NaN when the numerator is 0
//!   too; the standard deviation of a constant series counts as exactly 0;
//! * Sharpe, Sortino and volatility of fewer than 2 returns are NaN.
//!
//! Every function rejects an empty series, a NaN or infinite value and a non-positive or
//! non-finite `annualization` with an [`EvalError`].

use quantrl_core::check_positive;

use crate::error::{EvalError, check_aligned, check_finite, check_series};
use crate::stats::{mean, sample_std, zero_dispersion_std};

/// Periods per year of daily returns: the annualization factor of empyrical's
/// `period='daily'`.
pub const TRADING_DAYS_PER_YEAR: f64 = 252.0;

/// Validate `returns` and `annualization`.
fn check_returns(returns: &[f64], annualization: f64) -> Result<(), EvalError> {
    check_series("returns", returns)?;
    check_positive("annualization", annualization)?;
    Ok(())
}

/// Cumulative return over the whole series: `prod(1 + r) - 1` (empyrical's
/// `cum_returns_final`).
///
/// ```
/// let total = quantrl_eval::cumulative_return(&[0.1, -0.1])?;
/// assert!((total - (-0.01)).abs() < 1e-15);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn cumulative_return(returns: &[f64]) -> Result<f64, EvalError> {
    check_series("returns", returns)?;
    Ok(growth(returns) - 1.0)
}

/// `prod(1 + r)`: the final wealth of one unit invested.
fn growth(returns: &[f64]) -> f64 {
    returns.iter().map(|r| 1.0 + r).product()
}

/// Compound annual growth rate: `prod(1 + r)^(A / n) - 1`, with `A = annualization` and `n`
/// the number of returns.
///
/// NaN when the final wealth `prod(1 + r)` is negative (a loss beyond -100%).
pub fn annual_return(returns: &[f64], annualization: f64) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    Ok(annual_return_unchecked(returns, annualization))
}

fn annual_return_unchecked(returns: &[f64], annualization: f64) -> f64 {
    // empyrical raises to 1 / num_years with num_years = n / A: same order for the same bits.
    let num_years = returns.len() as f64 / annualization;
    growth(returns).powf(1.0 / num_years) - 1.0
}

/// Annualized volatility: `std(r, ddof = 1) * sqrt(A)`; NaN for fewer than 2 returns.
pub fn annual_volatility(returns: &[f64], annualization: f64) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    Ok(sample_std(returns) * annualization.sqrt())
}

/// Annualized Sharpe ratio: `mean(r - rf) / std(r - rf, ddof = 1) * sqrt(A)`.
///
/// `risk_free` is the risk-free return per period. A constant excess return has a standard
/// deviation of exactly 0, so its Sharpe ratio is +/-Infinity (NaN when the mean is 0).
/// NaN for fewer than 2 returns.
///
/// ```
/// use quantrl_eval::{sharpe_ratio, TRADING_DAYS_PER_YEAR};
/// let s = sharpe_ratio(&[0.01, -0.01, 0.02], 0.0, TRADING_DAYS_PER_YEAR)?;
/// assert!((s - (4.0f64 / 21.0).sqrt() * 252f64.sqrt()).abs() < 1e-12);
/// assert_eq!(sharpe_ratio(&[0.001; 5], 0.0, 252.0)?, f64::INFINITY);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn sharpe_ratio(returns: &[f64], risk_free: f64, annualization: f64) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    check_finite("risk_free", risk_free)?;
    let excess = excess_returns(returns, risk_free);
    Ok(sharpe_per_period(&excess) * annualization.sqrt())
}

/// `r - rf` for every period.
fn excess_returns(returns: &[f64], risk_free: f64) -> Vec<f64> {
    returns.iter().map(|r| r - risk_free).collect()
}

/// Non-annualized Sharpe ratio `mean / std(ddof = 1)` of excess returns, with the
/// zero-dispersion convention; NaN for fewer than 2 values.
pub(crate) fn sharpe_per_period(excess: &[f64]) -> f64 {
    if excess.len() < 2 {
        return f64::NAN;
    }
    mean(excess) / zero_dispersion_std(excess)
}

/// Annualized downside risk: `sqrt(mean(min(r - req, 0)^2)) * sqrt(A)`.
///
/// The mean is over **all** `n` periods (a period above `required_return` counts as 0) and has
/// no degrees-of-freedom correction. `required_return` is per period.
pub fn downside_risk(
    returns: &[f64],
    required_return: f64,
    annualization: f64,
) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    check_finite("required_return", required_return)?;
    Ok(downside_risk_unchecked(
        returns,
        required_return,
        annualization,
    ))
}

fn downside_risk_unchecked(returns: &[f64], required_return: f64, annualization: f64) -> f64 {
    let sum_sq: f64 = returns
        .iter()
        .map(|r| (r - required_return).min(0.0))
        .map(|d| d * d)
        .sum();
    (sum_sq / returns.len() as f64).sqrt() * annualization.sqrt()
}

/// Annualized Sortino ratio: `mean(r - req) * A / downside_risk(r, req, A)`.
///
/// Without any return below `required_return` the downside risk is 0 and the ratio is
/// +/-Infinity, or NaN for a zero mean excess return. NaN for fewer than 2 returns.
pub fn sortino_ratio(
    returns: &[f64],
    required_return: f64,
    annualization: f64,
) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    check_finite("required_return", required_return)?;
    if returns.len() < 2 {
        return Ok(f64::NAN);
    }
    let excess = excess_returns(returns, required_return);
    let annual_excess = mean(&excess) * annualization;
    Ok(annual_excess / downside_risk_unchecked(returns, required_return, annualization))
}

/// Maximum drawdown, a fraction in [-1, 0] (negative: the worst fall from a running peak).
///
/// The wealth path is anchored at `V_0 = 100` **before** the first return,
/// `V_t = 100 * prod_{s <= t}(1 + r_s)`, so a loss on the first day counts; the drawdown at t
/// is `(V_t - P_t) / P_t` with `P_t = max(V_0..V_t)`. 0 when wealth never falls below a peak.
/// Below -1 only when some return is below -100%.
///
/// ```
/// let mdd = quantrl_eval::max_drawdown(&[-0.5, 1.0, -0.25])?;
/// assert_eq!(mdd, -0.5);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn max_drawdown(returns: &[f64]) -> Result<f64, EvalError> {
    check_series("returns", returns)?;
    Ok(max_drawdown_unchecked(returns))
}

fn max_drawdown_unchecked(returns: &[f64]) -> f64 {
    const ANCHOR: f64 = 100.0;
    let mut growth = 1.0;
    let mut peak = ANCHOR;
    let mut worst: f64 = 0.0;
    for r in returns {
        growth *= 1.0 + r;
        // empyrical multiplies the cumulative product by the anchor: same order, same bits.
        let wealth = growth * ANCHOR;
        peak = peak.max(wealth);
        worst = worst.min((wealth - peak) / peak);
    }
    worst
}

/// Calmar ratio: `annual_return / |max_drawdown|`.
///
/// NaN when the maximum drawdown is 0 (no drawdown) or when the ratio is infinite.
pub fn calmar_ratio(returns: &[f64], annualization: f64) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    let mdd = max_drawdown_unchecked(returns);
    if mdd >= 0.0 {
        return Ok(f64::NAN);
    }
    let ratio = annual_return_unchecked(returns, annualization) / mdd.abs();
    Ok(if ratio.is_infinite() { f64::NAN } else { ratio })
}

/// Annualized information ratio against a benchmark: the Sharpe ratio of the active returns
/// `r - b`, `mean(r - b) / std(r - b, ddof = 1) * sqrt(A)`.
///
/// `std(r - b)` is the tracking error. empyrical's `excess_sharpe` is the same ratio without
/// annualization (`annualization = 1`). A constant active return gives +/-Infinity (NaN when
/// it is 0, for example `benchmark == returns`). `benchmark` must be as long as `returns`.
pub fn information_ratio(
    returns: &[f64],
    benchmark: &[f64],
    annualization: f64,
) -> Result<f64, EvalError> {
    check_returns(returns, annualization)?;
    check_aligned("benchmark", benchmark, returns.len())?;
    let active: Vec<f64> = returns.iter().zip(benchmark).map(|(r, b)| r - b).collect();
    Ok(sharpe_per_period(&active) * annualization.sqrt())
}

/// Win rate: the fraction of the periods with a nonzero return whose return is positive,
/// `#{r > 0} / #{r != 0}`.
///
/// Flat periods (return exactly 0, e.g. out of the market) count neither as wins nor as
/// losses, as in quantstats' `win_rate`. NaN when every return is 0.
pub fn win_rate(returns: &[f64]) -> Result<f64, EvalError> {
    check_series("returns", returns)?;
    let wins = returns.iter().filter(|&&r| r > 0.0).count();
    let decided = returns.iter().filter(|&&r| r != 0.0).count();
    Ok(if decided == 0 {
        f64::NAN
    } else {
        wins as f64 / decided as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: f64 = TRADING_DAYS_PER_YEAR;

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            sharpe_ratio(&[], 0.0, A),
            Err(EvalError::EmptySeries { series: "returns" })
        );
        let err = max_drawdown(&[0.1, f64::NAN]).unwrap_err();
        assert!(matches!(
            err,
            EvalError::NonFinite {
                series: "returns",
                index: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("returns`[1] = NaN"), "{err}");
        let err = annual_return(&[0.1], 0.0).unwrap_err();
        assert!(err.to_string().contains("annualization"), "{err}");
        let err = information_ratio(&[0.1, 0.2], &[0.1], A).unwrap_err();
        assert_eq!(
            err,
            EvalError::LengthMismatch {
                series: "benchmark",
                len: 1,
                returns_len: 2
            }
        );
        assert!(sortino_ratio(&[0.1, 0.2], f64::INFINITY, A).is_err());
    }

    #[test]
    fn short_series_give_nan() {
        assert!(sharpe_ratio(&[0.01], 0.0, A).unwrap().is_nan());
        assert!(sortino_ratio(&[0.01], 0.0, A).unwrap().is_nan());
        assert!(annual_volatility(&[0.01], A).unwrap().is_nan());
        assert_eq!(downside_risk(&[-0.01], 0.0, 1.0).unwrap(), 0.01);
    }

    #[test]
    fn drawdown_is_anchored_before_the_first_return() {
        assert_eq!(max_drawdown(&[-0.1]).unwrap(), -0.1 + 0.0);
        assert_eq!(max_drawdown(&[0.1, 0.2]).unwrap(), 0.0);
        assert!(calmar_ratio(&[0.1, 0.2], A).unwrap().is_nan());
    }

    #[test]
    fn information_ratio_is_the_sharpe_ratio_of_active_returns() {
        let r = [0.01, -0.02, 0.015, 0.003];
        let zero = [0.0; 4];
        assert_eq!(
            information_ratio(&r, &zero, A).unwrap(),
            sharpe_ratio(&r, 0.0, A).unwrap()
        );
        assert!(information_ratio(&r, &r, A).unwrap().is_nan());
    }

    #[test]
    fn win_rate_ignores_flat_periods() {
        assert_eq!(win_rate(&[0.01, 0.0, -0.02, 0.03, 0.0]).unwrap(), 2.0 / 3.0);
        assert!(win_rate(&[0.0, 0.0]).unwrap().is_nan());
    }
}

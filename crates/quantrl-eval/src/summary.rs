//! Every metric of a return series at once, as a serializable record.

use quantrl_core::{ConfigError, check_non_negative, check_open, check_positive};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, check_aligned, check_finite, check_series};
use crate::positions::{exposure, turnover};
use crate::returns::{
    TRADING_DAYS_PER_YEAR, annual_return, annual_volatility, calmar_ratio, cumulative_return,
    downside_risk, information_ratio, max_drawdown, sharpe_ratio, sortino_ratio, win_rate,
};
use crate::sharpe_inference::{deflated_sharpe_ratio, probabilistic_sharpe_ratio};
use crate::tail::{TailConvention, empirical_tail};

/// The parameters of a [`PerformanceSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Periods per year (252 for daily returns).
    pub annualization: f64,
    /// Risk-free return per period, for the Sharpe ratio and the PSR/DSR.
    pub risk_free: f64,
    /// Required return per period, for the Sortino ratio and the downside risk.
    pub required_return: f64,
    /// Tail level of the VaR and the expected shortfall, in (0, 1).
    pub alpha: f64,
    /// Which returns the expected shortfall averages.
    pub tail_convention: TailConvention,
    /// Number of independent strategies tried before this one, for the deflated Sharpe ratio
    /// (1: no deflation).
    pub n_trials: usize,
    /// Variance of the trials' per-period Sharpe ratios, for the deflated Sharpe ratio.
    pub trials_sharpe_variance: f64,
}

impl Default for SummaryConfig {
    /// Daily returns, no risk-free rate nor required return, a 5% tail with ties included,
    /// one trial.
    fn default() -> Self {
        Self {
            annualization: TRADING_DAYS_PER_YEAR,
            risk_free: 0.0,
            required_return: 0.0,
            alpha: 0.05,
            tail_convention: TailConvention::Lower,
            n_trials: 1,
            trials_sharpe_variance: 0.0,
        }
    }
}

impl SummaryConfig {
    /// Check every field: `annualization > 0`, `0 < alpha < 1`, `n_trials >= 1`, a finite
    /// non-negative variance and finite per-period rates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("annualization", self.annualization)?;
        check_finite("risk_free", self.risk_free)?;
        check_finite("required_return", self.required_return)?;
        check_open("alpha", self.alpha, 0.0, 1.0)?;
        if self.n_trials == 0 {
            return Err(ConfigError::out_of_range("n_trials", 0, ">= 1"));
        }
        check_non_negative("trials_sharpe_variance", self.trials_sharpe_variance)
    }
}

/// The performance of one return series: every metric of this crate, with the configuration
/// that produced them.
///
/// Ratios follow empyrical's conventions, so some may be NaN or infinite (a constant return
/// has an infinite Sharpe ratio, no drawdown a NaN Calmar ratio). In JSON, NaN is written as
/// `null` and infinities as `"Infinity"` / `"-Infinity"`, and read back the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceSummary {
    /// The parameters used.
    pub config: SummaryConfig,
    /// Number of returns.
    pub n_periods: usize,
    /// `prod(1 + r) - 1`.
    #[serde(with = "crate::float_serde")]
    pub cumulative_return: f64,
    /// Compound annual growth rate.
    #[serde(with = "crate::float_serde")]
    pub annual_return: f64,
    /// Annualized sample standard deviation.
    #[serde(with = "crate::float_serde")]
    pub annual_volatility: f64,
    /// Annualized Sharpe ratio.
    #[serde(with = "crate::float_serde")]
    pub sharpe_ratio: f64,
    /// Annualized Sortino ratio.
    #[serde(with = "crate::float_serde")]
    pub sortino_ratio: f64,
    /// Annualized downside risk.
    #[serde(with = "crate::float_serde")]
    pub downside_risk: f64,
    /// Maximum drawdown (a negative fraction).
    #[serde(with = "crate::float_serde")]
    pub max_drawdown: f64,
    /// Annual return over the absolute maximum drawdown.
    #[serde(with = "crate::float_serde")]
    pub calmar_ratio: f64,
    /// Positive returns among the nonzero ones.
    #[serde(with = "crate::float_serde")]
    pub win_rate: f64,
    /// Lower empirical VaR at `config.alpha` (a return).
    #[serde(with = "crate::float_serde")]
    pub value_at_risk: f64,
    /// Expected shortfall at `config.alpha` under `config.tail_convention` (a return).
    #[serde(with = "crate::float_serde")]
    pub expected_shortfall: f64,
    /// Probability that the true Sharpe ratio is above 0.
    #[serde(with = "crate::float_serde")]
    pub probabilistic_sharpe_ratio: f64,
    /// Probabilistic Sharpe ratio deflated for `config.n_trials` trials.
    #[serde(with = "crate::float_serde")]
    pub deflated_sharpe_ratio: f64,
    /// Annualized information ratio, when a benchmark was given.
    #[serde(
        with = "crate::float_serde::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub information_ratio: Option<f64>,
    /// Average one-way turnover per period, when positions were given.
    #[serde(
        with = "crate::float_serde::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub turnover: Option<f64>,
    /// Average gross exposure, when positions were given.
    #[serde(
        with = "crate::float_serde::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposure: Option<f64>,
}

impl PerformanceSummary {
    /// Compute every metric of `returns`, with the information ratio against `benchmark`
    /// and the turnover and exposure of `positions` when given (both aligned with `returns`,
    /// period by period).
    ///
    /// ```
    /// use quantrl_eval::{PerformanceSummary, SummaryConfig};
    /// let returns = [0.01, -0.02, 0.015, 0.003, -0.001];
    /// let positions = [1.0, 1.0, 0.5, 0.5, 1.0];
    /// let summary =
    ///     PerformanceSummary::compute(&returns, None, Some(&positions), &SummaryConfig::default())?;
    /// assert_eq!(summary.n_periods, 5);
    /// assert_eq!(summary.max_drawdown, quantrl_eval::max_drawdown(&returns)?);
    /// assert_eq!(summary.information_ratio, None);
    /// assert_eq!(summary.exposure, Some(0.8));
    /// # Ok::<(), quantrl_eval::EvalError>(())
    /// ```
    pub fn compute(
        returns: &[f64],
        benchmark: Option<&[f64]>,
        positions: Option<&[f64]>,
        config: &SummaryConfig,
    ) -> Result<Self, EvalError> {
        config.validate()?;
        check_series("returns", returns)?;
        if let Some(b) = benchmark {
            check_aligned("benchmark", b, returns.len())?;
        }
        if let Some(p) = positions {
            check_aligned("positions", p, returns.len())?;
        }
        let a = config.annualization;
        let tail = empirical_tail(returns, config.alpha, config.tail_convention)?;
        Ok(Self {
            config: config.clone(),
            n_periods: returns.len(),
            cumulative_return: cumulative_return(returns)?,
            annual_return: annual_return(returns, a)?,
            annual_volatility: annual_volatility(returns, a)?,
            sharpe_ratio: sharpe_ratio(returns, config.risk_free, a)?,
            sortino_ratio: sortino_ratio(returns, config.required_return, a)?,
            downside_risk: downside_risk(returns, config.required_return, a)?,
            max_drawdown: max_drawdown(returns)?,
            calmar_ratio: calmar_ratio(returns, a)?,
            win_rate: win_rate(returns)?,
            value_at_risk: tail.value_at_risk,
            expected_shortfall: tail.expected_shortfall,
            probabilistic_sharpe_ratio: probabilistic_sharpe_ratio(returns, config.risk_free, 0.0)?,
            deflated_sharpe_ratio: deflated_sharpe_ratio(
                returns,
                config.risk_free,
                config.n_trials,
                config.trials_sharpe_variance,
            )?,
            information_ratio: benchmark
                .map(|b| information_ratio(returns, b, a))
                .transpose()?,
            turnover: positions.map(turnover).transpose()?,
            exposure: positions.map(exposure).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_bad_ones_are_named() {
        SummaryConfig::default().validate().unwrap();
        let bad = SummaryConfig {
            alpha: 1.0,
            ..SummaryConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("alpha"));
        let bad = SummaryConfig {
            n_trials: 0,
            ..SummaryConfig::default()
        };
        let err = PerformanceSummary::compute(&[0.1, 0.2], None, None, &bad).unwrap_err();
        assert!(err.to_string().contains("n_trials"), "{err}");
    }

    #[test]
    fn misaligned_series_are_errors() {
        let config = SummaryConfig::default();
        let err = PerformanceSummary::compute(&[0.1, 0.2], None, Some(&[1.0]), &config);
        assert_eq!(
            err.unwrap_err(),
            EvalError::LengthMismatch {
                series: "positions",
                len: 1,
                returns_len: 2
            }
        );
        let err = PerformanceSummary::compute(&[0.1, 0.2], Some(&[0.0, f64::NAN]), None, &config);
        assert!(matches!(
            err.unwrap_err(),
            EvalError::NonFinite {
                series: "benchmark",
                index: 1,
                ..
            }
        ));
    }

    #[test]
    fn json_round_trip_keeps_nan_and_infinity() {
        // Constant positive returns: infinite Sharpe and Sortino, NaN Calmar and PSR.
        let returns = [0.001; 20];
        let summary = PerformanceSummary::compute(
            &returns,
            Some(&[0.0; 20]),
            None,
            &SummaryConfig::default(),
        )
        .unwrap();
        assert_eq!(summary.sharpe_ratio, f64::INFINITY);
        assert!(summary.calmar_ratio.is_nan());
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["sharpe_ratio"], "Infinity");
        assert!(json["calmar_ratio"].is_null());
        assert!(json.get("turnover").is_none());
        let back: PerformanceSummary = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.sharpe_ratio, f64::INFINITY);
        assert!(back.calmar_ratio.is_nan());
        assert_eq!(back.information_ratio, Some(f64::INFINITY));
        assert_eq!(back.turnover, None);
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }
}

//! # quantrl-eval
//!
//! ```
//! use quantrl_eval::{
//!     PerformanceSummary, SummaryConfig, TRADING_DAYS_PER_YEAR, TailConvention,
//!     expected_shortfall, max_drawdown, sharpe_ratio,
//! };
//!
//! // Daily simple returns of a strategy.
//! let returns = [0.012, -0.004, 0.007, -0.021, 0.015, 0.003, -0.008, 0.011];
//! let sharpe = sharpe_ratio(&returns, 0.0, TRADING_DAYS_PER_YEAR)?;
//! let mdd = max_drawdown(&returns)?;
//! let es = expected_shortfall(&returns, 0.25, TailConvention::Lower)?;
//! assert!(sharpe > 0.0 && (-1.0..0.0).contains(&mdd) && es < 0.0);
//!
//! // Everything at once, serializable to a JSON report.
//! let summary = PerformanceSummary::compute(&returns, None, None, &SummaryConfig::default())?;
//! assert_eq!(summary.sharpe_ratio, sharpe);
//! let json = serde_json::to_string(&summary).unwrap();
//! assert!(json.contains("\"max_drawdown\""));
//!
//! // Bad input is an error, not a panic.
//! assert!(sharpe_ratio(&[], 0.0, TRADING_DAYS_PER_YEAR).is_err());
//! # Ok::<(), quantrl_eval::EvalError>(())
//! ```
//!
//! Performance metrics of a series of simple periodic returns, as plain functions over
//! `&[f64]`:
//!
//! * return and risk: [`cumulative_return`], [`annual_return`], [`annual_volatility`],
//!   [`downside_risk`], [`max_drawdown`];
//! * risk-adjusted return: [`sharpe_ratio`], [`sortino_ratio`], [`calmar_ratio`],
//!   [`information_ratio`], [`win_rate`];
//! * tail risk of the empirical sample: [`value_at_risk`], [`expected_shortfall`],
//!   [`empirical_tail`];
//! * trading activity from positions: [`turnover`], [`exposure`];
//! * how far to trust a Sharpe ratio: [`probabilistic_sharpe_ratio`],
//!   [`deflated_sharpe_ratio`], with [`skewness`], [`kurtosis`], [`expected_max_sharpe`] and
//!   the standard normal [`normal_cdf`] / [`normal_inv_cdf`];
//! * all of them at once: [`PerformanceSummary`].
//!
//! The conventions are empyrical-reloaded 0.7.1's, checked against the golden files
//! `metrics.json` and `cvar.json` (each function states its formula): sample standard
//! deviations, a ratio over an exactly zero dispersion is +/-Infinity or NaN, the drawdown path
//! is anchored before the first return. Functions return `Err(`[`EvalError`]`)` for an empty
//! series, a NaN or infinite value, misaligned series or a parameter out of range, and
//! NaN/infinity where the metric itself is undefined or infinite.

pub mod backtest;
pub mod baselines;
mod date_serde;
mod error;
mod float_serde;
mod interval;
mod normal;
pub mod plots;
mod positions;
pub mod report;
mod returns;
mod sharpe_inference;
mod stats;
mod summary;
mod tail;
pub mod walk_forward;

pub use backtest::{
    AllocationPolicy, BacktestPolicy, BacktestResult, Backtester, EnvSpec, EquityPoint,
    PolicyActions, Trade,
};
pub use baselines::{BaselineConfig, IndexSeries, standard_set};
pub use error::EvalError;
pub use interval::{MeanInterval, student_t_cdf, student_t_inv_cdf};
pub use normal::{erfc, normal_cdf, normal_inv_cdf};
pub use positions::{exposure, turnover};
pub use report::{
    Fnv1a64, MetricsRow, REPORT_FORMAT_VERSION, Report, RunManifest, compare, format_table,
    git_commit, market_hash,
};
pub use returns::{
    TRADING_DAYS_PER_YEAR, annual_return, annual_volatility, calmar_ratio, cumulative_return,
    downside_risk, information_ratio, max_drawdown, sharpe_ratio, sortino_ratio, win_rate,
};
pub use sharpe_inference::{
    deflated_sharpe_ratio, expected_max_sharpe, kurtosis, probabilistic_sharpe_ratio, skewness,
};
pub use summary::{PerformanceSummary, SummaryConfig};
pub use tail::{
    EmpiricalTail, QuantileMethod, TailConvention, empirical_tail, expected_shortfall,
    value_at_risk,
};
pub use walk_forward::{
    MetricIntervals, OutOfSample, WalkForward, WalkForwardResult, Window, WindowDates, WindowRun,
    calendar_windows, check_windows, row_windows,
};

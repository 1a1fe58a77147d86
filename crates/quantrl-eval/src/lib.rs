//! # quantrl-eval
//!
//! ```
//! use std::sync::Arc;
//! use quantrl_envs::trading::{Market, SingleAssetConfig, TradingConfig};
//! use quantrl_eval::{
//!     BacktestPolicy, Backtester, BaselineConfig, EnvSpec, EvalError, PolicyActions, Report,
//!     RunManifest, format_table, market_hash, standard_set,
//! };
//!
//! // A market and the environment configuration the agent trained with.
//! let close: Vec<f64> = (0..300).map(|t| 100.0 * (1.0 + 0.1 * (t as f64 / 20.0).sin())).collect();
//! let market = Arc::new(Market::from_close(1, close)?);
//! let spec = EnvSpec::SingleAsset(SingleAssetConfig {
//!     trading: TradingConfig { window: 5, span_start: Some(100), ..Default::default() },
//!     ..Default::default()
//! });
//! let backtester = Backtester::new(market.clone(), spec)?;
//!
//! // Any policy: here, always long (action 2 of short/flat/long).
//! struct Long;
//! impl BacktestPolicy for Long {
//!     fn reset(&mut self, _n_envs: usize) {}
//!     fn act(&mut self, _obs: &[f32], _masks: Option<&[bool]>, _start: &[bool],
//!            out: &mut PolicyActions) -> Result<(), EvalError> {
//!         out.discrete_mut().expect("discrete actions")[0] = 2;
//!         Ok(())
//!     }
//! }
//! let agent = backtester.run(&mut Long)?;
//! assert_eq!(agent.trades.len(), 1);
//!
//! // Baselines on the same span with the same costs, side by side with the agent.
//! let mut results = vec![agent];
//! results.extend(standard_set(&backtester, &BaselineConfig::default())?);
//! let manifest = RunManifest::new(serde_json::json!({"example": true}), market_hash(&market), vec![0]);
//! let report = Report::new(manifest, results, Some("buy-and-hold"))?;
//! let table = format_table(&report.metrics);
//! assert!(table.contains("oracle") && table.contains("Sharpe"));
//! // report::write_all(dir, &report) and plots::write_all(dir, &report) save it.
//!
//! // The metrics alone, on any series of returns:
//! use quantrl_eval::{PerformanceSummary, SummaryConfig, TailConvention, expected_shortfall,
//!     max_drawdown, sharpe_ratio, TRADING_DAYS_PER_YEAR};
//! let returns = [0.012, -0.004, 0.007, -0.021, 0.015, 0.003, -0.008, 0.011];
//! let sharpe = sharpe_ratio(&returns, 0.0, TRADING_DAYS_PER_YEAR)?;
//! let mdd = max_drawdown(&returns)?;
//! let es = expected_shortfall(&returns, 0.25, TailConvention::Lower)?;
//! assert!(sharpe > 0.0 && (-1.0..0.0).contains(&mdd) && es < 0.0);
//! let summary = PerformanceSummary::compute(&returns, None, None, &SummaryConfig::default())?;
//! assert_eq!(summary.sharpe_ratio, sharpe);
//! // Bad input is an error, not a panic.
//! assert!(sharpe_ratio(&[], 0.0, TRADING_DAYS_PER_YEAR).is_err());
//! # Ok::<(), quantrl_eval::EvalError>(())
//! ```
//!
//! Evaluation of quantrl agents:
//!
//! * [`backtest`]: a [`Backtester`] runs any [`BacktestPolicy`] deterministically over a span
//!   of a trading environment, through the same engine and [cost
//!   model](quantrl_envs::trading::CostModel) as training, and returns a [`BacktestResult`]:
//!   the equity curve ([`EquityPoint`]: NAV, cash, gross exposure, drawdown, return, costs,
//!   weights), the trade log ([`Trade`]: costs by component) and the metrics. A masked or
//!   out-of-space action is a typed [`EvalError`];
//! * [`baselines`]: cash, buy-and-hold, equal weight rebalanced every `k` bars, the
//!   perfect-foresight oracle and an index series (the embedded S&P 500), on the same span
//!   and costs ([`standard_set`]);
//! * [`walk_forward`]: rolling train/test [`Window`]s from dates or rows, a driver that trains
//!   and tests every window with several seeds ([`WalkForward`]), out-of-sample series per
//!   seed and mean metrics with Student-t confidence intervals across seeds
//!   ([`MeanInterval`]);
//! * [`report`]: the metrics table ([`compare`], [`format_table`]), JSON and CSV files written
//!   atomically ([`report::write_all`]), the run manifest ([`RunManifest`]: configuration,
//!   data hash, seeds, versions, git commit);
//! * [`plots`]: PNG plots of equity, drawdown, positions and walk-forward equity
//!   ([`plots::write_all`]).
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
    format_walk_forward_table, git_commit, market_hash,
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
    calendar_windows, check_windows, row_windows, with_embargo,
};

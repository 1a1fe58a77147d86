//! Vectorized trading environments with honest accounting.
//!
//! - [`Market`]: the prices (close, optional open and volume), features and tradable bars an
//!   environment replays, as plain row-major arrays (built by `quantrl-data` or by hand);
//! - [`SingleAssetEnv`]: one asset, discrete position levels or a continuous target weight;
//! - [`PortfolioEnv`]: `N` assets plus cash, continuous target weights (softmax or simplex
//!   projection, leverage and concentration caps) or discrete portfolio regimes;
//! - [`CostModel`]: fee, half-spread, square-root impact (linear fallback without volume),
//!   borrow, financing, random slippage — the same model backtests use;
//! - [`RiskLimits`]: position, gross, turnover and risk-budget limits, enforced by action masks
//!   recomputed every step (discrete actions) or by limiting the target (continuous actions);
//! - [`AdversaryControls`]: per-environment spread, impact and volatility multipliers another
//!   agent may set every step.
//!
//! Both environments are a [`TradingEnv`] (they dereference to it) whose docs give the exact
//! timeline of a step. The invariants the tests check: NAV equals cash plus positions at the
//! close; costs are never negative; without costs or trades NAV follows the prices; summed
//! log-return rewards equal the log of final over initial NAV; the observation at bar `t` does
//! not change when prices after `t` do.

mod actions;
mod costs;
mod env;
mod from_data;
mod kernels;
mod market;
mod state;

pub use actions::{PortfolioActions, PositionActions, WeightMapping, default_regimes};
pub use costs::{CostBreakdown, CostModel};
pub use env::{
    AdversaryControls, ExecutionPrice, Fill, PortfolioConfig, PortfolioEnv, RewardConfig,
    RewardKind, RiskLimits, SingleAssetConfig, SingleAssetEnv, StepInfo, TradingConfig, TradingEnv,
};
pub use from_data::{
    Sp500Split, default_test_start, default_validation_start, googl_market, long_short_config,
    market_from_ohlcv, market_from_panel, planted_signal_market, row_of_date, sp500_market,
    sp500_regimes_config, sp500_split,
};
pub use market::{DEFAULT_ESTIMATION_WINDOW, Market};

//! Deterministic backtests of a policy through a trading environment.
//!
//! A [`Backtester`] replays one span of a [`Market`] through the same [`TradingEnv`] engine
//! (and so the same [`CostModel`], execution price, risk limits and action masks) that
//! training uses, with one environment, no random start and no episode length: the episode
//! runs from the first usable row of the span to its last row, or until ruin. A
//! [`BacktestPolicy`] chooses every action; the result is a [`BacktestResult`] with the equity
//! curve ([`EquityPoint`] per bar), the trade log ([`Trade`] per asset and bar traded, costs
//! by component) and the [`PerformanceSummary`] of the per-step returns.
//!
//! The timeline is the environment's: the action decided on bar `t` (after its close)
//! executes at the open or close of bar `t + 1` and the book is marked at the close of
//! `t + 1`. The first [`EquityPoint`] is the decision row with the initial NAV; every later
//! point is the bar a step ended on.

use std::ops::Range;
use std::sync::Arc;

use quantrl_core::{Actions, ConfigError, Space, StepBatch, VecEnv};
use quantrl_data::Date;
use quantrl_envs::trading::{
    CostBreakdown, CostModel, ExecutionPrice, Market, PortfolioActions, PortfolioConfig,
    PortfolioEnv, PositionActions, SingleAssetConfig, SingleAssetEnv, TradingConfig, TradingEnv,
};
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::summary::{PerformanceSummary, SummaryConfig};

/// A policy a [`Backtester`] can run: anything that maps observations (and action masks) to
/// actions, deterministically for a reproducible backtest.
///
/// The reinforcement-learning policies (feed-forward and recurrent) implement it in the
/// algorithms crate; the baselines of [`crate::baselines`] implement it here. A recurrent
/// policy resets its hidden state where `episode_start` is `true`.
///
/// ```
/// use quantrl_eval::{BacktestPolicy, EvalError, PolicyActions};
///
/// /// Always choose discrete action `k` (e.g. "long" in a short/flat/long environment).
/// struct Always(u32);
///
/// impl BacktestPolicy for Always {
///     fn reset(&mut self, _n_envs: usize) {}
///     fn act(
///         &mut self,
///         _obs: &[f32],
///         _masks: Option<&[bool]>,
///         _episode_start: &[bool],
///         out: &mut PolicyActions,
///     ) -> Result<(), EvalError> {
///         match out {
///             PolicyActions::Discrete(a) => a.fill(self.0),
///             PolicyActions::Continuous(_) => {
///                 return Err(EvalError::UnsupportedSpace {
///                     policy: self.label().into(),
///                     space: "a continuous action space".into(),
///                 });
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait BacktestPolicy {
    /// The name of the policy in reports and errors (`agent` unless overridden).
    fn label(&self) -> &str {
        "agent"
    }

    /// Called once before the run with the number of environments (1 for a backtest).
    fn reset(&mut self, n_envs: usize);

    /// Decide actions for the current observations.
    ///
    /// `obs` holds `n_envs` observations back to back; `action_masks`, for discrete action
    /// spaces, `n_envs` masks (`true` = allowed); `episode_start[i]` is `true` on the first
    /// step of environment `i`'s episode. `out` arrives sized for the action space:
    /// [`PolicyActions::Discrete`] with one index per environment, or
    /// [`PolicyActions::Continuous`] with `n_envs * action_dim` values; write the actions
    /// into it. A masked or out-of-space action is refused by the backtester with a typed
    /// error naming the policy and the bar.
    fn act(
        &mut self,
        obs: &[f32],
        action_masks: Option<&[bool]>,
        episode_start: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError>;
}

/// The actions a [`BacktestPolicy`] writes: one discrete index per environment, or the flat
/// continuous action of every environment (`n_envs * action_dim`, environment-major).
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyActions {
    /// For `Discrete(k)` action spaces: an index in `0..k` per environment.
    Discrete(Vec<u32>),
    /// For `Box` action spaces: `action_dim` values per environment.
    Continuous(Vec<f32>),
}

impl PolicyActions {
    /// Zeroed actions of the right kind and length for `n_envs` environments of `space`
    /// (`MultiDiscrete` spaces take one index per component).
    pub fn for_space(space: &Space, n_envs: usize) -> Self {
        match space {
            Space::Box { .. } => Self::Continuous(vec![0.0; n_envs * space.flat_dim()]),
            _ => Self::Discrete(vec![0; n_envs * space.flat_dim()]),
        }
    }

    /// The discrete actions, or `None` for continuous ones.
    pub fn discrete_mut(&mut self) -> Option<&mut [u32]> {
        match self {
            Self::Discrete(a) => Some(a),
            Self::Continuous(_) => None,
        }
    }

    /// The continuous actions, or `None` for discrete ones.
    pub fn continuous_mut(&mut self) -> Option<&mut [f32]> {
        match self {
            Self::Continuous(a) => Some(a),
            Self::Discrete(_) => None,
        }
    }

    /// The actions as the environment interface takes them.
    pub fn as_actions(&self) -> Actions<'_> {
        match self {
            Self::Discrete(a) => Actions::Discrete(a),
            Self::Continuous(a) => Actions::Continuous(a),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Discrete(a) => format!("{} discrete actions", a.len()),
            Self::Continuous(a) => format!("{} continuous actions", a.len()),
        }
    }
}

/// Which trading environment a backtest replays, with its configuration (as for training).
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSpec {
    /// A [`SingleAssetEnv`].
    SingleAsset(SingleAssetConfig),
    /// A [`PortfolioEnv`].
    Portfolio(PortfolioConfig),
}

impl EnvSpec {
    /// The common trading settings (costs, execution, window, span, limits).
    pub fn trading(&self) -> &TradingConfig {
        match self {
            Self::SingleAsset(c) => &c.trading,
            Self::Portfolio(c) => &c.trading,
        }
    }

    fn trading_mut(&mut self) -> &mut TradingConfig {
        match self {
            Self::SingleAsset(c) => &mut c.trading,
            Self::Portfolio(c) => &mut c.trading,
        }
    }

    /// The same environment with discrete actions that select among `allocations` (target
    /// weights, one per asset, each): position levels for a single asset, portfolio regimes
    /// otherwise. The trading settings are unchanged.
    pub fn with_allocations(&self, allocations: Vec<Vec<f64>>) -> Self {
        match self {
            Self::SingleAsset(c) => Self::SingleAsset(SingleAssetConfig {
                trading: c.trading.clone(),
                actions: PositionActions::Levels {
                    levels: allocations
                        .iter()
                        .map(|a| a.first().copied().unwrap_or(f64::NAN))
                        .collect(),
                },
            }),
            Self::Portfolio(c) => Self::Portfolio(PortfolioConfig {
                trading: c.trading.clone(),
                actions: PortfolioActions::Regimes {
                    allocations: Some(allocations),
                },
            }),
        }
    }

    /// Build the environment on `market` (its engine, [`TradingEnv`]).
    pub fn build(&self, market: Arc<Market>) -> Result<TradingEnv, EvalError> {
        Ok(match self {
            Self::SingleAsset(c) => (*SingleAssetEnv::new(market, c.clone())?).clone(),
            Self::Portfolio(c) => (*PortfolioEnv::new(market, c.clone())?).clone(),
        })
    }
}

/// One bar of an equity curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// Market row (bar index) whose close marks the book.
    pub row: usize,
    /// Date of the row, when the backtest has dates.
    #[serde(with = "crate::date_serde")]
    pub date: Option<Date>,
    /// Net asset value: cash plus positions at the close.
    pub nav: f64,
    /// Cash (negative when leveraged).
    pub cash: f64,
    /// Sum of absolute position values over NAV.
    pub gross_exposure: f64,
    /// `1 - NAV / peak NAV` so far (0 at a new high, 0.25 a quarter below the peak).
    pub drawdown: f64,
    /// `NAV / previous NAV - 1` (0 for the first point).
    pub step_return: f64,
    /// Traded notional over the NAV at execution on this step.
    pub turnover: f64,
    /// Sum of `|shares traded| * execution price` on this step.
    pub traded_notional: f64,
    /// Costs paid on this step, by component.
    pub costs: CostBreakdown,
    /// Weight of each asset (`shares * close / NAV`) after the step.
    pub weights: Vec<f64>,
}

/// One asset's order on one bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Market row of the decision (its close was the last data the policy saw).
    pub decision_row: usize,
    /// Market row the order executed on (`decision_row + 1`).
    pub row: usize,
    /// Date of the execution row, when known.
    #[serde(with = "crate::date_serde")]
    pub date: Option<Date>,
    /// Asset name.
    pub asset: String,
    /// Shares bought (positive) or sold (negative).
    pub shares: f64,
    /// Execution price.
    pub price: f64,
    /// `|shares| * price`.
    pub notional: f64,
    /// Commission.
    pub fee: f64,
    /// Half-spread paid.
    pub spread: f64,
    /// Market impact.
    pub impact: f64,
    /// Random slippage.
    pub slippage: f64,
}

impl Trade {
    /// Fee, spread, impact and slippage together.
    pub fn cost(&self) -> f64 {
        self.fee + self.spread + self.impact + self.slippage
    }
}

/// Everything a backtest produced, serializable for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    /// Row label in tables and plots (`agent`, `cash`, `buy-and-hold`, ...).
    pub label: String,
    /// What the row is, in words (a baseline's exact definition).
    pub description: String,
    /// Environment name (`SingleAsset-v0`, `Portfolio-v0`, or `index` for an index series).
    pub env: String,
    /// Asset names, in the order of [`EquityPoint::weights`].
    pub asset_names: Vec<String>,
    /// NAV at the start.
    pub initial_nav: f64,
    /// The cost model the run paid.
    pub costs: CostModel,
    /// Where orders executed.
    pub execution: ExecutionPrice,
    /// Seed of the environment's random slippage draws.
    pub seed: u64,
    /// Whether the run stopped early at ruin (NAV at or below the ruin fraction).
    pub ruined: bool,
    /// The equity curve: the decision row with the initial NAV, then one point per step.
    pub equity: Vec<EquityPoint>,
    /// Every order of nonzero size.
    pub trades: Vec<Trade>,
    /// Metrics of the per-step returns; `turnover` and `exposure` are the means of the
    /// environment's per-step turnover and gross exposure; `information_ratio` is filled by
    /// [`crate::compare`] against a benchmark.
    pub metrics: PerformanceSummary,
}

impl BacktestResult {
    /// Per-step simple returns (`equity[1..]`).
    pub fn returns(&self) -> Vec<f64> {
        self.equity.iter().skip(1).map(|p| p.step_return).collect()
    }

    /// Market rows of the equity curve.
    pub fn rows(&self) -> Vec<usize> {
        self.equity.iter().map(|p| p.row).collect()
    }

    /// NAV at the end.
    pub fn final_nav(&self) -> f64 {
        self.equity.last().map_or(self.initial_nav, |p| p.nav)
    }

    /// Costs of the whole run, by component.
    pub fn total_costs(&self) -> CostBreakdown {
        let mut sum = CostBreakdown::default();
        for p in &self.equity {
            let c = &p.costs;
            sum.fee += c.fee;
            sum.spread += c.spread;
            sum.impact += c.impact;
            sum.slippage += c.slippage;
            sum.borrow += c.borrow;
            sum.financing += c.financing;
        }
        sum
    }

    /// Compute [`BacktestResult::metrics`] from the equity curve: the summary of the
    /// returns, with the turnover and exposure of the steps.
    pub(crate) fn summarize(
        equity: &[EquityPoint],
        benchmark: Option<&[f64]>,
        config: &SummaryConfig,
    ) -> Result<PerformanceSummary, EvalError> {
        let steps = &equity[1.min(equity.len())..];
        let returns: Vec<f64> = steps.iter().map(|p| p.step_return).collect();
        let mut summary = PerformanceSummary::compute(&returns, benchmark, None, config)?;
        let n = steps.len() as f64;
        summary.turnover = Some(steps.iter().map(|p| p.turnover).sum::<f64>() / n);
        summary.exposure = Some(steps.iter().map(|p| p.gross_exposure).sum::<f64>() / n);
        Ok(summary)
    }
}

/// Runs policies over one span of a market, deterministically, with the training cost model.
///
/// Built from the environment configuration used for training; three settings are replaced
/// because a backtest needs them so: one environment (`num_envs = 1`), no random start and no
/// episode length (the whole span). Everything else — costs, execution price, observation
/// window, initial NAV, risk limits, ruin fraction, span — is kept.
///
/// ```
/// use std::sync::Arc;
/// use quantrl_envs::trading::{Market, SingleAssetConfig, TradingConfig};
/// use quantrl_eval::{Backtester, EnvSpec, baselines};
///
/// let close: Vec<f64> = (0..300).map(|t| 100.0 * (1.0 + 0.001 * t as f64)).collect();
/// let market = Arc::new(Market::from_close(1, close)?);
/// let spec = EnvSpec::SingleAsset(SingleAssetConfig {
///     trading: TradingConfig { window: 5, span_start: Some(100), ..Default::default() },
///     ..Default::default()
/// });
/// let backtester = Backtester::new(market, spec)?;
/// let mut policy = baselines::BuyAndHold::new(&backtester)?;
/// let result = backtester.run_allocations(&mut policy)?;
/// assert_eq!(result.equity.len(), 300 - 100);
/// assert!(result.final_nav() > result.initial_nav, "a rising market pays buy-and-hold");
/// assert_eq!(result.trades.len(), 1, "buy once, then hold");
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Backtester {
    market: Arc<Market>,
    spec: EnvSpec,
    dates: Option<Arc<[Date]>>,
    seed: u64,
    summary: SummaryConfig,
    first_row: usize,
    last_row: usize,
    env_name: String,
}

impl Backtester {
    /// A backtester for `spec` on `market` (see the type docs for what is replaced); an error
    /// if the environment refuses the configuration (a span without a step, bad costs).
    pub fn new(market: Arc<Market>, mut spec: EnvSpec) -> Result<Self, EvalError> {
        let t = spec.trading_mut();
        t.num_envs = 1;
        t.random_start = false;
        t.episode_len = None;
        let env = spec.build(market.clone())?;
        let t = spec.trading();
        let first_row = env.row(0);
        let last_row = t.span_end.unwrap_or(market.n_steps()) - 1;
        let summary = SummaryConfig {
            annualization: t.costs.periods_per_year,
            ..SummaryConfig::default()
        };
        Ok(Self {
            env_name: env.name().to_string(),
            market,
            spec,
            dates: None,
            seed: 0,
            summary,
            first_row,
            last_row,
        })
    }

    /// Label rows with `dates`, one per market row, strictly increasing.
    pub fn with_dates(mut self, dates: Vec<Date>) -> Result<Self, EvalError> {
        let n = self.market.n_steps();
        if dates.len() != n {
            return Err(EvalError::Dates {
                series: "market".into(),
                reason: format!("{} dates for {n} market rows", dates.len()),
            });
        }
        if let Some(k) = dates.windows(2).position(|w| w[0] >= w[1]) {
            return Err(EvalError::Dates {
                series: "market".into(),
                reason: format!(
                    "row {} ({}) is not after row {k} ({}): dates must strictly increase",
                    k + 1,
                    dates[k + 1],
                    dates[k]
                ),
            });
        }
        self.dates = Some(dates.into());
        Ok(self)
    }

    /// The same backtester over market rows `span` (`span_start..span_end` of the
    /// environment: the first decision is at `span.start`, or later where the feature
    /// warm-up and observation window need it).
    pub fn with_span(&self, span: Range<usize>) -> Result<Self, EvalError> {
        let mut spec = self.spec.clone();
        let t = spec.trading_mut();
        t.span_start = Some(span.start);
        t.span_end = Some(span.end);
        let mut b = Self::new(self.market.clone(), spec)?;
        b.dates = self.dates.clone();
        b.seed = self.seed;
        b.summary = self.summary.clone();
        Ok(b)
    }

    /// Seed the environment's random slippage draws (the only randomness of a backtest;
    /// default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The parameters of the metrics (default: [`SummaryConfig::default`] with
    /// `annualization = costs.periods_per_year`).
    pub fn with_summary_config(mut self, config: SummaryConfig) -> Result<Self, EvalError> {
        config.validate()?;
        self.summary = config;
        Ok(self)
    }

    /// The same backtester on another environment configuration of the same market (for
    /// baselines: the same trading settings with other actions).
    pub fn with_spec(&self, spec: EnvSpec) -> Result<Self, EvalError> {
        let mut b = Self::new(self.market.clone(), spec)?;
        b.dates = self.dates.clone();
        b.seed = self.seed;
        b.summary = self.summary.clone();
        Ok(b)
    }

    /// The market.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// The environment configuration (with the backtest's replacements).
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The trading settings.
    pub fn trading(&self) -> &TradingConfig {
        self.spec.trading()
    }

    /// Dates of the market rows, when given.
    pub fn dates(&self) -> Option<&[Date]> {
        self.dates.as_deref()
    }

    /// Date of market row `row`, when dates were given.
    pub fn date(&self, row: usize) -> Option<Date> {
        self.dates.as_ref().map(|d| d[row])
    }

    /// The seed of the slippage draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The metrics' parameters.
    pub fn summary_config(&self) -> &SummaryConfig {
        &self.summary
    }

    /// Market row of the first decision.
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    /// Last market row of the span (the last mark).
    pub fn last_row(&self) -> usize {
        self.last_row
    }

    /// Number of steps a run without ruin takes.
    pub fn n_steps(&self) -> usize {
        self.last_row - self.first_row
    }

    /// The environment's action space.
    pub fn action_space(&self) -> Result<Space, EvalError> {
        Ok(self.spec.build(self.market.clone())?.action_space().clone())
    }

    /// Run `policy` over the span.
    pub fn run<P: BacktestPolicy + ?Sized>(
        &self,
        policy: &mut P,
    ) -> Result<BacktestResult, EvalError> {
        let description = format!("policy `{}`", policy.label());
        self.run_described(policy, description)
    }

    /// Run a baseline (or any policy over allocations) on the environment that selects among
    /// `policy.allocations()`, with this backtester's trading settings.
    pub fn run_allocations<P: AllocationPolicy + ?Sized>(
        &self,
        policy: &mut P,
    ) -> Result<BacktestResult, EvalError> {
        let allocations = policy.allocations();
        if allocations
            .first()
            .is_none_or(|a| a.iter().any(|w| *w != 0.0))
        {
            return Err(ConfigError::Inconsistent(format!(
                "the first allocation of `{}` must be all cash (the book starts there)",
                policy.label()
            ))
            .into());
        }
        let spec = self.spec.with_allocations(allocations.to_vec());
        let description = policy.description();
        self.with_spec(spec)?.run_described(policy, description)
    }

    pub(crate) fn run_described<P: BacktestPolicy + ?Sized>(
        &self,
        policy: &mut P,
        description: String,
    ) -> Result<BacktestResult, EvalError> {
        let mut env = self.spec.build(self.market.clone())?;
        env.set_record_fills(true);
        let mut batch = StepBatch::for_env(&env);
        env.reset(Some(self.seed), &mut batch);
        policy.reset(1);
        let label = policy.label().to_string();
        let space = env.action_space().clone();
        let mut actions = PolicyActions::for_space(&space, 1);
        let n = self.market.n_assets();
        let names = self.market.asset_names().to_vec();
        let t = self.trading();
        let row0 = env.row(0);
        let mut equity = Vec::with_capacity(self.n_steps() + 1);
        equity.push(EquityPoint {
            row: row0,
            date: self.date(row0),
            nav: t.initial_nav,
            cash: t.initial_nav,
            gross_exposure: 0.0,
            drawdown: 0.0,
            step_return: 0.0,
            turnover: 0.0,
            traded_notional: 0.0,
            costs: CostBreakdown::default(),
            weights: vec![0.0; n],
        });
        let mut trades = Vec::new();
        let mut episode_start = [true];
        let mut ruined = false;
        loop {
            let row = env.row(0);
            policy.act(
                &batch.obs,
                batch.action_masks.as_deref(),
                &episode_start,
                &mut actions,
            )?;
            self.check_actions(
                &label,
                row,
                &space,
                batch.action_masks.as_deref(),
                &mut actions,
            )?;
            env.step(actions.as_actions(), &mut batch)?;
            episode_start[0] = false;
            let info = env.info(0);
            let fills = env.fills(0).expect("fills are recorded during a backtest");
            for (a, f) in fills.iter().enumerate() {
                if f.shares != 0.0 {
                    trades.push(Trade {
                        decision_row: row,
                        row: info.t,
                        date: self.date(info.t),
                        asset: names[a].clone(),
                        shares: f.shares,
                        price: f.price,
                        notional: f.shares.abs() * f.price,
                        fee: f.costs.fee,
                        spread: f.costs.spread,
                        impact: f.costs.impact,
                        slippage: f.costs.slippage,
                    });
                }
            }
            let previous = equity.last().map_or(t.initial_nav, |p| p.nav);
            equity.push(EquityPoint {
                row: info.t,
                date: self.date(info.t),
                nav: info.nav,
                cash: info.cash,
                gross_exposure: info.gross_exposure,
                drawdown: info.drawdown,
                step_return: info.nav / previous - 1.0,
                turnover: info.turnover,
                traded_notional: info.traded_notional,
                costs: info.costs,
                weights: env.step_weights(0).to_vec(),
            });
            if batch.terminated[0] {
                ruined = true;
                break;
            }
            if batch.truncated[0] {
                break;
            }
        }
        let metrics = BacktestResult::summarize(&equity, None, &self.summary)?;
        Ok(BacktestResult {
            label,
            description,
            env: self.env_name.clone(),
            asset_names: names,
            initial_nav: t.initial_nav,
            costs: t.costs,
            execution: t.execution,
            seed: self.seed,
            ruined,
            equity,
            trades,
            metrics,
        })
    }

    /// Refuse actions of the wrong kind or length, outside the space or masked; clip
    /// continuous actions into the box (as Stable-Baselines3 does before stepping).
    fn check_actions(
        &self,
        label: &str,
        row: usize,
        space: &Space,
        masks: Option<&[bool]>,
        actions: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        let date = self.date(row).map(|d| d.to_string());
        let expected = PolicyActions::for_space(space, 1);
        let same_kind = std::mem::discriminant(&expected) == std::mem::discriminant(actions);
        let len = match actions {
            PolicyActions::Discrete(a) => a.len(),
            PolicyActions::Continuous(a) => a.len(),
        };
        if !same_kind || len != space.flat_dim() {
            return Err(EvalError::ActionShape {
                policy: label.into(),
                row,
                expected: expected.describe(),
                got: actions.describe(),
            });
        }
        match (actions, space) {
            (PolicyActions::Discrete(a), Space::Discrete { n }) => {
                let k = a[0];
                if k as usize >= *n {
                    return Err(EvalError::InvalidAction {
                        policy: label.into(),
                        row,
                        date,
                        action: k.to_string(),
                        space: space.to_string(),
                    });
                }
                if let Some(m) = masks
                    && !m[k as usize]
                {
                    return Err(EvalError::MaskedAction {
                        policy: label.into(),
                        row,
                        date,
                        action: k,
                        allowed: (0..*n as u32).filter(|&j| m[j as usize]).collect(),
                    });
                }
            }
            (PolicyActions::Continuous(a), Space::Box { low, high }) => {
                if let Some(j) = a.iter().position(|v| !v.is_finite()) {
                    return Err(EvalError::InvalidAction {
                        policy: label.into(),
                        row,
                        date,
                        action: format!("{:?} (component {j} is not finite)", a),
                        space: space.to_string(),
                    });
                }
                for ((v, l), h) in a.iter_mut().zip(low).zip(high) {
                    *v = v.clamp(*l, *h);
                }
            }
            _ => {
                return Err(ConfigError::Inconsistent(format!(
                    "backtests support Discrete and Box action spaces, not {space}"
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// A [`BacktestPolicy`] that chooses among a fixed list of target allocations, run by
/// [`Backtester::run_allocations`] on an environment whose discrete actions are exactly those
/// allocations (every baseline of [`crate::baselines`] is one).
pub trait AllocationPolicy: BacktestPolicy {
    /// The target allocations (a weight per asset each, the rest in cash); action `k`
    /// selects `allocations()[k]`. The first must be all cash, so that the book starts out
    /// holding it.
    fn allocations(&self) -> &[Vec<f64>];

    /// What the policy does, in words, for reports.
    fn description(&self) -> String;
}

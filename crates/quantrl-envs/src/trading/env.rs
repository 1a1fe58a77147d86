//! The vectorized trading engine behind [`SingleAssetEnv`] and [`PortfolioEnv`].

use std::sync::Arc;

use quantrl_core::{
    Actions, ConfigError, EnvError, Rng, Space, StepBatch, VecEnv, check_closed,
    check_non_negative, check_open, check_positive, multiversion,
};
use serde::{Deserialize, Serialize};

use super::actions::{ActionMap, PortfolioActions, PositionActions};
use super::costs::{CostBreakdown, CostModel};
use super::kernels::{
    LANES, abs_sum4, copy_floats, ln_ratio_batch, load_lanes, padded, store_lanes, sum4,
};
use super::market::Market;
use super::state::{Account, Accounts, Infos};

/// Which price of the next bar an order executes at. Either way an action chosen on bar `t`
/// (after seeing its close) never trades at a price of bar `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionPrice {
    /// The open of bar `t + 1` (needs open prices in the [`Market`]).
    NextOpen,
    /// The close of bar `t + 1`.
    #[default]
    NextClose,
}

/// The reward of one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// `ln(NAV_t+1 / NAV_t)` after every cost: summed over an episode it is the log of final
    /// over initial NAV.
    LogReturn,
    /// The differential Sharpe ratio of Moody & Saffell (2001) on simple returns `R`:
    /// `D = (B dA - A dB / 2) / (B - A^2)^(3/2)` with exponential moving moments `A`, `B` of
    /// rate `eta`, updated after `D` is computed; `D = 0` while `B - A^2 <= 1e-12` and `D` is
    /// clamped to `[-10, 10]` (the first steps of an episode have almost no variance).
    DifferentialSharpe {
        /// Adaptation rate of the moving moments, in (0, 1).
        eta: f64,
    },
}

/// Reward options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// The base reward.
    pub kind: RewardKind,
    /// Subtract `drawdown_penalty * max(0, dd_t+1 - dd_t)`, where `dd = 1 - NAV / peak NAV`
    /// of the episode: every new loss below the peak is paid again.
    pub drawdown_penalty: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            kind: RewardKind::LogReturn,
            drawdown_penalty: 0.0,
        }
    }
}

/// Limits enforced by action masks (discrete actions) or by projecting the target
/// (continuous actions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    /// Largest absolute weight of one asset a target may have.
    pub max_abs_weight: Option<f64>,
    /// Largest gross exposure (sum of absolute weights) a target may have.
    pub max_gross: Option<f64>,
    /// Largest one-step turnover `sum |w_target - w_current|`. Discrete: larger moves are
    /// masked; continuous: the move is scaled down to the limit.
    pub max_turnover: Option<f64>,
    /// Risk budget: above this drawdown from the episode's peak NAV, no action may add gross
    /// exposure (masked, or scaled back to the current exposure).
    pub max_drawdown: Option<f64>,
    /// Risk budget: above this annualized volatility of the NAV's log returns (an
    /// exponentially weighted estimate), no action may add gross exposure.
    pub max_vol_per_year: Option<f64>,
    /// Half-life in bars of the volatility estimate.
    pub vol_halflife: f64,
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            max_abs_weight: None,
            max_gross: None,
            max_turnover: None,
            max_drawdown: None,
            max_vol_per_year: None,
            vol_halflife: 20.0,
        }
    }
}

/// What every trading environment is configured with (the part common to single-asset and
/// portfolio environments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TradingConfig {
    /// Number of environments stepped together.
    pub num_envs: usize,
    /// Rows of features in an observation (the current row and `window - 1` before it).
    pub window: usize,
    /// Net asset value at the start of every episode, in cash units. It sizes trades against
    /// volume in the impact model.
    pub initial_nav: f64,
    /// Costs of trading and holding.
    pub costs: CostModel,
    /// Which price of the next bar orders execute at.
    pub execution: ExecutionPrice,
    /// Reward options.
    pub reward: RewardConfig,
    /// Steps per episode; `None` runs to the end of the span.
    pub episode_len: Option<usize>,
    /// Start episodes at uniformly random rows of the span (training); `false` starts every
    /// episode at the first usable row (backtests).
    pub random_start: bool,
    /// First market row of the span episodes live in (default: the first row).
    pub span_start: Option<usize>,
    /// One past the last market row of the span (default: the end of the data).
    pub span_end: Option<usize>,
    /// The episode terminates (ruin) when NAV falls to this fraction of the initial NAV.
    pub ruin_nav_fraction: f64,
    /// Position, turnover and risk-budget limits.
    pub limits: RiskLimits,
}

impl Default for TradingConfig {
    fn default() -> Self {
        Self {
            num_envs: 8,
            window: 10,
            initial_nav: 1_000_000.0,
            costs: CostModel::default(),
            execution: ExecutionPrice::NextClose,
            reward: RewardConfig::default(),
            episode_len: Some(252),
            random_start: true,
            span_start: None,
            span_end: None,
            ruin_nav_fraction: 0.2,
            limits: RiskLimits::default(),
        }
    }
}

impl TradingConfig {
    /// Check ranges (costs, fractions, limits) without looking at a market.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.num_envs == 0 {
            return Err(ConfigError::out_of_range("num_envs", 0, ">= 1"));
        }
        if self.window == 0 {
            return Err(ConfigError::out_of_range("window", 0, ">= 1"));
        }
        check_positive("initial_nav", self.initial_nav)?;
        self.costs.validate()?;
        check_open("ruin_nav_fraction", self.ruin_nav_fraction, 0.0, 1.0)?;
        check_non_negative("reward.drawdown_penalty", self.reward.drawdown_penalty)?;
        if let RewardKind::DifferentialSharpe { eta } = self.reward.kind {
            check_open("reward.kind.eta", eta, 0.0, 1.0)?;
        }
        if self.episode_len == Some(0) {
            return Err(ConfigError::out_of_range("episode_len", 0, ">= 1"));
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_abs_weight", l.max_abs_weight),
            ("limits.max_gross", l.max_gross),
            ("limits.max_turnover", l.max_turnover),
            ("limits.max_vol_per_year", l.max_vol_per_year),
        ] {
            if let Some(v) = v {
                check_positive(name, v)?;
            }
        }
        if let Some(d) = l.max_drawdown {
            check_closed("limits.max_drawdown", d, 0.0, 1.0)?;
        }
        check_positive("limits.vol_halflife", l.vol_halflife)
    }
}

/// What happened in one environment on its last step (before any automatic reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Market row the step ended on (its close marks the book).
    pub t: usize,
    /// Net asset value after the step: cash plus positions at the close.
    pub nav: f64,
    /// Cash after the step (negative when leveraged).
    pub cash: f64,
    /// Sum of `|shares traded| * execution price`.
    pub traded_notional: f64,
    /// Traded notional over the NAV at execution.
    pub turnover: f64,
    /// Costs paid, by component.
    pub costs: CostBreakdown,
    /// Sum of absolute position values over NAV, after the step.
    pub gross_exposure: f64,
    /// `1 - NAV / peak NAV` of the episode.
    pub drawdown: f64,
    /// The reward returned for the step.
    pub reward: f64,
}

/// One asset's order on an environment's last step, recorded when
/// [`TradingEnv::set_record_fills`] is on (backtests and trade logs; training leaves it off).
///
/// Holding is an order of zero shares with zero costs. `shares_before + shares` is the
/// position after the step, and the costs of every asset's fill add up to the step's
/// [`StepInfo::costs`] trading components.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// Shares bought (positive) or sold (negative).
    pub shares: f64,
    /// Execution price (the open or close of the bar the step ended on).
    pub price: f64,
    /// Fee, half-spread, impact and slippage of this order (borrow and financing are paid on
    /// the book, not per order, and stay zero here).
    pub costs: CostBreakdown,
}

/// Per-environment multipliers another agent may set every step (adversarial co-training).
/// All are `1` by default, which leaves the market as the data says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdversaryControls {
    /// Multiplies the half-spread.
    pub spread: f64,
    /// Multiplies the market impact.
    pub impact: f64,
    /// Scales the log returns the book experiences: the environment's effective price moves
    /// by `(P_t+1 / P_t)^volatility` each bar. Observations keep the data's features, so a
    /// value above 1 is a market more volatile than the agent's features suggest.
    pub volatility: f64,
}

impl Default for AdversaryControls {
    fn default() -> Self {
        Self {
            spread: 1.0,
            impact: 1.0,
            volatility: 1.0,
        }
    }
}

const NO_LEVEL: u32 = u32::MAX;

/// Per-asset arrays of one environment's step ([`TradingEnv::advance`]).
#[derive(Debug, Clone)]
struct AssetScratch {
    exec_price: Vec<f64>,
    /// Shares bought (sold if negative).
    order: Vec<f64>,
    /// Position values (shares times a price).
    value: Vec<f64>,
    /// `|N(0, 1)|` draws of the random slippage (zero while it is off).
    abs_z: Vec<f64>,
    /// The volume of a market without volume.
    zeros: Vec<f64>,
    fee: Vec<f64>,
    spread: Vec<f64>,
    impact: Vec<f64>,
    slippage: Vec<f64>,
}

impl AssetScratch {
    fn new(n: usize) -> Self {
        Self {
            exec_price: vec![0.0; n],
            order: vec![0.0; n],
            value: vec![0.0; n],
            abs_z: vec![0.0; n],
            zeros: vec![0.0; n],
            fee: vec![0.0; n],
            spread: vec![0.0; n],
            impact: vec![0.0; n],
            slippage: vec![0.0; n],
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    accounts: Vec<Account>,
    shares: Vec<f64>,
    scale: Vec<f64>,
    rngs: Vec<Rng>,
    adversary: Vec<AdversaryControls>,
}

/// The vectorized trading engine: `num_envs` accounts replaying one [`Market`].
///
/// Use it through [`SingleAssetEnv`] or [`PortfolioEnv`], which configure the actions; both
/// dereference to this type for [`TradingEnv::info`], [`TradingEnv::positions`] and
/// [`TradingEnv::set_adversary`].
///
/// **Timeline of one step** in environment `i`, which observed bar `t`:
/// 1. the action becomes target weights (discrete: the chosen allocation, or nothing if it is
///    the one already held; continuous: the mapped, capped and limited target);
/// 2. if bar `t + 1` is tradable, every asset is traded to `w * NAV_exec / p_exec` shares at
///    the execution price of bar `t + 1` (open or close), paying fee, half-spread, impact and
///    slippage from cash;
/// 3. borrow and financing for the bar are paid on the book after the trade;
/// 4. the book is marked at the close of bar `t + 1`: `NAV = cash + sum shares * close`;
/// 5. the reward is computed; NAV at or under `ruin_nav_fraction * initial_nav` terminates the
///    episode; reaching the end of the span or `episode_len` steps truncates it.
///
/// **Observation** at bar `t` (float32, written in place): the feature rows
/// `t - window + 1 ..= t` (row-major), then each asset's weight `shares * close_t / NAV`, then
/// `cash / NAV`, `ln(NAV / initial_nav)` and the drawdown `1 - NAV / peak`. Everything in it
/// is known at the close of bar `t`.
#[derive(Debug, Clone)]
pub struct TradingEnv {
    market: Arc<Market>,
    config: TradingConfig,
    map: ActionMap,
    name: &'static str,
    n_assets: usize,
    obs_space: Space,
    action_space: Space,
    /// Static admissibility of each discrete allocation (position and gross limits).
    level_ok: Vec<bool>,
    /// Whether masks depend on the state (turnover, risk budget, no-trade bars).
    dynamic_masks: bool,
    first_start: usize,
    last_row: usize,
    vol_alpha: f64,
    acc: Accounts,
    shares: Vec<f64>,
    scale: Vec<f64>,
    rngs: Vec<Rng>,
    adversary: Vec<AdversaryControls>,
    info: Infos,
    info_weights: Vec<f64>,
    /// Per-asset orders of the last step, `[num_envs * n_assets]`; empty unless recording.
    fills: Vec<Fill>,
    target: Vec<f64>,
    current: Vec<f64>,
    scratch: Vec<f64>,
    /// Per-asset scratch of [`Self::advance`].
    assets: AssetScratch,
    ratio: Vec<f64>,
    log_ret: Vec<f64>,
    /// `cash / NAV` after the last step, for the observation.
    cash_fraction: Vec<f64>,
    is_reset: bool,
}

impl TradingEnv {
    fn build(
        market: Arc<Market>,
        config: TradingConfig,
        map: ActionMap,
        name: &'static str,
    ) -> Result<Self, EnvError> {
        config.validate()?;
        let n = market.n_assets();
        if config.execution == ExecutionPrice::NextOpen && !market.has_open() {
            return Err(ConfigError::Inconsistent(
                "execution = next_open needs open prices in the market".into(),
            )
            .into());
        }
        let span_start = config.span_start.unwrap_or(0);
        let span_end = config.span_end.unwrap_or(market.n_steps());
        if span_end > market.n_steps() || span_start >= span_end {
            return Err(ConfigError::Inconsistent(format!(
                "span {span_start}..{span_end} is not inside the market's {} rows",
                market.n_steps()
            ))
            .into());
        }
        let first_start = span_start.max(market.first_valid() + config.window - 1);
        if first_start + 1 >= span_end {
            return Err(ConfigError::Inconsistent(format!(
                "span {span_start}..{span_end} leaves no step after the warm-up (first valid \
                 row {}) and the window of {} rows",
                market.first_valid(),
                config.window
            ))
            .into());
        }
        let level_ok = match &map {
            ActionMap::Levels { allocations, .. } => {
                let ok: Vec<bool> = allocations
                    .chunks(n)
                    .map(|w| {
                        let max_abs = w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                        let gross: f64 = w.iter().map(|x| x.abs()).sum();
                        config
                            .limits
                            .max_abs_weight
                            .is_none_or(|l| max_abs <= l + 1e-12)
                            && config.limits.max_gross.is_none_or(|l| gross <= l + 1e-12)
                    })
                    .collect();
                if !ok.iter().any(|&b| b) {
                    return Err(ConfigError::Inconsistent(
                        "no action's allocation is inside limits.max_abs_weight and \
                         limits.max_gross"
                            .into(),
                    )
                    .into());
                }
                ok
            }
            _ => Vec::new(),
        };
        let f = market.n_features();
        let obs_dim = config.window * f + n + 3;
        let mut low = vec![f32::MIN; obs_dim];
        let mut high = vec![f32::MAX; obs_dim];
        low[obs_dim - 1] = 0.0;
        high[obs_dim - 1] = 1.0;
        let action_space = map.space(n);
        let e = config.num_envs;
        let zero = Account {
            t: first_start,
            last_t: span_end - 1,
            steps: 0,
            cash: config.initial_nav,
            nav: config.initial_nav,
            peak: config.initial_nav,
            ew_var: 0.0,
            log_nav: 0.0,
            drawdown: 0.0,
            dsr_a: 0.0,
            dsr_b: 0.0,
            level: NO_LEVEL,
        };
        let l = &config.limits;
        let dynamic_masks = l.max_turnover.is_some()
            || l.max_drawdown.is_some()
            || l.max_vol_per_year.is_some()
            || market.has_tradable();
        Ok(Self {
            dynamic_masks,
            vol_alpha: 1.0 - 0.5f64.powf(1.0 / config.limits.vol_halflife),
            map,
            name,
            n_assets: n,
            obs_space: Space::Box { low, high },
            action_space,
            level_ok,
            first_start,
            last_row: span_end - 1,
            acc: Accounts::new(e, zero),
            shares: vec![0.0; e * n],
            scale: vec![1.0; e * n],
            rngs: Rng::streams(0, e),
            adversary: vec![AdversaryControls::default(); e],
            info: Infos::new(e, StepInfo::default()),
            info_weights: vec![0.0; e * n],
            fills: Vec::new(),
            target: vec![0.0; n],
            current: vec![0.0; n],
            scratch: vec![f64::NEG_INFINITY; padded(n + 1)],
            assets: AssetScratch::new(n),
            ratio: vec![1.0; e],
            log_ret: vec![0.0; e],
            cash_fraction: vec![1.0; e],
            is_reset: false,
            market,
            config,
        })
    }

    /// The market being replayed.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// The configuration.
    pub fn config(&self) -> &TradingConfig {
        &self.config
    }

    /// What happened in environment `i` on its last step (before any automatic reset).
    pub fn info(&self, i: usize) -> StepInfo {
        self.info.get(i)
    }

    /// Weights per asset (`shares * close / NAV`) held at the end of environment `i`'s last
    /// step (before any automatic reset).
    pub fn step_weights(&self, i: usize) -> &[f64] {
        &self.info_weights[i * self.n_assets..(i + 1) * self.n_assets]
    }

    /// Record every asset's order from the next step on (`true`), or stop recording
    /// (`false`, the default: training has no use for it). See [`TradingEnv::fills`].
    pub fn set_record_fills(&mut self, on: bool) {
        self.fills = if on {
            vec![Fill::default(); self.config.num_envs * self.n_assets]
        } else {
            Vec::new()
        };
    }

    /// The orders of environment `i`'s last step, one per asset (before any automatic reset),
    /// when recording is on; `None` otherwise.
    pub fn fills(&self, i: usize) -> Option<&[Fill]> {
        if self.fills.is_empty() {
            None
        } else {
            Some(&self.fills[i * self.n_assets..(i + 1) * self.n_assets])
        }
    }

    /// Shares held now by environment `i`, one per asset.
    pub fn positions(&self, i: usize) -> &[f64] {
        &self.shares[i * self.n_assets..(i + 1) * self.n_assets]
    }

    /// Cash held now by environment `i`.
    pub fn cash(&self, i: usize) -> f64 {
        self.acc.cash[i]
    }

    /// Net asset value of environment `i` now.
    pub fn nav(&self, i: usize) -> f64 {
        self.acc.nav[i]
    }

    /// The market row environment `i` observes now.
    pub fn row(&self, i: usize) -> usize {
        self.acc.t[i]
    }

    /// Set environment `i`'s adversarial multipliers from the next step on. Every multiplier
    /// must be finite and non-negative.
    pub fn set_adversary(&mut self, i: usize, controls: AdversaryControls) -> Result<(), EnvError> {
        check_non_negative("adversary.spread", controls.spread)?;
        check_non_negative("adversary.impact", controls.impact)?;
        check_non_negative("adversary.volatility", controls.volatility)?;
        if i >= self.adversary.len() {
            return Err(EnvError::InvalidAction {
                env: i,
                action: "set_adversary".into(),
                space: format!("{} environments", self.adversary.len()),
            });
        }
        self.adversary[i] = controls;
        Ok(())
    }

    /// Environment `i`'s adversarial multipliers.
    pub fn adversary(&self, i: usize) -> AdversaryControls {
        self.adversary[i]
    }

    fn reset_one(&mut self, i: usize) {
        let c = &self.config;
        let hi = match c.episode_len {
            Some(l) => self.last_row.saturating_sub(l).max(self.first_start),
            None => self.last_row - 1,
        };
        let start = if c.random_start && hi > self.first_start {
            self.first_start + self.rngs[i].below((hi - self.first_start + 1) as u64) as usize
        } else {
            self.first_start
        };
        let last_t = match c.episode_len {
            Some(l) => (start + l).min(self.last_row),
            None => self.last_row,
        };
        let flat = match &self.map {
            ActionMap::Levels { allocations, .. } => allocations
                .chunks(self.n_assets)
                .position(|w| w.iter().all(|&x| x == 0.0))
                .map_or(NO_LEVEL, |k| k as u32),
            _ => NO_LEVEL,
        };
        self.acc.set(
            i,
            Account {
                t: start,
                last_t,
                steps: 0,
                cash: c.initial_nav,
                nav: c.initial_nav,
                peak: c.initial_nav,
                ew_var: 0.0,
                log_nav: 0.0,
                drawdown: 0.0,
                dsr_a: 0.0,
                dsr_b: 0.0,
                level: flat,
            },
        );
        let n = self.n_assets;
        self.shares[i * n..(i + 1) * n].fill(0.0);
        self.scale[i * n..(i + 1) * n].fill(1.0);
    }

    /// The smallest NAV divided by (weights, NAV ratios): `1e-9` of the initial NAV, so a
    /// ruined book gives finite numbers.
    #[inline(always)]
    fn nav_floor(&self) -> f64 {
        1e-9 * self.config.initial_nav
    }

    /// Current weights of environment `i` at bar `t`'s close, into `self.current`.
    #[inline(always)]
    fn current_weights(&mut self, i: usize) {
        let n = self.n_assets;
        let close = &self.market.close(self.acc.t[i])[..n];
        let inv_nav = 1.0 / self.acc.nav[i].max(self.nav_floor());
        let shares = &self.shares[i * n..(i + 1) * n];
        let scale = &self.scale[i * n..(i + 1) * n];
        let current = &mut self.current[..n];
        for a in 0..n {
            current[a] = shares[a] * close[a] * scale[a] * inv_nav;
        }
    }

    /// Environment `i`'s observation into `out`. `stepped`: the account is as its last step
    /// left it (not reset since), so the weights are that step's [`Self::step_weights`] and
    /// the cash fraction the one [`Self::finish_block`] computed, the same numbers
    /// [`Self::current_weights`] and the division here would give.
    #[inline(always)]
    fn write_obs(&mut self, i: usize, out: &mut [f32], stepped: bool) {
        let w = self.config.window;
        let f = self.market.n_features();
        let (feat, rest) = out.split_at_mut(w * f);
        copy_floats(feat, self.market.feature_window(self.acc.t[i], w));
        let n = self.n_assets;
        if stepped {
            for (o, &x) in rest[..n]
                .iter_mut()
                .zip(&self.info_weights[i * n..(i + 1) * n])
            {
                *o = x as f32;
            }
            rest[n] = self.cash_fraction[i] as f32;
        } else {
            rest[n] = (self.acc.cash[i] / self.acc.nav[i].max(self.nav_floor())) as f32;
            self.current_weights(i);
            for a in 0..n {
                rest[a] = self.current[a] as f32;
            }
        }
        rest[n + 1] = self.acc.log_nav[i] as f32;
        rest[n + 2] = self.acc.drawdown[i] as f32;
    }

    /// Whether environment `i` is over its risk budget (drawdown or volatility limit).
    fn risk_breached(&self, i: usize) -> bool {
        let l = &self.config.limits;
        l.max_drawdown.is_some_and(|d| self.acc.drawdown[i] > d)
            || l.max_vol_per_year.is_some_and(|v| {
                (self.acc.ew_var[i] * self.config.costs.periods_per_year).sqrt() > v
            })
    }

    /// Recompute environment `i`'s action mask (discrete actions only).
    fn write_mask(&mut self, i: usize, mask: &mut [bool]) {
        let ActionMap::Levels { allocations, .. } = &self.map else {
            return;
        };
        let n = self.n_assets;
        let level = self.acc.level[i];
        if !self.dynamic_masks {
            for (k, m) in mask.iter_mut().enumerate() {
                *m = self.level_ok[k] || k as u32 == level;
            }
            return;
        }
        let t = self.acc.t[i];
        if !self.market.tradable(t + 1) {
            // Nothing can trade: only holding is allowed (any action holds when nothing is held
            // by level).
            for (k, m) in mask.iter_mut().enumerate() {
                *m = level == NO_LEVEL || k as u32 == level;
            }
            return;
        }
        let close = self.market.close(t);
        let nav = self.acc.nav[i];
        let mut gross_now = 0.0;
        for a in 0..n {
            let w = self.shares[i * n + a] * close[a] * self.scale[i * n + a]
                / nav.max(self.nav_floor());
            self.current[a] = w;
            gross_now += w.abs();
        }
        let breached = self.risk_breached(i);
        let max_turnover = self.config.limits.max_turnover;
        let mut any = false;
        for (k, (m, w)) in mask.iter_mut().zip(allocations.chunks(n)).enumerate() {
            if k as u32 == level {
                *m = true;
                any = true;
                continue;
            }
            let mut ok = self.level_ok[k];
            if ok && let Some(limit) = max_turnover {
                let turnover: f64 = w
                    .iter()
                    .zip(&self.current)
                    .map(|(a, b)| (a - b).abs())
                    .sum();
                ok = turnover <= limit + 1e-12;
            }
            if ok && breached {
                let gross: f64 = w.iter().map(|x| x.abs()).sum();
                ok = gross <= gross_now + 1e-12;
            }
            *m = ok;
            any |= ok;
        }
        if !any {
            // No level held and every move is over a limit: allow the admissible allocation
            // closest to the current book, so the mask is never empty.
            let k = allocations
                .chunks(n)
                .enumerate()
                .filter(|(k, _)| self.level_ok[*k])
                .map(|(k, w)| {
                    let d: f64 = w
                        .iter()
                        .zip(&self.current)
                        .map(|(a, b)| (a - b).abs())
                        .sum();
                    (k, d)
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(k, _)| k);
            mask[k] = true;
        }
    }

    /// Apply limits to a continuous target in `self.target` (the current weights, where a limit
    /// needs them, into `self.current`).
    #[inline(always)]
    fn limit_continuous_target(&mut self, i: usize) {
        let l = self.config.limits;
        if let Some(cap) = l.max_abs_weight {
            for w in self.target.iter_mut() {
                *w = w.clamp(-cap, cap);
            }
        }
        let risk_limited = l.max_drawdown.is_some() || l.max_vol_per_year.is_some();
        if !risk_limited && l.max_gross.is_none() && l.max_turnover.is_none() {
            // Nothing else to enforce, and nothing needs the current weights.
            return;
        }
        self.current_weights(i);
        let gross: f64 = self.target.iter().map(|x| x.abs()).sum();
        let mut allowed_gross = l.max_gross.unwrap_or(f64::INFINITY);
        if self.risk_breached(i) {
            let now: f64 = self.current.iter().map(|x| x.abs()).sum();
            allowed_gross = allowed_gross.min(now);
        }
        if gross > allowed_gross {
            let s = allowed_gross / gross;
            for w in self.target.iter_mut() {
                *w *= s;
            }
        }
        if let Some(limit) = l.max_turnover {
            let turnover: f64 = self
                .target
                .iter()
                .zip(&self.current)
                .map(|(a, b)| (a - b).abs())
                .sum();
            if turnover > limit {
                let s = limit / turnover;
                for (w, c) in self.target.iter_mut().zip(&self.current) {
                    *w = c + (*w - c) * s;
                }
            }
        }
    }

    /// First half of a step of environment `i` (`trade`: whether `self.target` holds a
    /// target to trade to): trade, pay costs, mark the book. Returns the NAV ratio
    /// `max(NAV, floor) / NAV_prev` whose logarithm [`Self::finish_block`] needs (the
    /// logarithms of all environments are taken together, vectorized, in between).
    ///
    /// The per-asset arithmetic (execution prices, orders, cost components, position values)
    /// runs as loops over assets that vectorize; the sums over assets are then taken one asset
    /// after another, in asset order, so they do not depend on the vector width.
    #[inline(always)]
    fn advance(&mut self, market: &Market, i: usize, trade: bool) -> f64 {
        let n = self.n_assets;
        let floor = self.nav_floor();
        let c = self.config.costs;
        let adv = self.adversary[i];
        let mut acc = self.acc.get(i);
        let t = acc.t;
        let tn = t + 1;
        // Every per-asset slice cut to `n` once, so the loops below carry no bounds checks
        // and vectorize.
        let close_t = &market.close(t)[..n];
        let close_n = &market.close(tn)[..n];
        let shares = &mut self.shares[i * n..(i + 1) * n];
        let scale = &mut self.scale[i * n..(i + 1) * n];
        if adv.volatility != 1.0 {
            for a in 0..n {
                scale[a] *= (close_n[a] / close_t[a]).powf(adv.volatility - 1.0);
            }
        }
        let raw_exec = match self.config.execution {
            ExecutionPrice::NextClose => close_n,
            ExecutionPrice::NextOpen => &market.open(tn)[..n],
        };
        let s = &mut self.assets;
        let exec = &mut s.exec_price[..n];
        let value = &mut s.value[..n];
        for a in 0..n {
            exec[a] = raw_exec[a] * scale[a];
            value[a] = shares[a] * exec[a];
        }
        let nav_exec = acc.cash + sum4(value);
        // Written without a branch on whether this environment trades (actions are close to
        // random early in training): holding is a trade of exactly zero shares, which costs
        // exactly zero.
        let trade = trade && nav_exec > 0.0 && market.tradable(tn);
        let order = &mut s.order[..n];
        let target = &self.target[..n];
        for a in 0..n {
            let wanted = target[a] * nav_exec / exec[a];
            let target_shares = if trade { wanted } else { shares[a] };
            order[a] = target_shares - shares[a];
            shares[a] = target_shares;
        }
        let abs_z = &mut s.abs_z[..n];
        if c.slippage_bps_std > 0.0 {
            // Draws only for the orders placed, in asset order.
            for a in 0..n {
                abs_z[a] = if order[a] != 0.0 {
                    self.rngs[i].normal().abs()
                } else {
                    0.0
                };
            }
        }
        let sigma = &market.sigma(t)[..n];
        let (fee, spread) = (&mut s.fee[..n], &mut s.spread[..n]);
        let (impact, slippage) = (&mut s.impact[..n], &mut s.slippage[..n]);
        // No volume and zero volume both take the fallback impact of `trade_costs`.
        let volume = match market.adv(t) {
            Some(v) => &v[..n],
            None => &s.zeros[..n],
        };
        for a in 0..n {
            let one = c.trade_costs(
                order[a],
                exec[a],
                sigma[a],
                Some(volume[a]),
                abs_z[a],
                adv.spread,
                adv.impact,
            );
            fee[a] = one.fee;
            spread[a] = one.spread;
            impact[a] = one.impact;
            slippage[a] = one.slippage;
        }
        if !self.fills.is_empty() {
            for a in 0..n {
                self.fills[i * n + a] = Fill {
                    shares: order[a],
                    price: exec[a],
                    costs: CostBreakdown {
                        fee: fee[a],
                        spread: spread[a],
                        impact: impact[a],
                        slippage: slippage[a],
                        ..Default::default()
                    },
                };
            }
        }
        // Sums over assets one asset after another, in asset order: the seven running sums
        // of one loop overlap (four running sums each, or sums by lanes, measured slower).
        let mut costs = CostBreakdown::default();
        let mut traded = 0.0;
        let mut short_notional = 0.0;
        for a in 0..n {
            costs.fee += fee[a];
            costs.spread += spread[a];
            costs.impact += impact[a];
            costs.slippage += slippage[a];
            acc.cash -= order[a] * exec[a];
            traded += order[a].abs() * exec[a];
            short_notional += (-shares[a]).max(0.0) * exec[a];
        }
        acc.cash -= costs.fee + costs.spread + costs.impact + costs.slippage;
        c.add_holding(short_notional, acc.cash, &mut costs);
        acc.cash -= costs.borrow + costs.financing;

        for a in 0..n {
            value[a] = shares[a] * close_n[a] * scale[a];
        }
        let nav_prev = acc.nav;
        let nav = acc.cash + sum4(value);
        let gross = abs_sum4(value);
        let inv_nav = 1.0 / nav.max(floor);
        self.info.set(
            i,
            StepInfo {
                t: tn,
                nav,
                cash: acc.cash,
                traded_notional: traded,
                turnover: if nav_exec > 0.0 {
                    traded / nav_exec
                } else {
                    0.0
                },
                costs,
                gross_exposure: gross * inv_nav,
                drawdown: 0.0,
                reward: 0.0,
            },
        );
        for (w, &v) in self.info_weights[i * n..(i + 1) * n]
            .iter_mut()
            .zip(value.iter())
        {
            *w = v * inv_nav;
        }
        acc.nav = nav;
        acc.t = tn;
        acc.steps += 1;
        self.acc.set(i, acc);
        nav.max(floor) / nav_prev
    }

    /// Whether the single-asset block step ([`single_asset_steps`]) computes this step: one
    /// asset, discrete actions, no random slippage (its normal draws depend on the trade) and
    /// no fills to record. It gives bit for bit what [`Self::advance`] gives.
    fn lanes_apply(&self) -> bool {
        self.n_assets == 1
            && matches!(self.map, ActionMap::Levels { .. })
            && self.fills.is_empty()
            && self.config.costs.slippage_bps_std == 0.0
    }

    /// A whole step of environments `start..start + LANES` of a single-asset environment with
    /// discrete actions: gather each environment's action, adversary and market row into lane
    /// arrays (scalar: they are indexed by each environment's own bar), load the account
    /// fields (contiguous, one vector each), do the trade, costs, mark, logarithm, reward and
    /// termination arithmetic on all lanes at once (fixed-length loops over local arrays,
    /// which become vector instructions: the divisions and square roots of eight
    /// environments run together), store the results, and write the observations and masks.
    /// Costs go through the same [`CostModel::add_trade`] and [`CostModel::add_holding`], and
    /// every other operation is [`Self::advance`]'s and [`Self::finish_block`]'s in the same
    /// order, so the numbers are identical to the general path's.
    #[inline(always)]
    fn single_asset_block(
        &mut self,
        market: &Market,
        start: usize,
        actions: &[u32],
        batch: &mut StepBatch,
    ) {
        let ActionMap::Levels { allocations, .. } = &self.map else {
            unreachable!("lanes_apply checked the action map")
        };
        let m = LANES.min(self.config.num_envs - start);
        let envs = start..start + m;
        let c = self.config.costs;
        let floor = self.nav_floor();
        let closes = market.close_all();
        let raw_exec_prices = match self.config.execution {
            ExecutionPrice::NextClose => closes,
            ExecutionPrice::NextOpen => market.open_all(),
        };
        let sigmas = market.sigma_all();
        let volumes = market.adv_all();
        // Neutral values in unused lanes keep their arithmetic finite; they are never stored.
        let mut price = [1.0f64; LANES];
        let mut close = [1.0f64; LANES];
        let mut target = [0.0f64; LANES];
        let mut trade = [false; LANES];
        let mut sigma = [0.0f64; LANES];
        let mut volume = [0.0f64; LANES];
        let mut spread_mult = [1.0f64; LANES];
        let mut impact_mult = [1.0f64; LANES];
        let block_t = &mut self.acc.t[envs.clone()];
        let block_level = &mut self.acc.level[envs.clone()];
        let block_scale = &mut self.scale[envs.clone()];
        let block_adversary = &self.adversary[envs.clone()];
        let block_actions = &actions[envs.clone()];
        for j in 0..m {
            let adv = block_adversary[j];
            let level = block_actions[j];
            let t = block_t[j];
            let tn = t + 1;
            let tradable = market.tradable(tn);
            // Without branches: random actions early in training make them unpredictable.
            let change = level != block_level[j];
            let wanted = allocations[level as usize];
            target[j] = if change { wanted } else { 0.0 };
            trade[j] = change & tradable;
            block_level[j] = if change & tradable {
                level
            } else {
                block_level[j]
            };
            let close_n = closes[tn];
            if adv.volatility != 1.0 {
                block_scale[j] *= (close_n / closes[t]).powf(adv.volatility - 1.0);
            }
            price[j] = raw_exec_prices[tn] * block_scale[j];
            close[j] = close_n;
            sigma[j] = sigmas[t];
            // No volume and zero volume both take `CostModel::add_trade`'s fallback impact.
            volume[j] = volumes.map_or(0.0, |v| v[t]);
            spread_mult[j] = adv.spread;
            impact_mult[j] = adv.impact;
            block_t[j] = tn;
        }
        let scale = load_lanes(block_scale, 1.0);
        let mut cash = load_lanes(&self.acc.cash[envs.clone()], 1.0);
        let mut sh = load_lanes(&self.shares[envs.clone()], 0.0);
        let nav_prev = load_lanes(&self.acc.nav[envs.clone()], 1.0);
        let mut nav_exec = [0.0f64; LANES];
        // The cost components, one lane array each (stored field by field).
        let mut fee = [0.0f64; LANES];
        let mut spread = [0.0f64; LANES];
        let mut impact = [0.0f64; LANES];
        let mut slippage = [0.0f64; LANES];
        let mut borrow = [0.0f64; LANES];
        let mut financing = [0.0f64; LANES];
        let mut traded = [0.0f64; LANES];
        let mut turnover = [0.0f64; LANES];
        let mut nav = [0.0f64; LANES];
        let mut gross = [0.0f64; LANES];
        let mut weight = [0.0f64; LANES];
        let mut ratio = [0.0f64; LANES];
        for j in 0..LANES {
            let p = price[j];
            nav_exec[j] = cash[j] + sh[j] * p;
            let go = trade[j] && nav_exec[j] > 0.0;
            let wanted = target[j] * nav_exec[j] / p;
            let new_sh = if go { wanted } else { sh[j] };
            let q = new_sh - sh[j];
            let mut costs = CostBreakdown::default();
            c.add_trade(
                q,
                p,
                sigma[j],
                Some(volume[j]),
                0.0,
                spread_mult[j],
                impact_mult[j],
                &mut costs,
            );
            let mut cash_j = cash[j] - q * p;
            traded[j] = 0.0 + q.abs() * p;
            turnover[j] = if nav_exec[j] > 0.0 {
                traded[j] / nav_exec[j]
            } else {
                0.0
            };
            sh[j] = new_sh;
            let short_notional = 0.0 + (-new_sh).max(0.0) * p;
            cash_j -= costs.fee + costs.spread + costs.impact + costs.slippage;
            c.add_holding(short_notional, cash_j, &mut costs);
            cash_j -= costs.borrow + costs.financing;
            cash[j] = cash_j;
            fee[j] = costs.fee;
            spread[j] = costs.spread;
            impact[j] = costs.impact;
            slippage[j] = costs.slippage;
            borrow[j] = costs.borrow;
            financing[j] = costs.financing;
            let value = new_sh * close[j] * scale[j];
            nav[j] = cash_j + value;
            gross[j] = 0.0 + value.abs();
            let inv_nav = 1.0 / nav[j].max(floor);
            gross[j] *= inv_nav;
            weight[j] = value * inv_nav;
            ratio[j] = nav[j].max(floor) / nav_prev[j];
        }
        let mut log_ret = [0.0f64; LANES];
        ln_ratio_batch(&ratio, &mut log_ret);
        store_lanes(&mut self.acc.cash[envs.clone()], &cash);
        store_lanes(&mut self.acc.nav[envs.clone()], &nav);
        store_lanes(&mut self.shares[envs.clone()], &sh);
        store_lanes(&mut self.info_weights[envs.clone()], &weight);
        let info = &mut self.info;
        store_lanes(&mut info.nav[envs.clone()], &nav);
        store_lanes(&mut info.cash[envs.clone()], &cash);
        store_lanes(&mut info.traded_notional[envs.clone()], &traded);
        store_lanes(&mut info.turnover[envs.clone()], &turnover);
        store_lanes(&mut info.gross_exposure[envs.clone()], &gross);
        store_lanes(&mut info.fee[envs.clone()], &fee);
        store_lanes(&mut info.spread[envs.clone()], &spread);
        store_lanes(&mut info.impact[envs.clone()], &impact);
        store_lanes(&mut info.slippage[envs.clone()], &slippage);
        store_lanes(&mut info.borrow[envs.clone()], &borrow);
        store_lanes(&mut info.financing[envs.clone()], &financing);
        for i in envs.clone() {
            self.acc.steps[i] += 1;
            info.t[i] = self.acc.t[i];
        }
        let done = self.finish_block(start, &nav, &cash, &ratio, &log_ret, batch);
        if done.iter().any(|&d| d) {
            for i in envs {
                self.emit(i, batch);
            }
            return;
        }
        // No episode ended: the observations from the lane arrays, the masks from the levels.
        let d = batch.obs_dim;
        let window = self.config.window;
        let f = market.n_features();
        let wf = window * f;
        let features = market.features_all();
        let block_t = &self.acc.t[envs.clone()];
        for (j, obs) in batch.obs[start * d..(start + m) * d]
            .chunks_exact_mut(d)
            .enumerate()
        {
            let t = block_t[j];
            copy_floats(&mut obs[..wf], &features[(t + 1 - window) * f..(t + 1) * f]);
            let tail = &mut obs[wf..wf + 4];
            tail[0] = weight[j] as f32;
            tail[1] = self.cash_fraction[start + j] as f32;
            tail[2] = self.acc.log_nav[start + j] as f32;
            tail[3] = self.acc.drawdown[start + j] as f32;
        }
        if let Some(masks) = batch.action_masks.as_mut() {
            let k = self.level_ok.len();
            let block_masks = &mut masks[start * k..(start + m) * k];
            if self.dynamic_masks {
                for (j, mask) in block_masks.chunks_exact_mut(k).enumerate() {
                    self.write_mask(start + j, mask);
                }
            } else {
                // The static mask: what the limits admit, and the allocation held.
                for (mask, &level) in block_masks
                    .chunks_exact_mut(k)
                    .zip(&self.acc.level[envs.clone()])
                {
                    for (a, (m, &ok)) in mask.iter_mut().zip(&self.level_ok).enumerate() {
                        *m = ok | (a == level as usize);
                    }
                }
            }
        }
    }

    /// Second half of a step of environments `start..start + LANES` (the lanes past the last
    /// environment are ignored), given each one's NAV and cash after the trade, the NAV
    /// ratio and its logarithm: drawdown, volatility estimate, reward, termination, and the
    /// cash fraction of the next observation, into the accounts, the step infos and `batch`.
    /// Returns which environments' episodes ended. Fixed-length loops over lane arrays, so
    /// that the divisions of several environments run together.
    #[inline(always)]
    fn finish_block(
        &mut self,
        start: usize,
        nav: &[f64; LANES],
        cash: &[f64; LANES],
        ratio: &[f64; LANES],
        log_ret: &[f64; LANES],
        batch: &mut StepBatch,
    ) -> [bool; LANES] {
        let m = LANES.min(self.config.num_envs - start);
        let envs = start..start + m;
        let c = &self.config;
        let floor = self.nav_floor();
        let mut peak = load_lanes(&self.acc.peak[envs.clone()], 1.0);
        let dd_prev = load_lanes(&self.acc.drawdown[envs.clone()], 0.0);
        let mut ew_var = load_lanes(&self.acc.ew_var[envs.clone()], 0.0);
        let mut log_nav = load_lanes(&self.acc.log_nav[envs.clone()], 0.0);
        let t = load_lanes(&self.acc.t[envs.clone()], 0);
        let last_t = load_lanes(&self.acc.last_t[envs.clone()], 0);
        let mut dd = [0.0f64; LANES];
        let mut reward = *log_ret;
        let mut cash_fraction = [0.0f64; LANES];
        for j in 0..LANES {
            peak[j] = peak[j].max(nav[j]);
            dd[j] = (1.0 - nav[j] / peak[j]).clamp(0.0, 1.0);
            ew_var[j] += self.vol_alpha * (log_ret[j] * log_ret[j] - ew_var[j]);
            cash_fraction[j] = cash[j] / nav[j].max(floor);
            log_nav[j] += log_ret[j];
        }
        if let RewardKind::DifferentialSharpe { eta } = c.reward.kind {
            for (j, r) in reward.iter_mut().enumerate().take(m) {
                let i = start + j;
                let x = ratio[j] - 1.0;
                let (a0, b0) = (self.acc.dsr_a[i], self.acc.dsr_b[i]);
                let (da, db) = (x - a0, x * x - b0);
                let var = b0 - a0 * a0;
                *r = if var > 1e-12 {
                    ((b0 * da - 0.5 * a0 * db) / var.powf(1.5)).clamp(-10.0, 10.0)
                } else {
                    0.0
                };
                self.acc.dsr_a[i] += eta * da;
                self.acc.dsr_b[i] += eta * db;
            }
        }
        let ruin = c.ruin_nav_fraction * c.initial_nav;
        let mut terminated = [false; LANES];
        let mut truncated = [false; LANES];
        let mut done = [false; LANES];
        let mut reward_f32 = [0.0f32; LANES];
        for j in 0..LANES {
            reward[j] -= c.reward.drawdown_penalty * (dd[j] - dd_prev[j]).max(0.0);
            reward_f32[j] = reward[j] as f32;
            terminated[j] = nav[j] <= ruin;
            truncated[j] = !terminated[j] & (t[j] >= last_t[j]);
            done[j] = (terminated[j] | truncated[j]) & (j < m);
        }
        store_lanes(&mut self.acc.peak[envs.clone()], &peak);
        store_lanes(&mut self.acc.drawdown[envs.clone()], &dd);
        store_lanes(&mut self.acc.ew_var[envs.clone()], &ew_var);
        store_lanes(&mut self.acc.log_nav[envs.clone()], &log_nav);
        store_lanes(&mut self.cash_fraction[envs.clone()], &cash_fraction);
        store_lanes(&mut self.info.drawdown[envs.clone()], &dd);
        store_lanes(&mut self.info.reward[envs.clone()], &reward);
        store_lanes(&mut batch.rewards[envs.clone()], &reward_f32);
        store_lanes(&mut batch.terminated[envs.clone()], &terminated);
        store_lanes(&mut batch.truncated[envs], &truncated);
        done
    }

    /// Environment `i`'s outputs after its step: the final observation and a reset where the
    /// episode ended, then the observation and the action mask.
    #[inline(always)]
    fn emit(&mut self, i: usize, batch: &mut StepBatch) {
        let d = batch.obs_dim;
        let done = batch.terminated[i] || batch.truncated[i];
        if done {
            self.write_obs(i, &mut batch.final_obs[i * d..(i + 1) * d], true);
            self.reset_one(i);
        }
        self.write_obs(i, &mut batch.obs[i * d..(i + 1) * d], !done);
        if let Some(m) = batch.action_masks.as_mut() {
            let k = self.level_ok.len();
            let mask = &mut m[i * k..(i + 1) * k];
            if self.dynamic_masks {
                self.write_mask(i, mask);
            } else {
                // The static mask: what the limits admit, and the allocation held.
                let level = self.acc.level[i] as usize;
                for (k, (m, &ok)) in mask.iter_mut().zip(&self.level_ok).enumerate() {
                    *m = ok | (k == level);
                }
            }
        }
    }

    /// A step of every environment one at a time (portfolios, continuous actions, recorded
    /// fills, random slippage), then the logarithms, rewards and terminations by blocks.
    #[inline(always)]
    fn general_step(&mut self, market: &Market, actions: Actions<'_>, batch: &mut StepBatch) {
        let n = self.n_assets;
        let dim = self.action_space.flat_dim();
        for i in 0..self.config.num_envs {
            let trade = match actions {
                Actions::Discrete(a) => {
                    let level = a[i];
                    if level == self.acc.level[i] {
                        false
                    } else {
                        let ActionMap::Levels { allocations, .. } = &self.map else {
                            unreachable!()
                        };
                        self.target.copy_from_slice(
                            &allocations[level as usize * n..(level as usize + 1) * n],
                        );
                        if self.market.tradable(self.acc.t[i] + 1) {
                            self.acc.level[i] = level;
                        }
                        true
                    }
                }
                Actions::Continuous(a) => {
                    self.map.continuous_targets(
                        &a[i * dim..(i + 1) * dim],
                        &mut self.target,
                        &mut self.scratch,
                    );
                    self.limit_continuous_target(i);
                    true
                }
            };
            self.ratio[i] = self.advance(market, i, trade);
        }
        ln_ratio_batch(&self.ratio, &mut self.log_ret);
        for start in (0..self.config.num_envs).step_by(LANES) {
            let envs = start..(start + LANES).min(self.config.num_envs);
            let nav = load_lanes(&self.acc.nav[envs.clone()], 1.0);
            let cash = load_lanes(&self.acc.cash[envs.clone()], 0.0);
            let ratio = load_lanes(&self.ratio[envs.clone()], 1.0);
            let log_ret = load_lanes(&self.log_ret[envs], 0.0);
            self.finish_block(start, &nav, &cash, &ratio, &log_ret, batch);
        }
        for i in 0..self.config.num_envs {
            self.emit(i, batch);
        }
    }

    fn check_actions(&self, actions: &Actions<'_>) -> Result<(), EnvError> {
        let e = self.config.num_envs;
        let d = self.action_space.flat_dim();
        let (kind, len) = match actions {
            Actions::Discrete(a) => ("discrete", a.len()),
            Actions::Continuous(a) => ("continuous", a.len()),
        };
        let want = if matches!(self.map, ActionMap::Levels { .. }) {
            "discrete"
        } else {
            "continuous"
        };
        if kind != want || len != e * d {
            return Err(EnvError::ActionShape {
                expected: format!("{} {want} actions", e * d),
                got: format!("{len} {kind} actions"),
            });
        }
        Ok(())
    }
}

impl VecEnv for TradingEnv {
    fn num_envs(&self) -> usize {
        self.config.num_envs
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn has_action_masks(&self) -> bool {
        matches!(self.map, ActionMap::Levels { .. })
    }

    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        if let Some(seed) = seed {
            self.rngs = Rng::streams(seed, self.rngs.len());
        }
        let d = batch.obs_dim;
        let k = self.action_space.mask_len().unwrap_or(0);
        for i in 0..self.config.num_envs {
            self.reset_one(i);
            self.info.set(
                i,
                StepInfo {
                    t: self.acc.t[i],
                    nav: self.config.initial_nav,
                    cash: self.config.initial_nav,
                    ..Default::default()
                },
            );
            self.write_obs(i, &mut batch.obs[i * d..(i + 1) * d], false);
            if let Some(m) = batch.action_masks.as_mut() {
                self.write_mask(i, &mut m[i * k..(i + 1) * k]);
            }
            batch.rewards[i] = 0.0;
            batch.terminated[i] = false;
            batch.truncated[i] = false;
        }
        self.is_reset = true;
    }

    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        if !self.is_reset {
            return Err(EnvError::NotReset);
        }
        self.check_actions(&actions)?;
        let k = self.action_space.mask_len().unwrap_or(0);
        // Validate every action before touching any account, so an error changes nothing.
        match actions {
            Actions::Discrete(a) => {
                let valid = |i: usize, act: u32| match &batch.action_masks {
                    Some(m) => m[i * k..(i + 1) * k].get(act as usize) == Some(&true),
                    None => (act as usize) < k,
                };
                if let Some(i) = (0..a.len()).find(|&i| !valid(i, a[i])) {
                    let act = a[i];
                    let masked = (act as usize) < k;
                    return Err(EnvError::InvalidAction {
                        env: i,
                        action: act.to_string(),
                        space: if masked {
                            format!("{} (the action is masked)", self.action_space)
                        } else {
                            self.action_space.to_string()
                        },
                    });
                }
            }
            // A branch-free pass first (it vectorizes); the search only to name the culprit.
            Actions::Continuous(a) if a.iter().fold(false, |bad, v| bad | !v.is_finite()) => {
                if let Some(j) = a.iter().position(|v| !v.is_finite()) {
                    return Err(EnvError::InvalidAction {
                        env: j / self.action_space.flat_dim(),
                        action: a[j].to_string(),
                        space: self.action_space.to_string(),
                    });
                }
            }
            Actions::Continuous(_) => {}
        }
        let market = Arc::clone(&self.market);
        match actions {
            Actions::Discrete(a) if self.lanes_apply() => {
                single_asset_steps(self, &market, a, batch);
            }
            _ => general_steps(self, &market, actions, batch),
        }
        Ok(())
    }

    fn name(&self) -> &str {
        self.name
    }

    fn regime_label(&self, env: usize) -> Option<usize> {
        self.market.regime(*self.acc.t.get(env)?)
    }

    fn save_state(&self) -> Option<String> {
        serde_json::to_string(&SavedState {
            accounts: (0..self.acc.t.len()).map(|i| self.acc.get(i)).collect(),
            shares: self.shares.clone(),
            scale: self.scale.clone(),
            rngs: self.rngs.clone(),
            adversary: self.adversary.clone(),
        })
        .ok()
    }

    fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
        let s: SavedState = serde_json::from_str(state)
            .map_err(|e| EnvError::State(format!("not a trading environment state: {e}")))?;
        let e = self.config.num_envs;
        let n = self.n_assets;
        if s.accounts.len() != e || s.shares.len() != e * n || s.scale.len() != e * n {
            return Err(EnvError::State(format!(
                "state is for {} environments of {} assets, this one has {e} of {n}",
                s.accounts.len(),
                s.shares.len() / s.accounts.len().max(1)
            )));
        }
        if let Some(a) = s.accounts.iter().find(|a| a.last_t > self.last_row) {
            return Err(EnvError::State(format!(
                "state reaches market row {}, past this market's span end {}",
                a.last_t, self.last_row
            )));
        }
        for (i, a) in s.accounts.into_iter().enumerate() {
            self.acc.set(i, a);
        }
        self.shares = s.shares;
        self.scale = s.scale;
        self.rngs = s.rngs;
        self.adversary = s.adversary;
        self.is_reset = true;
        Ok(())
    }
}

multiversion! {
    /// One step of every environment of a single-asset environment with discrete actions,
    /// by blocks of [`LANES`] ([`TradingEnv::single_asset_block`]), compiled for the CPU's
    /// widest vectors.
    fn single_asset_steps(
        env: &mut TradingEnv,
        market: &Market,
        actions: &[u32],
        batch: &mut StepBatch,
    ) {
        for start in (0..env.config.num_envs).step_by(LANES) {
            env.single_asset_block(market, start, actions, batch);
        }
    }
}

/// Configuration of a [`SingleAssetEnv`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SingleAssetConfig {
    /// The common trading settings.
    #[serde(flatten)]
    pub trading: TradingConfig,
    /// Discrete position levels or a continuous target weight.
    pub actions: PositionActions,
}

/// Configuration of a [`PortfolioEnv`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortfolioConfig {
    /// The common trading settings.
    #[serde(flatten)]
    pub trading: TradingConfig,
    /// Continuous target weights or discrete regimes.
    pub actions: PortfolioActions,
}

macro_rules! delegate_env {
    ($ty:ident) => {
        impl std::ops::Deref for $ty {
            type Target = TradingEnv;
            fn deref(&self) -> &TradingEnv {
                &self.0
            }
        }

        impl std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut TradingEnv {
                &mut self.0
            }
        }

        impl VecEnv for $ty {
            fn num_envs(&self) -> usize {
                self.0.num_envs()
            }
            fn observation_space(&self) -> &Space {
                self.0.observation_space()
            }
            fn action_space(&self) -> &Space {
                self.0.action_space()
            }
            fn has_action_masks(&self) -> bool {
                self.0.has_action_masks()
            }
            fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
                self.0.reset(seed, batch)
            }
            fn step(
                &mut self,
                actions: Actions<'_>,
                batch: &mut StepBatch,
            ) -> Result<(), EnvError> {
                self.0.step(actions, batch)
            }
            fn name(&self) -> &str {
                self.0.name()
            }
            fn save_state(&self) -> Option<String> {
                self.0.save_state()
            }
            fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
                self.0.load_state(state)
            }
            fn regime_label(&self, env: usize) -> Option<usize> {
                self.0.regime_label(env)
            }
        }
    };
}

/// Trading one asset: discrete target positions (short/flat/long or `k` levels) or a
/// continuous target weight. See [`TradingEnv`] for the timeline, costs and observation.
///
/// ```
/// use std::sync::Arc;
/// use quantrl_core::{Actions, StepBatch, VecEnv};
/// use quantrl_envs::trading::{Market, SingleAssetConfig, SingleAssetEnv, TradingConfig};
///
/// let close: Vec<f64> = (0..100).map(|t| 100.0 + t as f64).collect();
/// let market = Arc::new(Market::from_close(1, close)?);
/// let config = SingleAssetConfig {
///     trading: TradingConfig { num_envs: 2, window: 1, ..Default::default() },
///     ..Default::default()
/// };
/// let mut env = SingleAssetEnv::new(market, config)?;
/// let mut batch = StepBatch::for_env(&env);
/// env.reset(Some(0), &mut batch);
/// // Env 0 goes long (buying at the next close, so the first step pays only costs), env 1
/// // stays flat.
/// env.step(Actions::Discrete(&[2, 1]), &mut batch)?;
/// assert!(batch.rewards[0] < 0.0 && env.info(0).costs.total() > 0.0);
/// env.step(Actions::Discrete(&[2, 1]), &mut batch)?;
/// assert!(batch.rewards[0] > 0.0, "a rising market pays the long position");
/// assert_eq!(batch.rewards[1], 0.0);
/// # Ok::<(), quantrl_core::EnvError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SingleAssetEnv(TradingEnv);

impl SingleAssetEnv {
    /// Build `config.trading.num_envs` environments on `market` (which must hold exactly one
    /// asset).
    pub fn new(market: Arc<Market>, config: SingleAssetConfig) -> Result<Self, EnvError> {
        if market.n_assets() != 1 {
            return Err(ConfigError::Inconsistent(format!(
                "a single-asset environment needs a market of one asset, got {}",
                market.n_assets()
            ))
            .into());
        }
        let map = ActionMap::from_position(&config.actions)?;
        Ok(Self(TradingEnv::build(
            market,
            config.trading,
            map,
            "SingleAsset-v0",
        )?))
    }
}

delegate_env!(SingleAssetEnv);

/// Trading `N` assets plus cash: continuous target weights (softmax or simplex projection,
/// with leverage and concentration caps) or a discrete set of portfolio regimes. See
/// [`TradingEnv`] for the timeline, costs and observation.
#[derive(Debug, Clone)]
pub struct PortfolioEnv(TradingEnv);

impl PortfolioEnv {
    /// Build `config.trading.num_envs` environments on `market`.
    pub fn new(market: Arc<Market>, config: PortfolioConfig) -> Result<Self, EnvError> {
        let map = ActionMap::from_portfolio(&config.actions, market.n_assets())?;
        Ok(Self(TradingEnv::build(
            market,
            config.trading,
            map,
            "Portfolio-v0",
        )?))
    }
}

delegate_env!(PortfolioEnv);

multiversion! {
    /// [`TradingEnv::general_step`] compiled for the CPU's widest vectors (the per-asset loops
    /// of a portfolio step, the softmax, the observation copy).
    fn general_steps(
        env: &mut TradingEnv,
        market: &Market,
        actions: Actions<'_>,
        batch: &mut StepBatch,
    ) {
        env.general_step(market, actions, batch)
    }
}

//! Baselines on the same span and with the same costs as the agent.
//!
//! Every baseline but the index is a list of target allocations and a rule for choosing one
//! each bar ([`AllocationPolicy`]), run by [`Backtester::run_allocations`] through the
//! agent's own trading engine: same market, span, observation window (so the same first
//! decision row), initial NAV, [`CostModel`], execution price, risk limits and ruin rule. Only
//! the actions differ: the environment's discrete actions become exactly the baseline's
//! allocations (position levels for a single asset, portfolio regimes otherwise).
//!
//! Why not the agent's own action space: with continuous target weights an environment
//! trades to the target every bar, so it cannot hold a position unchanged (buy-and-hold would
//! become a daily-rebalanced constant mix), and with discrete regimes choosing the held
//! regime keeps the book, so it cannot rebalance. With the allocations as actions both are
//! exact: choosing the held allocation holds (no trade, no cost), choosing another trades to
//! its weights. A rebalance to the same weights is a switch between two identical copies of
//! the allocation.
//!
//! | baseline | allocations | rule |
//! |---|---|---|
//! | [`Cash`] | cash | never trade: NAV stays the initial NAV |
//! | [`BuyAndHold`] | cash, equal weight | buy `1/N` of NAV in each asset on the first bar (all of it in a single asset), then hold |
//! | [`EqualWeight`] | cash, equal weight twice | trade to `1/N` each on the first bar and every `k`-th bar after it (default 21, about monthly) |
//! | [`Oracle`] | the agent's targets that perfect foresight picks | on each bar, the target with the best return over the coming holding interval (see its docs) |
//! | [`index`] | (not traded in the environment) | the index series itself after a one-time entry cost: clearly labelled, not a strategy the environment could run |
//!
//! Risk limits apply to baselines as to the agent: when the allocation a baseline wants is
//! masked (a position, gross or turnover limit, a risk budget, a no-trade bar), it takes the
//! allowed allocation closest to it in L1 distance (ties: the lowest index). The held
//! allocation is always allowed, so in practice it holds.

use quantrl_core::ConfigError;
use quantrl_data::Date;
use quantrl_envs::trading::{
    CostBreakdown, CostModel, ExecutionPrice, PortfolioActions, PositionActions, default_regimes,
};

use crate::backtest::{
    AllocationPolicy, BacktestPolicy, BacktestResult, Backtester, EnvSpec, EquityPoint,
    PolicyActions, Trade,
};
use crate::error::EvalError;

/// The allowed allocation closest to `allocations[wanted]` in L1 distance (ties: the lowest
/// index); `wanted` itself when allowed or when there is no mask.
fn choose(wanted: usize, allocations: &[Vec<f64>], mask: Option<&[bool]>) -> u32 {
    let Some(m) = mask else {
        return wanted as u32;
    };
    if m[wanted] {
        return wanted as u32;
    }
    let target = &allocations[wanted];
    allocations
        .iter()
        .enumerate()
        .filter(|(k, _)| m[*k])
        .map(|(k, w)| {
            let d: f64 = w.iter().zip(target).map(|(a, b)| (a - b).abs()).sum();
            (k, d)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(wanted as u32, |(k, _)| k as u32)
}

/// Write action `wanted` (or the closest allowed one) for a baseline.
fn write_choice(
    label: &str,
    wanted: usize,
    allocations: &[Vec<f64>],
    masks: Option<&[bool]>,
    out: &mut PolicyActions,
) -> Result<(), EvalError> {
    let Some(a) = out.discrete_mut() else {
        return Err(EvalError::UnsupportedSpace {
            policy: label.into(),
            space: "continuous actions (run baselines with Backtester::run_allocations)".into(),
        });
    };
    let k = allocations.len();
    if let Some(m) = masks
        && m.len() != a.len() * k
    {
        return Err(EvalError::UnsupportedSpace {
            policy: label.into(),
            space: format!(
                "an action space of {} actions (it chooses among its {k} allocations: run it \
                 with Backtester::run_allocations)",
                m.len() / a.len().max(1)
            ),
        });
    }
    for (i, slot) in a.iter_mut().enumerate() {
        *slot = choose(wanted, allocations, masks.map(|m| &m[i * k..(i + 1) * k]));
    }
    Ok(())
}

fn equal_weight(n: usize) -> Vec<f64> {
    vec![1.0 / n as f64; n]
}

macro_rules! allocation_policy {
    ($ty:ty) => {
        impl BacktestPolicy for $ty {
            fn label(&self) -> &str {
                &self.label
            }

            fn reset(&mut self, _n_envs: usize) {
                self.step = 0;
            }

            fn act(
                &mut self,
                _obs: &[f32],
                action_masks: Option<&[bool]>,
                _episode_start: &[bool],
                out: &mut PolicyActions,
            ) -> Result<(), EvalError> {
                let wanted = self.wanted(self.step);
                self.step += 1;
                write_choice(&self.label, wanted, &self.allocations, action_masks, out)
            }
        }
    };
}

/// Never trade: the whole NAV stays in cash (which costs nothing and earns nothing), so the
/// NAV is constant.
#[derive(Debug, Clone)]
pub struct Cash {
    label: String,
    allocations: Vec<Vec<f64>>,
    step: usize,
}

impl Cash {
    /// Cash on `backtester`'s market.
    pub fn new(backtester: &Backtester) -> Self {
        Self {
            label: "cash".into(),
            allocations: vec![vec![0.0; backtester.market().n_assets()]],
            step: 0,
        }
    }

    fn wanted(&self, _step: usize) -> usize {
        0
    }
}

allocation_policy!(Cash);

impl AllocationPolicy for Cash {
    fn allocations(&self) -> &[Vec<f64>] {
        &self.allocations
    }

    fn description(&self) -> String {
        "cash: never trades; NAV stays the initial NAV".into()
    }
}

/// Buy once, hold: on the first bar, target `1/N` of NAV in each of the `N` assets (all of
/// it in a single asset), then never trade again, so the weights drift with prices.
#[derive(Debug, Clone)]
pub struct BuyAndHold {
    label: String,
    allocations: Vec<Vec<f64>>,
    step: usize,
}

impl BuyAndHold {
    /// Buy-and-hold on `backtester`'s market.
    pub fn new(backtester: &Backtester) -> Result<Self, EvalError> {
        let n = backtester.market().n_assets();
        Ok(Self {
            label: "buy-and-hold".into(),
            allocations: vec![vec![0.0; n], equal_weight(n)],
            step: 0,
        })
    }

    fn wanted(&self, _step: usize) -> usize {
        1
    }
}

allocation_policy!(BuyAndHold);

impl AllocationPolicy for BuyAndHold {
    fn allocations(&self) -> &[Vec<f64>] {
        &self.allocations
    }

    fn description(&self) -> String {
        let n = self.allocations[0].len();
        if n == 1 {
            "buy-and-hold: all of the NAV in the asset on the first bar, then no trade".into()
        } else {
            format!(
                "buy-and-hold: 1/{n} of the NAV in each asset on the first bar, then no trade \
                 (weights drift)"
            )
        }
    }
}

/// Equal weight, rebalanced: trade to `1/N` of NAV in each asset on the first bar and on
/// every `every`-th bar after it (decision steps `0, every, 2 every, ...`); hold in between.
#[derive(Debug, Clone)]
pub struct EqualWeight {
    label: String,
    allocations: Vec<Vec<f64>>,
    every: usize,
    step: usize,
}

impl EqualWeight {
    /// Bars between rebalances by default: 21 trading days, about a month.
    pub const DEFAULT_EVERY: usize = 21;

    /// Equal weight rebalanced every `every` bars (at least 1).
    pub fn new(backtester: &Backtester, every: usize) -> Result<Self, EvalError> {
        if every == 0 {
            return Err(ConfigError::out_of_range("baselines.rebalance_every", 0, ">= 1").into());
        }
        let n = backtester.market().n_assets();
        let ew = equal_weight(n);
        Ok(Self {
            label: format!("equal-weight/{every}"),
            allocations: vec![vec![0.0; n], ew.clone(), ew],
            every,
            step: 0,
        })
    }

    /// Rebalance by switching between the two identical equal-weight allocations (choosing
    /// the held one would hold).
    fn wanted(&self, step: usize) -> usize {
        1 + (step / self.every) % 2
    }
}

allocation_policy!(EqualWeight);

impl AllocationPolicy for EqualWeight {
    fn allocations(&self) -> &[Vec<f64>] {
        &self.allocations
    }

    fn description(&self) -> String {
        let n = self.allocations[0].len();
        format!(
            "equal weight: 1/{n} of the NAV in each asset, rebalanced on the first bar and every \
             {} bars",
            self.every
        )
    }
}

/// The label of the [`Oracle`] baseline.
pub const ORACLE_LABEL: &str = "oracle";

/// Perfect foresight: on each decision bar `t`, the target with the highest return over the
/// coming holding interval, among the targets the agent's action space can express.
///
/// The holding interval of a decision on bar `t` runs from its execution price on bar
/// `t + 1` (open or close, as the environment executes) to the next execution price on bar
/// `t + 2` (or the close of the last bar of the span). With `r` the assets' simple returns
/// over it, the oracle picks the target `w` maximizing `w . r`:
///
/// - discrete position levels or portfolio regimes: the best of the agent's levels or
///   regimes;
/// - a continuous single-asset weight in `[min, max]`: `max`, `min` or 0 (the maximum of a
///   linear function is at an end);
/// - continuous portfolio weights with leverage `L` and cap `m`: `m` in the asset with the
///   best positive return, then in the next best, ... until `L` is invested (the exact
///   maximum of `w . r` over `0 <= w_a <= m`, `sum w <= L`).
///
/// Ties keep the previous target. Costs are not part of the choice but are paid in the run
/// (through the same engine as every baseline), so on a market whose moves are small against
/// costs a cost-aware strategy can beat it; on a synthetic market with daily moves well above
/// the costs it is the upper reference the agent is measured against.
#[derive(Debug, Clone)]
pub struct Oracle {
    label: String,
    allocations: Vec<Vec<f64>>,
    /// Allocation index per decision step.
    plan: Vec<usize>,
    step: usize,
}

impl Oracle {
    /// The oracle of `backtester`'s span (it reads the whole span's prices: that is the
    /// point).
    pub fn new(backtester: &Backtester) -> Result<Self, EvalError> {
        let market = backtester.market();
        let n = market.n_assets();
        let trading = backtester.trading();
        let price = |row: usize| match trading.execution {
            ExecutionPrice::NextOpen => market.open(row),
            ExecutionPrice::NextClose => market.close(row),
        };
        let candidates: Option<Vec<Vec<f64>>> = match backtester.spec() {
            EnvSpec::SingleAsset(c) => Some(match &c.actions {
                PositionActions::Levels { levels } => levels.iter().map(|&l| vec![l]).collect(),
                PositionActions::Continuous {
                    min_weight,
                    max_weight,
                } => vec![
                    vec![*max_weight],
                    vec![*min_weight],
                    vec![0.0f64.clamp(*min_weight, *max_weight)],
                ],
            }),
            EnvSpec::Portfolio(c) => match &c.actions {
                PortfolioActions::Regimes { allocations } => {
                    Some(allocations.clone().unwrap_or_else(|| default_regimes(n)))
                }
                PortfolioActions::Weights { .. } => None,
            },
        };
        let (first, last) = (backtester.first_row(), backtester.last_row());
        let mut allocations = vec![vec![0.0; n]];
        let mut plan = Vec::with_capacity(last - first);
        let mut previous = vec![0.0; n];
        let mut r = vec![0.0; n];
        for t in first..last {
            let p_in = price(t + 1);
            let p_out = if t + 2 <= last {
                price(t + 2)
            } else {
                market.close(last)
            };
            for a in 0..n {
                r[a] = p_out[a] / p_in[a] - 1.0;
            }
            let value = |w: &[f64]| w.iter().zip(&r).map(|(w, r)| w * r).sum::<f64>();
            let target = match &candidates {
                Some(c) => {
                    let mut best = previous.clone();
                    let mut best_value = value(&best);
                    for w in c {
                        let v = value(w);
                        if v > best_value {
                            best = w.clone();
                            best_value = v;
                        }
                    }
                    best
                }
                None => {
                    let EnvSpec::Portfolio(c) = backtester.spec() else {
                        unreachable!("only portfolio weights have no candidate list")
                    };
                    let PortfolioActions::Weights {
                        leverage,
                        max_weight,
                        ..
                    } = c.actions
                    else {
                        unreachable!("regimes have a candidate list")
                    };
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|&a, &b| r[b].total_cmp(&r[a]));
                    let mut w = vec![0.0; n];
                    let mut left = leverage;
                    for a in order {
                        if r[a] <= 0.0 || left <= 0.0 {
                            break;
                        }
                        w[a] = max_weight.min(left);
                        left -= w[a];
                    }
                    if value(&w) > value(&previous) {
                        w
                    } else {
                        previous.clone()
                    }
                }
            };
            let k = match allocations.iter().position(|a| *a == target) {
                Some(k) => k,
                None => {
                    allocations.push(target.clone());
                    allocations.len() - 1
                }
            };
            plan.push(k);
            previous = target;
        }
        Ok(Self {
            label: ORACLE_LABEL.into(),
            allocations,
            plan,
            step: 0,
        })
    }

    fn wanted(&self, step: usize) -> usize {
        self.plan.get(step).copied().unwrap_or(0)
    }
}

allocation_policy!(Oracle);

impl AllocationPolicy for Oracle {
    fn allocations(&self) -> &[Vec<f64>] {
        &self.allocations
    }

    fn description(&self) -> String {
        "oracle (perfect foresight): each bar, the agent's target with the best return over \
         the coming holding interval; costs paid, not anticipated"
            .into()
    }
}

/// A price index to compare with (not traded in the environment).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSeries {
    /// Row label (e.g. `S&P 500 index`).
    pub label: String,
    /// Name of the series as an asset (e.g. `SP500`).
    pub ticker: String,
    /// Dates, strictly increasing.
    pub dates: Vec<Date>,
    /// Index level on each date, finite and positive.
    pub closes: Vec<f64>,
}

impl IndexSeries {
    /// An index series, checked: as many dates as closes, strictly increasing dates, finite
    /// positive levels.
    pub fn new(
        label: impl Into<String>,
        ticker: impl Into<String>,
        dates: Vec<Date>,
        closes: Vec<f64>,
    ) -> Result<Self, EvalError> {
        let ticker = ticker.into();
        let bad = |reason: String| EvalError::Dates {
            series: ticker.clone(),
            reason,
        };
        if dates.len() != closes.len() || dates.is_empty() {
            return Err(bad(format!(
                "{} dates for {} levels (need the same number, at least one)",
                dates.len(),
                closes.len()
            )));
        }
        if let Some(k) = dates.windows(2).position(|w| w[0] >= w[1]) {
            return Err(bad(format!(
                "row {} ({}) is not after row {k} ({})",
                k + 1,
                dates[k + 1],
                dates[k]
            )));
        }
        if let Some(k) = closes.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(EvalError::NonFinite {
                series: "index",
                index: k,
                value: closes[k],
            });
        }
        Ok(Self {
            label: label.into(),
            ticker,
            dates,
            closes,
        })
    }

    /// The S&P 500 index embedded in `quantrl-data` (skfolio's `sp500_index`, 1990-2022, on
    /// the dates of the embedded 20-stock panel).
    pub fn sp500() -> Result<Self, EvalError> {
        let panel = quantrl_data::embedded::sp500_index()?;
        let closes = panel.column("SP500")?.to_vec();
        Self::new("S&P 500 index", "SP500", panel.dates, closes)
    }

    /// The level on `date`, if the series has it.
    pub fn level_on(&self, date: Date) -> Option<f64> {
        self.dates.binary_search(&date).ok().map(|k| self.closes[k])
    }
}

/// The index over the dates of `reference` (any backtest of the span, with dates): the whole
/// initial NAV is invested at the index close of the first execution bar, paying once
/// `(fee_bps + half_spread_bps) * 1e-4` of it (no impact, slippage, borrow or financing),
/// and then follows the index:
/// `NAV_k = initial_nav * (1 - c) * I(date_k) / I(date_1)` for `k >= 1`, `NAV_0 = initial_nav`.
///
/// This is not a strategy the environment could run (the index is not one of the market's
/// assets); it is the market the agent is compared with, labelled as such.
pub fn index(
    reference: &BacktestResult,
    series: &IndexSeries,
    costs: &CostModel,
) -> Result<BacktestResult, EvalError> {
    let mut levels = Vec::with_capacity(reference.equity.len());
    for p in &reference.equity {
        let Some(date) = p.date else {
            return Err(EvalError::Dates {
                series: reference.label.clone(),
                reason: format!(
                    "row {} has no date: the index baseline aligns by date (give the \
                     backtester dates)",
                    p.row
                ),
            });
        };
        let Some(level) = series.level_on(date) else {
            return Err(EvalError::Dates {
                series: series.ticker.clone(),
                reason: format!("no level on {date} (market row {})", p.row),
            });
        };
        levels.push(level);
    }
    if levels.len() < 2 {
        return Err(EvalError::Incomparable(format!(
            "`{}` has no step to follow the index over",
            reference.label
        )));
    }
    let nav0 = reference.initial_nav;
    let rate = (costs.fee_bps + costs.half_spread_bps) * 1e-4;
    let entry = CostBreakdown {
        fee: costs.fee_bps * 1e-4 * nav0,
        spread: costs.half_spread_bps * 1e-4 * nav0,
        ..CostBreakdown::default()
    };
    let invested = nav0 * (1.0 - rate);
    let units = invested / levels[1];
    let mut equity = Vec::with_capacity(levels.len());
    let mut peak = nav0;
    let mut previous = nav0;
    for (k, (p, &level)) in reference.equity.iter().zip(&levels).enumerate() {
        let nav = if k == 0 { nav0 } else { units * level };
        peak = peak.max(nav);
        equity.push(EquityPoint {
            row: p.row,
            date: p.date,
            nav,
            cash: if k == 0 { nav0 } else { 0.0 },
            gross_exposure: if k == 0 { 0.0 } else { 1.0 },
            drawdown: 1.0 - nav / peak,
            step_return: if k == 0 { 0.0 } else { nav / previous - 1.0 },
            turnover: if k == 1 { 1.0 } else { 0.0 },
            traded_notional: if k == 1 { nav0 } else { 0.0 },
            costs: if k == 1 {
                entry
            } else {
                CostBreakdown::default()
            },
            weights: vec![if k == 0 { 0.0 } else { 1.0 }],
        });
        previous = nav;
    }
    let first = &reference.equity[1];
    let trades = vec![Trade {
        decision_row: reference.equity[0].row,
        row: first.row,
        date: first.date,
        asset: series.ticker.clone(),
        shares: units,
        price: levels[1],
        notional: nav0,
        fee: entry.fee,
        spread: entry.spread,
        impact: 0.0,
        slippage: 0.0,
    }];
    let metrics = BacktestResult::summarize(&equity, None, &reference.metrics.config)?;
    Ok(BacktestResult {
        label: series.label.clone(),
        description: format!(
            "{} ({}): the index itself after a one-time entry cost of {} bp (fee + \
             half-spread); not traded in the environment",
            series.label,
            series.ticker,
            costs.fee_bps + costs.half_spread_bps
        ),
        env: "index".into(),
        asset_names: vec![series.ticker.clone()],
        initial_nav: nav0,
        costs: *costs,
        execution: ExecutionPrice::NextClose,
        seed: reference.seed,
        ruined: false,
        equity,
        trades,
        metrics,
    })
}

/// Which baselines [`standard_set`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineConfig {
    /// Bars between rebalances of the equal-weight baseline (default 21, about monthly).
    pub rebalance_every: usize,
    /// Whether to run the perfect-foresight [`Oracle`] (default `true`).
    pub oracle: bool,
    /// An index to follow over the same dates (needs a backtester with dates), e.g.
    /// [`IndexSeries::sp500`]; `None` by default.
    pub index: Option<IndexSeries>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            rebalance_every: EqualWeight::DEFAULT_EVERY,
            oracle: true,
            index: None,
        }
    }
}

/// Cash, buy-and-hold, equal weight rebalanced every `config.rebalance_every` bars, the
/// oracle (when `config.oracle`) and the index (when `config.index` is given), in that
/// order, all on `backtester`'s span and costs.
pub fn standard_set(
    backtester: &Backtester,
    config: &BaselineConfig,
) -> Result<Vec<BacktestResult>, EvalError> {
    let mut out = vec![
        backtester.run_allocations(&mut Cash::new(backtester))?,
        backtester.run_allocations(&mut BuyAndHold::new(backtester)?)?,
        backtester.run_allocations(&mut EqualWeight::new(backtester, config.rebalance_every)?)?,
    ];
    if config.oracle {
        out.push(backtester.run_allocations(&mut Oracle::new(backtester)?)?);
    }
    if let Some(series) = &config.index {
        let reference = &out[0];
        out.push(index(reference, series, &backtester.trading().costs)?);
    }
    Ok(out)
}

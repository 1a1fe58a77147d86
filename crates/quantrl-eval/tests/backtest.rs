//! The backtester: a trade sequence computed by hand, refused actions, no look-ahead.

use std::sync::Arc;

use proptest::prelude::*;
use quantrl_envs::trading::{
    CostModel, Market, PositionActions, RiskLimits, SingleAssetConfig, TradingConfig,
};
use quantrl_eval::{
    BacktestPolicy, Backtester, EnvSpec, EvalError, PerformanceSummary, PolicyActions,
    SummaryConfig,
};

/// Plays a fixed list of discrete actions, checking what the backtester hands it.
struct Script {
    actions: Vec<u32>,
    step: usize,
    resets: usize,
}

impl Script {
    fn new(actions: Vec<u32>) -> Self {
        Self {
            actions,
            step: 0,
            resets: 0,
        }
    }
}

impl BacktestPolicy for Script {
    fn label(&self) -> &str {
        "script"
    }

    fn reset(&mut self, n_envs: usize) {
        assert_eq!(n_envs, 1);
        self.step = 0;
        self.resets += 1;
    }

    fn act(
        &mut self,
        obs: &[f32],
        action_masks: Option<&[bool]>,
        episode_start: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        // No features, window 1: weight, cash/NAV, log NAV, drawdown.
        assert_eq!(obs.len(), 4);
        assert_eq!(episode_start, &[self.step == 0]);
        let Some(a) = out.discrete_mut() else {
            return Err(EvalError::UnsupportedSpace {
                policy: self.label().into(),
                space: "a continuous action space".into(),
            });
        };
        assert_eq!(action_masks.map(<[bool]>::len), Some(3));
        a[0] = self.actions[self.step];
        self.step += 1;
        Ok(())
    }
}

fn close_eq(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{what}: {a} != {b} (diff {})",
        a - b
    );
}

/// Short, flat, long on one asset; fee 10 bp, half-spread 5 bp, nothing else.
fn tiny_spec(limits: RiskLimits) -> EnvSpec {
    EnvSpec::SingleAsset(SingleAssetConfig {
        trading: TradingConfig {
            window: 1,
            initial_nav: 1000.0,
            costs: CostModel {
                fee_bps: 10.0,
                half_spread_bps: 5.0,
                ..CostModel::zero()
            },
            limits,
            // Training settings the backtester must replace.
            num_envs: 8,
            random_start: true,
            episode_len: Some(2),
            ..TradingConfig::default()
        },
        actions: PositionActions::Levels {
            levels: vec![-1.0, 0.0, 1.0],
        },
    })
}

fn tiny_market() -> Arc<Market> {
    Arc::new(Market::from_close(1, vec![100.0, 110.0, 99.0, 99.0, 120.0, 108.0]).unwrap())
}

/// Every number of a six-bar backtest, by hand. Closes 100, 110, 99, 99, 120, 108; NAV 1000;
/// orders execute at the next close; each order pays 10 bp fee + 5 bp half-spread = 15 bp.
/// Decisions on rows 0..=4: long, long (hold), flat, short, short (hold).
#[test]
fn hand_computed_trade_sequence() {
    let bt = Backtester::new(tiny_market(), tiny_spec(RiskLimits::default())).unwrap();
    assert_eq!((bt.first_row(), bt.last_row(), bt.n_steps()), (0, 5, 5));
    let mut policy = Script::new(vec![2, 2, 1, 0, 0]);
    let r = bt.run(&mut policy).unwrap();
    assert_eq!(policy.resets, 1);
    assert_eq!(r.label, "script");
    assert!(!r.ruined);
    assert_eq!(r.equity.len(), 6);
    let shares_long = 1000.0 / 110.0;

    // Point 0: row 0, NAV 1000 in cash.
    let p = &r.equity[0];
    assert_eq!(
        (p.row, p.nav, p.cash, p.step_return),
        (0, 1000.0, 1000.0, 0.0)
    );

    // Step 1 (decide row 0, execute at the close of row 1 = 110): buy 1000/110 shares,
    // notional 1000, fee 1.0, spread 0.5. cash = 1000 - 1000 - 1.5 = -1.5;
    // NAV = -1.5 + 1000 = 998.5; return -0.0015; weight 1000/998.5; drawdown 0.0015.
    let p = &r.equity[1];
    assert_eq!(p.row, 1);
    close_eq(p.cash, -1.5, "cash 1");
    close_eq(p.nav, 998.5, "nav 1");
    close_eq(p.step_return, -0.0015, "return 1");
    close_eq(p.costs.fee, 1.0, "fee 1");
    close_eq(p.costs.spread, 0.5, "spread 1");
    close_eq(p.costs.total(), 1.5, "costs 1");
    close_eq(p.traded_notional, 1000.0, "notional 1");
    close_eq(p.turnover, 1.0, "turnover 1");
    close_eq(p.weights[0], 1000.0 / 998.5, "weight 1");
    close_eq(p.gross_exposure, 1000.0 / 998.5, "gross 1");
    close_eq(p.drawdown, 0.0015, "drawdown 1");

    // Step 2 (long again: the level is held, nothing trades; close 99):
    // NAV = -1.5 + (1000/110) * 99 = -1.5 + 900 = 898.5; drawdown 1 - 0.8985 = 0.1015.
    let p = &r.equity[2];
    assert_eq!(p.row, 2);
    assert_eq!(p.traded_notional, 0.0);
    assert_eq!(p.costs.total(), 0.0);
    close_eq(p.cash, -1.5, "cash 2");
    close_eq(p.nav, 898.5, "nav 2");
    close_eq(p.step_return, 898.5 / 998.5 - 1.0, "return 2");
    close_eq(p.weights[0], 900.0 / 898.5, "weight 2");
    close_eq(p.drawdown, 0.1015, "drawdown 2");

    // Step 3 (flat, execute at 99): sell 1000/110 shares, notional 900, fee 0.9,
    // spread 0.45. cash = -1.5 + 900 - 1.35 = 897.15 = NAV; drawdown 0.10285.
    let p = &r.equity[3];
    close_eq(p.cash, 897.15, "cash 3");
    close_eq(p.nav, 897.15, "nav 3");
    close_eq(p.step_return, 897.15 / 898.5 - 1.0, "return 3");
    close_eq(p.costs.fee, 0.9, "fee 3");
    close_eq(p.costs.spread, 0.45, "spread 3");
    close_eq(p.turnover, 900.0 / 898.5, "turnover 3");
    assert_eq!(p.weights[0], 0.0);
    assert_eq!(p.gross_exposure, 0.0);
    close_eq(p.drawdown, 0.10285, "drawdown 3");

    // Step 4 (short, execute at 120): NAV at execution 897.15; sell 897.15/120 = 7.47625
    // shares, notional 897.15, fee 0.89715, spread 0.448575.
    // cash = 897.15 + 897.15 - 1.345725 = 1792.954275; NAV = cash - 7.47625 * 120 = 895.804275.
    let p = &r.equity[4];
    close_eq(p.cash, 1792.954275, "cash 4");
    close_eq(p.nav, 895.804275, "nav 4");
    close_eq(p.step_return, 895.804275 / 897.15 - 1.0, "return 4");
    close_eq(p.costs.fee, 0.89715, "fee 4");
    close_eq(p.costs.spread, 0.448575, "spread 4");
    close_eq(p.turnover, 1.0, "turnover 4");
    close_eq(p.weights[0], -897.15 / 895.804275, "weight 4");
    close_eq(p.drawdown, 1.0 - 0.895804275, "drawdown 4");

    // Step 5 (short held, close 108; the span ends): NAV = 1792.954275 - 7.47625 * 108
    // = 1792.954275 - 807.435 = 985.519275.
    let p = &r.equity[5];
    assert_eq!(p.row, 5);
    assert_eq!(p.costs.total(), 0.0);
    close_eq(p.nav, 985.519275, "nav 5");
    close_eq(p.step_return, 985.519275 / 895.804275 - 1.0, "return 5");
    close_eq(p.gross_exposure, 807.435 / 985.519275, "gross 5");
    close_eq(p.drawdown, 1.0 - 0.985519275, "drawdown 5");
    close_eq(r.final_nav(), 985.519275, "final nav");

    // The trade log: three orders, decided on rows 0, 2, 3.
    assert_eq!(r.trades.len(), 3);
    let expect = [
        (0, 1, shares_long, 110.0, 1000.0, 1.0, 0.5),
        (2, 3, -shares_long, 99.0, 900.0, 0.9, 0.45),
        (3, 4, -7.47625, 120.0, 897.15, 0.89715, 0.448575),
    ];
    for (t, (decision, row, shares, price, notional, fee, spread)) in r.trades.iter().zip(expect) {
        assert_eq!((t.decision_row, t.row), (decision, row));
        assert_eq!(t.asset, "asset0");
        assert_eq!(t.date, None);
        close_eq(t.shares, shares, "shares");
        assert_eq!(t.price, price);
        close_eq(t.notional, notional, "notional");
        close_eq(t.fee, fee, "fee");
        close_eq(t.spread, spread, "spread");
        assert_eq!((t.impact, t.slippage), (0.0, 0.0));
        close_eq(t.cost(), 1.5 * fee, "cost = fee + spread");
    }
    let total = r.total_costs();
    close_eq(total.total(), 1.5 + 1.35 + 1.345725, "total costs");
    close_eq(
        r.trades.iter().map(|t| t.cost()).sum::<f64>(),
        total.total(),
        "trade log costs add up",
    );

    // The metrics are those of the five returns; turnover and exposure are step means.
    let returns = r.returns();
    assert_eq!(returns.len(), 5);
    let want =
        PerformanceSummary::compute(&returns, None, None, &SummaryConfig::default()).unwrap();
    assert_eq!(r.metrics.sharpe_ratio, want.sharpe_ratio);
    assert_eq!(r.metrics.max_drawdown, want.max_drawdown);
    // The lowest NAV is 895.804275 after step 4, below the peak of 1000 (the start).
    close_eq(
        r.metrics.max_drawdown,
        895.804275 / 1000.0 - 1.0,
        "max drawdown",
    );
    close_eq(
        r.metrics.turnover.unwrap(),
        (1.0 + 900.0 / 898.5 + 1.0) / 5.0,
        "turnover",
    );
    let gross: f64 = r.equity[1..].iter().map(|p| p.gross_exposure).sum();
    close_eq(r.metrics.exposure.unwrap(), gross / 5.0, "exposure");

    // A backtest is deterministic.
    let again = bt.run(&mut Script::new(vec![2, 2, 1, 0, 0])).unwrap();
    assert_eq!(again, r);
}

#[test]
fn a_masked_action_is_a_typed_error() {
    // Positions are capped at 50% of NAV, so long and short (100%) are masked: only flat.
    let limits = RiskLimits {
        max_abs_weight: Some(0.5),
        ..RiskLimits::default()
    };
    let bt = Backtester::new(tiny_market(), tiny_spec(limits)).unwrap();
    let e = bt.run(&mut Script::new(vec![1, 2, 1, 1, 1])).unwrap_err();
    assert_eq!(
        e,
        EvalError::MaskedAction {
            policy: "script".into(),
            row: 1,
            date: None,
            action: 2,
            allowed: vec![1],
        }
    );
    assert!(
        e.to_string().contains("masked action 2 at market row 1"),
        "{e}"
    );
    // With dates, the error names the date too.
    let dates = (0..6)
        .map(|d| quantrl_data::Date::from_ymd(2024, 3, 4 + d).unwrap())
        .collect();
    let e = bt
        .clone()
        .with_dates(dates)
        .unwrap()
        .run(&mut Script::new(vec![2]))
        .unwrap_err();
    assert!(e.to_string().contains("(2024-03-04)"), "{e}");
}

#[test]
fn out_of_space_and_wrong_kind_actions_are_typed_errors() {
    let bt = Backtester::new(tiny_market(), tiny_spec(RiskLimits::default())).unwrap();
    let e = bt.run(&mut Script::new(vec![7])).unwrap_err();
    assert!(
        matches!(&e, EvalError::InvalidAction { row: 0, action, .. } if action == "7"),
        "{e}"
    );

    /// Writes continuous actions whatever the space.
    struct Continuous(f32);
    impl BacktestPolicy for Continuous {
        fn reset(&mut self, _: usize) {}
        fn act(
            &mut self,
            _: &[f32],
            _: Option<&[bool]>,
            _: &[bool],
            out: &mut PolicyActions,
        ) -> Result<(), EvalError> {
            *out = PolicyActions::Continuous(vec![self.0]);
            Ok(())
        }
    }
    let e = bt.run(&mut Continuous(1.0)).unwrap_err();
    assert!(matches!(e, EvalError::ActionShape { row: 0, .. }), "{e}");
    assert!(e.to_string().contains("expected 1 discrete actions"), "{e}");

    // On a continuous environment: NaN is refused, values outside the box are clipped.
    let EnvSpec::SingleAsset(mut config) = tiny_spec(RiskLimits::default()) else {
        unreachable!()
    };
    config.actions = PositionActions::Continuous {
        min_weight: -1.0,
        max_weight: 1.0,
    };
    let cont = Backtester::new(tiny_market(), EnvSpec::SingleAsset(config)).unwrap();
    let e = cont.run(&mut Continuous(f32::NAN)).unwrap_err();
    assert!(matches!(e, EvalError::InvalidAction { .. }), "{e}");
    let r = cont.run(&mut Continuous(5.0)).unwrap();
    close_eq(r.trades[0].notional, 1000.0, "clipped to a weight of 1");
    // A discrete policy on a continuous space says so.
    let e = cont.run(&mut Script::new(vec![1])).unwrap_err();
    assert!(matches!(e, EvalError::UnsupportedSpace { .. }), "{e}");
}

#[test]
fn bad_dates_and_spans_are_typed_errors() {
    let bt = Backtester::new(tiny_market(), tiny_spec(RiskLimits::default())).unwrap();
    let d = |k: u32| quantrl_data::Date::from_ymd(2024, 1, k).unwrap();
    let e = bt.clone().with_dates(vec![d(1), d(2)]).unwrap_err();
    assert!(e.to_string().contains("2 dates for 6 market rows"), "{e}");
    let e = bt
        .clone()
        .with_dates(vec![d(1), d(2), d(3), d(3), d(4), d(5)])
        .unwrap_err();
    assert!(e.to_string().contains("row 3 (2024-01-03)"), "{e}");
    assert!(matches!(bt.with_span(4..9), Err(EvalError::Env(_))));
    assert!(matches!(bt.with_span(3..4), Err(EvalError::Env(_))));
    let sub = bt.with_span(2..5).unwrap();
    assert_eq!((sub.first_row(), sub.last_row()), (2, 4));
}

/// Long when the last log return was positive, short otherwise: a policy that reads the
/// observation.
struct Momentum;

impl BacktestPolicy for Momentum {
    fn reset(&mut self, _: usize) {}
    fn act(
        &mut self,
        obs: &[f32],
        _: Option<&[bool]>,
        _: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        let a = out.discrete_mut().unwrap();
        a[0] = if obs[0] > 0.0 { 2 } else { 0 };
        Ok(())
    }
}

/// A market whose feature is the last log return (causal).
fn momentum_market(close: Vec<f64>) -> Arc<Market> {
    let mut f = vec![0f32; close.len()];
    for t in 1..close.len() {
        f[t] = (close[t] / close[t - 1]).ln() as f32;
    }
    let volume: Vec<f64> = (0..close.len()).map(|t| 1e4 + t as f64).collect();
    Arc::new(
        Market::from_close(1, close)
            .unwrap()
            .with_volume(volume)
            .unwrap()
            .with_features(vec!["r".into()], f, 1)
            .unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Perturbing prices after bar `t` leaves every point and trade up to `t` unchanged
    /// (default costs: impact from the rolling volatility and volume, slippage draws).
    #[test]
    fn no_look_ahead(
        t in 3usize..58,
        shocks in prop::collection::vec(0.5f64..1.5, 60),
        seed in 0u64..4,
    ) {
        let close: Vec<f64> = (0..60).map(|k| 100.0 * (1.0 + 0.05 * ((k * 7 % 11) as f64 - 5.0) / 5.0)).collect();
        let mut perturbed = close.clone();
        for k in t + 1..60 {
            perturbed[k] *= shocks[k];
        }
        let spec = EnvSpec::SingleAsset(SingleAssetConfig {
            trading: TradingConfig {
                window: 2,
                costs: CostModel { slippage_bps_std: 3.0, ..CostModel::default() },
                ..TradingConfig::default()
            },
            ..SingleAssetConfig::default()
        });
        let run = |c: Vec<f64>| {
            Backtester::new(momentum_market(c), spec.clone())
                .unwrap()
                .with_seed(seed)
                .run(&mut Momentum)
                .unwrap()
        };
        let (a, b) = (run(close), run(perturbed));
        let upto = |r: &quantrl_eval::BacktestResult| {
            let points: Vec<_> = r.equity.iter().filter(|p| p.row <= t).cloned().collect();
            let trades: Vec<_> = r.trades.iter().filter(|x| x.row <= t).cloned().collect();
            (points, trades)
        };
        prop_assert_eq!(upto(&a), upto(&b));
        prop_assert!(a.equity.iter().any(|p| p.row == t));
    }
}

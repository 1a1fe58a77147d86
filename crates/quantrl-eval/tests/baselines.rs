//! Baselines: cash, buy-and-hold, equal weight on schedule, oracle, index.

use std::sync::Arc;

use quantrl_core::Rng;
use quantrl_data::Date;
use quantrl_data::synthetic::GbmConfig;
use quantrl_envs::trading::{
    CostModel, Market, PortfolioActions, PortfolioConfig, PositionActions, RiskLimits,
    SingleAssetConfig, TradingConfig, WeightMapping,
};
use quantrl_eval::baselines::{self, BuyAndHold, Cash, EqualWeight, Oracle};
use quantrl_eval::{Backtester, BaselineConfig, EnvSpec, EvalError, IndexSeries, standard_set};

fn rel_eq(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: {a} != {b}"
    );
}

/// `n` assets following seeded GBMs over `t` bars, row-major closes.
fn gbm_market(n: usize, t: usize, seed: u64) -> Arc<Market> {
    let mut close = vec![0.0; n * t];
    for a in 0..n {
        let path = GbmConfig {
            n_steps: t - 1,
            mu_per_year: 0.08,
            sigma_per_year: 0.25,
            initial_price: 50.0 + 10.0 * a as f64,
            ..GbmConfig::default()
        }
        .generate(seed * 100 + a as u64)
        .unwrap();
        for (r, p) in path.prices.iter().enumerate() {
            close[r * n + a] = *p;
        }
    }
    Arc::new(Market::from_close(n, close).unwrap())
}

fn trading(costs: CostModel) -> TradingConfig {
    TradingConfig {
        window: 3,
        initial_nav: 100_000.0,
        costs,
        span_start: Some(10),
        ..TradingConfig::default()
    }
}

fn single(market: Arc<Market>, costs: CostModel) -> Backtester {
    Backtester::new(
        market,
        EnvSpec::SingleAsset(SingleAssetConfig {
            trading: trading(costs),
            actions: PositionActions::default(),
        }),
    )
    .unwrap()
}

fn portfolio(market: Arc<Market>, actions: PortfolioActions, costs: CostModel) -> Backtester {
    Backtester::new(
        market,
        EnvSpec::Portfolio(PortfolioConfig {
            trading: trading(costs),
            actions,
        }),
    )
    .unwrap()
}

/// Fee and half-spread only: every order costs 3 bp of its notional.
fn linear_costs() -> CostModel {
    CostModel {
        fee_bps: 2.0,
        half_spread_bps: 1.0,
        ..CostModel::zero()
    }
}

#[test]
fn cash_nav_is_constant() {
    let bt = portfolio(
        gbm_market(3, 120, 1),
        PortfolioActions::default(),
        CostModel::default(),
    );
    let r = bt.run_allocations(&mut Cash::new(&bt)).unwrap();
    assert_eq!(r.label, "cash");
    assert_eq!(r.equity.len(), bt.n_steps() + 1);
    assert!(
        r.equity
            .iter()
            .all(|p| p.nav == 100_000.0 && p.cash == 100_000.0)
    );
    assert!(r.trades.is_empty());
    assert_eq!(r.metrics.cumulative_return, 0.0);
}

#[test]
fn buy_and_hold_follows_prices_after_the_entry_cost() {
    // Single asset: buy NAV0 / p1 shares at the close of the first execution bar, paying
    // 3 bp of NAV0 from cash; then NAV_k = NAV0 * close_k / p1 - 0.0003 * NAV0.
    let market = gbm_market(1, 150, 2);
    let bt = single(market.clone(), linear_costs());
    let r = bt
        .run_allocations(&mut BuyAndHold::new(&bt).unwrap())
        .unwrap();
    assert_eq!(r.trades.len(), 1, "one order, then hold");
    let first = bt.first_row() + 1;
    let p1 = market.close(first)[0];
    assert_eq!(r.trades[0].row, first);
    assert_eq!(r.trades[0].price, p1);
    for p in &r.equity[1..] {
        let want = 100_000.0 * market.close(p.row)[0] / p1 - 0.0003 * 100_000.0;
        rel_eq(p.nav, want, 1e-12, "single-asset NAV");
    }

    // Portfolio: 1/N of NAV0 in each asset, then the weights drift with prices.
    let n = 4;
    let market = gbm_market(n, 150, 3);
    let bt = portfolio(
        market.clone(),
        PortfolioActions::Regimes { allocations: None },
        linear_costs(),
    );
    let r = bt
        .run_allocations(&mut BuyAndHold::new(&bt).unwrap())
        .unwrap();
    assert_eq!(r.trades.len(), n);
    assert!(r.trades.iter().all(|t| t.row == first));
    let p1 = market.close(first);
    for p in &r.equity[1..] {
        let close = market.close(p.row);
        let held: f64 = (0..n).map(|a| 25_000.0 / p1[a] * close[a]).sum();
        rel_eq(p.nav, held - 0.0003 * 100_000.0, 1e-12, "portfolio NAV");
    }
    let last = r.equity.last().unwrap();
    assert!(
        last.weights.iter().any(|w| (w - 0.25).abs() > 0.01),
        "weights drift: {:?}",
        last.weights
    );
}

#[test]
fn equal_weight_rebalances_on_schedule() {
    let n = 3;
    let market = gbm_market(n, 200, 4);
    // The agent's own actions are softmax weights: baselines run on their allocations anyway.
    let bt = portfolio(market, PortfolioActions::default(), linear_costs());
    for every in [1, 5, 21] {
        let r = bt
            .run_allocations(&mut EqualWeight::new(&bt, every).unwrap())
            .unwrap();
        assert_eq!(r.label, format!("equal-weight/{every}"));
        let mut decision_rows: Vec<usize> = r.trades.iter().map(|t| t.decision_row).collect();
        decision_rows.dedup();
        let want: Vec<usize> = (bt.first_row()..bt.last_row())
            .filter(|row| (row - bt.first_row()).is_multiple_of(every))
            .collect();
        assert_eq!(decision_rows, want, "every {every}");
        // Right after each rebalance every weight is 1/3 of the NAV before costs.
        for p in r.equity.iter().filter(|p| p.traded_notional > 0.0) {
            for w in &p.weights {
                assert!((w - 1.0 / 3.0).abs() < 1e-3, "{w}");
            }
        }
    }
    assert!(matches!(
        EqualWeight::new(&bt, 0),
        Err(EvalError::Parameter(_))
    ));
}

#[test]
fn oracle_beats_every_other_baseline_on_a_synthetic_market() {
    // Single asset, short/flat/long levels, default costs (with impact).
    let bt = single(gbm_market(1, 300, 5), CostModel::default());
    let all = standard_set(&bt, &BaselineConfig::default()).unwrap();
    let labels: Vec<&str> = all.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        ["cash", "buy-and-hold", "equal-weight/21", "oracle"]
    );
    let oracle = all[3].final_nav();
    for r in &all[..3] {
        assert!(
            oracle > r.final_nav(),
            "{} {} >= oracle {oracle}",
            r.label,
            r.final_nav()
        );
    }
    assert!(
        all[3].metrics.sharpe_ratio > 5.0,
        "{}",
        all[3].metrics.sharpe_ratio
    );

    // Portfolio with continuous weights: the oracle fills the best assets up to the caps.
    let bt = portfolio(
        gbm_market(5, 250, 6),
        PortfolioActions::Weights {
            mapping: WeightMapping::SimplexProjection,
            leverage: 1.0,
            max_weight: 0.5,
        },
        CostModel::default(),
    );
    let all = standard_set(&bt, &BaselineConfig::default()).unwrap();
    let oracle = &all[3];
    for r in &all[..3] {
        assert!(oracle.final_nav() > r.final_nav(), "{}", r.label);
    }
    for p in &oracle.equity {
        assert!(
            p.weights.iter().all(|w| *w <= 0.5 + 1e-2),
            "{:?}",
            p.weights
        );
    }

    // Portfolio regimes: the oracle picks among the agent's regimes.
    let bt = portfolio(
        gbm_market(4, 250, 7),
        PortfolioActions::Regimes { allocations: None },
        CostModel::default(),
    );
    let all = standard_set(&bt, &BaselineConfig::default()).unwrap();
    for r in &all[..3] {
        assert!(all[3].final_nav() > r.final_nav(), "{}", r.label);
    }
}

#[test]
fn oracle_knows_the_next_move() {
    // Closes 100, 101, 99, 100, 103: with next-close execution the decision on row t holds
    // from close t+1 to close t+2: returns -1.98%, +1.01%, +3% for decisions 0, 1, 2, and
    // nothing for the last decision (the span ends at the execution bar).
    let market = Arc::new(Market::from_close(1, vec![100.0, 101.0, 99.0, 100.0, 103.0]).unwrap());
    let spec = EnvSpec::SingleAsset(SingleAssetConfig {
        trading: TradingConfig {
            window: 1,
            costs: CostModel::zero(),
            ..TradingConfig::default()
        },
        actions: PositionActions::default(),
    });
    let bt = Backtester::new(market, spec).unwrap();
    let r = bt.run_allocations(&mut Oracle::new(&bt).unwrap()).unwrap();
    let weights: Vec<f64> = r.equity.iter().map(|p| p.weights[0]).collect();
    // Short over 101 -> 99, long over 99 -> 103, and the long is kept (no cost, no move).
    assert_eq!(weights[1].signum(), -1.0);
    assert!(weights[2..].iter().all(|w| *w > 0.0), "{weights:?}");
    let nav = r.final_nav();
    let want = 1e6 * (1.0 + 2.0 / 101.0) * (103.0 / 99.0);
    rel_eq(nav, want, 1e-12, "oracle NAV");
}

#[test]
fn baselines_respect_masks_by_holding() {
    // Positions are capped at 50%: buy-and-hold's 100% is masked, so it stays in cash.
    let market = gbm_market(1, 60, 8);
    let spec = EnvSpec::SingleAsset(SingleAssetConfig {
        trading: TradingConfig {
            limits: RiskLimits {
                max_abs_weight: Some(0.5),
                ..RiskLimits::default()
            },
            ..trading(linear_costs())
        },
        actions: PositionActions::default(),
    });
    let bt = Backtester::new(market, spec).unwrap();
    let r = bt
        .run_allocations(&mut BuyAndHold::new(&bt).unwrap())
        .unwrap();
    assert!(r.trades.is_empty());
}

fn dates(n: usize) -> Vec<Date> {
    let start = Date::from_ymd(2021, 1, 4).unwrap().days_since_epoch();
    (0..n as i32)
        .map(|k| Date::from_days_since_epoch(start + k + 2 * (k / 5)))
        .collect()
}

#[test]
fn index_follows_its_series_after_a_one_time_entry() {
    let market = gbm_market(2, 80, 9);
    let d = dates(80);
    let bt = portfolio(market, PortfolioActions::default(), linear_costs())
        .with_dates(d.clone())
        .unwrap();
    let mut rng = Rng::seed_from_u64(3);
    let mut level = 3000.0;
    let levels: Vec<f64> = (0..80)
        .map(|_| {
            level *= 1.0 + 0.01 * rng.normal();
            level
        })
        .collect();
    let series = IndexSeries::new("test index", "IDX", d.clone(), levels.clone()).unwrap();
    let config = BaselineConfig {
        index: Some(series.clone()),
        ..BaselineConfig::default()
    };
    let all = standard_set(&bt, &config).unwrap();
    let idx = all.last().unwrap();
    assert_eq!(idx.label, "test index");
    assert_eq!(idx.env, "index");
    assert_eq!(
        idx.rows(),
        all[0].rows(),
        "the same bars as every other row"
    );
    let first = bt.first_row() + 1;
    for p in &idx.equity[1..] {
        let want = 100_000.0 * (1.0 - 0.0003) * levels[p.row] / levels[first];
        rel_eq(p.nav, want, 1e-12, "index NAV");
    }
    assert_eq!(idx.trades.len(), 1);
    rel_eq(
        idx.total_costs().total(),
        30.0,
        1e-12,
        "3 bp of 100 000 once",
    );

    // A date the index lacks, or a backtest without dates, is a typed error.
    let short = IndexSeries::new("short", "IDX", d[..40].to_vec(), levels[..40].to_vec()).unwrap();
    let e = baselines::index(&all[0], &short, &linear_costs()).unwrap_err();
    assert!(e.to_string().contains("no level on"), "{e}");
    let undated = portfolio(
        gbm_market(2, 80, 9),
        PortfolioActions::default(),
        linear_costs(),
    );
    let cash = undated.run_allocations(&mut Cash::new(&undated)).unwrap();
    let e = baselines::index(&cash, &series, &linear_costs()).unwrap_err();
    assert!(matches!(e, EvalError::Dates { .. }), "{e}");
    assert!(IndexSeries::new("bad", "IDX", d[..2].to_vec(), vec![1.0, -1.0]).is_err());
}

#[test]
fn the_embedded_sp500_index_loads() {
    let sp = IndexSeries::sp500().unwrap();
    assert_eq!(sp.ticker, "SP500");
    assert_eq!(sp.dates.len(), 8313);
    assert!(sp.level_on(Date::from_ymd(2020, 3, 23).unwrap()).unwrap() < 2300.0);
}

#[test]
fn baselines_refuse_an_environment_that_is_not_theirs() {
    // Run directly on a short/flat/long environment, cash would read action 0 as "short":
    // the mask length gives it away and the error says what to do.
    let bt = single(gbm_market(1, 60, 10), linear_costs());
    let e = bt.run(&mut Cash::new(&bt)).unwrap_err();
    assert!(matches!(e, EvalError::UnsupportedSpace { .. }), "{e}");
    assert!(e.to_string().contains("run_allocations"), "{e}");
    // On continuous weights, likewise.
    let bt = portfolio(
        gbm_market(2, 60, 10),
        PortfolioActions::default(),
        linear_costs(),
    );
    let e = bt.run(&mut EqualWeight::new(&bt, 5).unwrap()).unwrap_err();
    assert!(matches!(e, EvalError::UnsupportedSpace { .. }), "{e}");
}

#[test]
fn custom_allocation_policies_must_start_in_cash() {
    use quantrl_eval::{AllocationPolicy, BacktestPolicy, PolicyActions};
    struct AlwaysLong(Vec<Vec<f64>>);
    impl BacktestPolicy for AlwaysLong {
        fn reset(&mut self, _: usize) {}
        fn act(
            &mut self,
            _: &[f32],
            _: Option<&[bool]>,
            _: &[bool],
            out: &mut PolicyActions,
        ) -> Result<(), EvalError> {
            out.discrete_mut().unwrap()[0] = self.0.len() as u32 - 1;
            Ok(())
        }
    }
    impl AllocationPolicy for AlwaysLong {
        fn allocations(&self) -> &[Vec<f64>] {
            &self.0
        }
        fn description(&self) -> String {
            "always long".into()
        }
    }
    let bt = single(gbm_market(1, 60, 11), linear_costs());
    let e = bt
        .run_allocations(&mut AlwaysLong(vec![vec![1.0]]))
        .unwrap_err();
    assert!(e.to_string().contains("must be all cash"), "{e}");
    let r = bt
        .run_allocations(&mut AlwaysLong(vec![vec![0.0], vec![1.0]]))
        .unwrap();
    assert_eq!((r.trades.len(), r.description.as_str()), (1, "always long"));
}

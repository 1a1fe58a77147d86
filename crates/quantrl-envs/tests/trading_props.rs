//! Accounting invariants of the trading environments, over random prices and actions.

use std::sync::Arc;

use proptest::prelude::*;
use quantrl_core::{Actions, StepBatch, VecEnv};
use quantrl_envs::trading::{
    CostModel, ExecutionPrice, Market, PortfolioActions, PortfolioConfig, PortfolioEnv,
    TradingConfig, WeightMapping,
};

/// Prices of `n` assets from log returns, plus open prices and volumes.
fn market(n: usize, rets: &[f64], vol_seed: u64) -> Market {
    let t = rets.len() / n;
    let mut close = vec![0.0; t * n];
    let mut open = vec![0.0; t * n];
    let mut volume = vec![0.0; t * n];
    let mut rng = quantrl_core::Rng::seed_from_u64(vol_seed);
    for a in 0..n {
        let mut p = 20.0 + a as f64;
        for r in 0..t {
            open[r * n + a] = p * (1.0 + 0.3 * rets[r * n + a]);
            p *= rets[r * n + a].exp();
            close[r * n + a] = p;
            volume[r * n + a] = 1e4 * (0.5 + rng.uniform());
        }
    }
    let f = n;
    let mut feats = vec![0f32; t * f];
    for r in 1..t {
        for a in 0..n {
            feats[r * f + a] = (close[r * n + a] / close[(r - 1) * n + a]).ln() as f32;
        }
    }
    Market::from_close(n, close)
        .unwrap()
        .with_open(open)
        .unwrap()
        .with_volume(volume)
        .unwrap()
        .with_features((0..f).map(|k| format!("r{k}")).collect(), feats, 1)
        .unwrap()
}

fn env(m: Market, costs: CostModel, mapping: WeightMapping, lev: f64) -> PortfolioEnv {
    PortfolioEnv::new(
        Arc::new(m),
        PortfolioConfig {
            trading: TradingConfig {
                num_envs: 2,
                window: 3,
                costs,
                execution: ExecutionPrice::NextOpen,
                episode_len: Some(25),
                ruin_nav_fraction: 0.01,
                ..Default::default()
            },
            actions: PortfolioActions::Weights {
                mapping,
                leverage: lev,
                max_weight: 0.9,
            },
        },
    )
    .unwrap()
}

fn costly() -> CostModel {
    CostModel {
        fee_bps: 3.0,
        half_spread_bps: 2.0,
        impact_coef: 0.3,
        impact_fallback_bps: 1.0,
        borrow_bps_per_year: 100.0,
        financing_bps_per_year: 300.0,
        slippage_bps_std: 5.0,
        periods_per_year: 252.0,
    }
}

fn n_rets() -> impl Strategy<Value = (usize, Vec<f64>, Vec<f32>)> {
    (1usize..4).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(-0.08f64..0.08, n * 60),
            prop::collection::vec(-5.0f32..5.0, 80 * (n + 1) * 2),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// NAV is cash plus positions at the close, costs are never negative, and the summed
    /// log-return rewards of every finished episode equal ln(final NAV / initial NAV).
    #[test]
    fn nav_costs_and_rewards_add_up((n, rets, acts) in n_rets(), lev in 0.5f64..2.0, proj in any::<bool>()) {
        let m = market(n, &rets, 1);
        let closes = m.close_all().to_vec();
        let mapping = if proj { WeightMapping::SimplexProjection } else { WeightMapping::Softmax };
        let mut e = env(m, costly(), mapping, lev);
        let nav0 = e.config().initial_nav;
        let mut b = StepBatch::for_env(&e);
        e.reset(Some(3), &mut b);
        let d = n + 1;
        let mut sum = [0.0f64; 2];
        let mut episodes = 0;
        for s in 0..80 {
            let a = &acts[s * 2 * d..(s + 1) * 2 * d];
            e.step(Actions::Continuous(a), &mut b).unwrap();
            for i in 0..2 {
                let info = e.info(i);
                let c = info.costs;
                for v in [c.fee, c.spread, c.impact, c.slippage, c.borrow, c.financing] {
                    prop_assert!(v >= 0.0 && v.is_finite());
                }
                sum[i] += info.reward;
                if b.done(i) {
                    prop_assert!((sum[i] - (info.nav / nav0).ln()).abs() < 1e-9, "{} vs {}", sum[i], (info.nav / nav0).ln());
                    sum[i] = 0.0;
                    episodes += 1;
                } else {
                    let close = &closes[info.t * n..(info.t + 1) * n];
                    let book: f64 = e.positions(i).iter().zip(close).map(|(q, p)| q * p).sum();
                    prop_assert!((e.cash(i) + book - info.nav).abs() <= 1e-9 * nav0);
                    prop_assert_eq!(info.nav, e.nav(i));
                }
            }
        }
        prop_assert!(episodes > 0);
    }

    /// With zero costs and no trades after the first, NAV follows the prices exactly.
    #[test]
    fn frictionless_buy_and_hold_follows_prices((n, rets, _a) in n_rets()) {
        let m = market(n, &rets, 2);
        let closes = m.close_all().to_vec();
        let opens: Vec<f64> = (0..m.n_steps()).flat_map(|t| m.open(t).to_vec()).collect();
        let mut e = PortfolioEnv::new(
            Arc::new(m),
            PortfolioConfig {
                trading: TradingConfig {
                    num_envs: 1,
                    window: 1,
                    costs: CostModel::zero(),
                    execution: ExecutionPrice::NextOpen,
                    episode_len: None,
                    random_start: false,
                    ..Default::default()
                },
                actions: PortfolioActions::Regimes { allocations: Some(vec![vec![0.0; n], vec![1.0 / n as f64; n]]) },
            },
        )
        .unwrap();
        let mut b = StepBatch::for_env(&e);
        e.reset(None, &mut b);
        let nav0 = e.config().initial_nav;
        // Bought at the open of the row after the first observed one.
        let exec = (e.row(0) + 1) * n;
        e.step(Actions::Discrete(&[1]), &mut b).unwrap();
        let shares: Vec<f64> = (0..n).map(|a| nav0 / n as f64 / opens[exec + a]).collect();
        for _ in 0..50 {
            if b.done(0) { break; }
            let t = e.info(0).t;
            let expect: f64 = (0..n).map(|a| shares[a] * closes[t * n + a]).sum();
            prop_assert!((e.info(0).nav - expect).abs() <= 1e-9 * nav0);
            e.step(Actions::Discrete(&[1]), &mut b).unwrap();
            prop_assert_eq!(e.info(0).traded_notional, 0.0);
        }
        // Never trading keeps the initial NAV.
        let mut b2 = StepBatch::for_env(&e);
        e.reset(None, &mut b2);
        for _ in 0..20 {
            e.step(Actions::Discrete(&[0]), &mut b2).unwrap();
            prop_assert_eq!(e.info(0).nav, nav0);
        }
    }

    /// Changing prices (and features, volume) after row `t` leaves every observation up to
    /// `t` unchanged, whatever the actions.
    #[test]
    fn observations_do_not_see_the_future((n, rets, acts) in n_rets(), cut in 10usize..40, bump in -0.05f64..0.05) {
        let m1 = market(n, &rets, 3);
        let mut rets2 = rets.clone();
        for r in rets2[(cut + 1) * n..].iter_mut() {
            *r += bump;
        }
        let m2 = market(n, &rets2, 3);
        let mk = |m: Market| PortfolioEnv::new(
            Arc::new(m),
            PortfolioConfig {
                trading: TradingConfig {
                    num_envs: 2,
                    window: 3,
                    costs: costly(),
                    execution: ExecutionPrice::NextOpen,
                    episode_len: None,
                    random_start: false,
                    ..Default::default()
                },
                actions: PortfolioActions::Weights { mapping: WeightMapping::Softmax, leverage: 1.0, max_weight: 0.9 },
            },
        ).unwrap();
        let (mut e1, mut e2) = (mk(m1), mk(m2));
        let (mut b1, mut b2) = (StepBatch::for_env(&e1), StepBatch::for_env(&e2));
        e1.reset(Some(5), &mut b1);
        e2.reset(Some(5), &mut b2);
        let d = n + 1;
        loop {
            prop_assert_eq!(e1.row(0), e2.row(0));
            if e1.row(0) > cut { break; }
            prop_assert_eq!(&b1.obs, &b2.obs, "row {}", e1.row(0));
            let s = e1.row(0);
            let a = &acts[s * 2 * d..(s + 1) * 2 * d];
            e1.step(Actions::Continuous(a), &mut b1).unwrap();
            e2.step(Actions::Continuous(a), &mut b2).unwrap();
        }
    }
}

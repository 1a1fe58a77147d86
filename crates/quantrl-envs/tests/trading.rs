//! Trading environments: hand-computed accounting, conformance, masks, adversary, resume.

use std::sync::Arc;

use quantrl_core::{Actions, EnvError, StepBatch, VecEnv};
use quantrl_envs::check_vec_env;
use quantrl_envs::trading::{
    AdversaryControls, CostModel, ExecutionPrice, Market, PortfolioActions, PortfolioConfig,
    PortfolioEnv, PositionActions, RewardConfig, RewardKind, RiskLimits, SingleAssetConfig,
    SingleAssetEnv, TradingConfig, WeightMapping,
};

fn close_eq(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{what}: {a} != {b} (diff {})",
        a - b
    );
}

/// A synthetic panel with features, open and volume: `n` assets, `t` bars.
fn panel(n: usize, t: usize, seed: u64) -> Market {
    let mut rng = quantrl_core::Rng::seed_from_u64(seed);
    let mut close = vec![0.0; n * t];
    let mut open = vec![0.0; n * t];
    let mut volume = vec![0.0; n * t];
    for a in 0..n {
        let mut p = 50.0 + 10.0 * a as f64;
        for r in 0..t {
            open[r * n + a] = p * (1.0 + 0.002 * rng.normal());
            p *= (0.0003 + 0.015 * rng.normal()).exp();
            close[r * n + a] = p;
            volume[r * n + a] = 1e5 * (1.0 + rng.uniform());
        }
    }
    // Two features per asset: last log return and the close relative to its first value.
    let f = 2 * n;
    let mut feats = vec![0f32; t * f];
    for r in 1..t {
        for a in 0..n {
            feats[r * f + 2 * a] = (close[r * n + a] / close[(r - 1) * n + a]).ln() as f32;
            feats[r * f + 2 * a + 1] = (close[r * n + a] / close[a]) as f32;
        }
    }
    let names = (0..f).map(|k| format!("f{k}")).collect();
    Market::from_close(n, close)
        .unwrap()
        .with_open(open)
        .unwrap()
        .with_volume(volume)
        .unwrap()
        .with_features(names, feats, 1)
        .unwrap()
}

/// Every step of a fixed action sequence on a five-bar series, worked out by hand.
#[test]
fn hand_computed_single_asset_episode() {
    // Closes 100, 110, 99, 99, 120. Fee 10 bp; no spread; no volume and a zero fallback rate,
    // so no impact; borrow 2520 bp a year over 252 bars = 10 bp of short notional per bar.
    let market = Arc::new(Market::from_close(1, vec![100.0, 110.0, 99.0, 99.0, 120.0]).unwrap());
    let costs = CostModel {
        fee_bps: 10.0,
        half_spread_bps: 0.0,
        impact_coef: 0.5,
        impact_fallback_bps: 0.0,
        borrow_bps_per_year: 2520.0,
        financing_bps_per_year: 0.0,
        slippage_bps_std: 0.0,
        periods_per_year: 252.0,
    };
    let config = SingleAssetConfig {
        trading: TradingConfig {
            num_envs: 1,
            window: 1,
            initial_nav: 1000.0,
            costs,
            episode_len: None,
            random_start: false,
            ..Default::default()
        },
        actions: PositionActions::Levels {
            levels: vec![-1.0, 0.0, 1.0],
        },
    };
    let mut env = SingleAssetEnv::new(market, config).unwrap();
    let mut b = StepBatch::for_env(&env);
    env.reset(Some(0), &mut b);
    // Observation: no features; weight 0, cash/NAV 1, ln(NAV/NAV0) 0, drawdown 0.
    assert_eq!(b.obs, vec![0.0, 1.0, 0.0, 0.0]);
    // Flat is held, so every level is allowed.
    assert_eq!(b.action_masks.as_deref(), Some(&[true, true, true][..]));

    // Step 1, long: buy 1000/110 shares at the next close 110 (notional 1000), fee 1.
    // cash = 1000 - 1000 - 1 = -1; NAV = -1 + (1000/110) * 110 = 999.
    env.step(Actions::Discrete(&[2]), &mut b).unwrap();
    let i = env.info(0);
    close_eq(i.costs.fee, 1.0, "fee 1");
    close_eq(i.traded_notional, 1000.0, "notional 1");
    close_eq(i.cash, -1.0, "cash 1");
    close_eq(i.nav, 999.0, "nav 1");
    close_eq(i.reward, (999.0f64 / 1000.0).ln(), "reward 1");
    close_eq(env.positions(0)[0], 100.0 / 11.0, "shares 1");
    // Observation: weight 1000/999, cash/NAV -1/999, ln(0.999), drawdown 0.001.
    let expect = [1000.0 / 999.0, -1.0 / 999.0, (0.999f64).ln(), 0.001];
    for (o, e) in b.obs.iter().zip(expect) {
        assert!(
            (*o as f64 - e).abs() < 1e-6,
            "obs {:?} vs {expect:?}",
            b.obs
        );
    }

    // Step 2, long again: the level is held, nothing trades. NAV = -1 + (100/11) * 99 = 899.
    env.step(Actions::Discrete(&[2]), &mut b).unwrap();
    let i = env.info(0);
    assert_eq!(i.traded_notional, 0.0);
    assert_eq!(i.costs.total(), 0.0);
    close_eq(i.nav, 899.0, "nav 2");
    close_eq(i.reward, (899.0f64 / 999.0).ln(), "reward 2");

    // Step 3, short at 99: target -899/99 shares, trade -1799/99 shares = 1799 notional,
    // fee 1.799; borrow 10 bp of the 899 short = 0.899.
    // cash = -1 + 1799 - 1.799 - 0.899 = 1795.302; NAV = 1795.302 - 899 = 896.302.
    env.step(Actions::Discrete(&[0]), &mut b).unwrap();
    let i = env.info(0);
    close_eq(i.traded_notional, 1799.0, "notional 3");
    close_eq(i.costs.fee, 1.799, "fee 3");
    close_eq(i.costs.borrow, 0.899, "borrow 3");
    close_eq(i.cash, 1795.302, "cash 3");
    close_eq(i.nav, 896.302, "nav 3");
    close_eq(i.reward, (896.302f64 / 899.0).ln(), "reward 3");
    close_eq(i.turnover, 1799.0 / 899.0, "turnover 3");

    // Step 4, flat at 120: buy back 899/99 shares, notional 107880/99 = 1089.6969..., fee
    // 0.10896969...; no short left, no borrow. cash = NAV = 1795.302 - 1089.69697 - 1.08970.
    env.step(Actions::Discrete(&[1]), &mut b).unwrap();
    let i = env.info(0);
    let notional = 899.0 / 99.0 * 120.0;
    close_eq(i.traded_notional, notional, "notional 4");
    close_eq(i.costs.fee, notional * 1e-3, "fee 4");
    assert_eq!(i.costs.borrow, 0.0);
    let nav4 = 1795.302 - notional - notional * 1e-3;
    close_eq(i.nav, nav4, "nav 4");
    close_eq(i.reward, (nav4 / 896.302).ln(), "reward 4");
    // The last bar of the data truncates the episode (bootstrap, not a terminal state).
    assert!(b.truncated[0] && !b.terminated[0]);
    // Summed rewards are the log of final over initial NAV.
    let total = (999.0f64 / 1000.0).ln()
        + (899.0f64 / 999.0).ln()
        + (896.302f64 / 899.0).ln()
        + (nav4 / 896.302).ln();
    close_eq(total, (nav4 / 1000.0).ln(), "total");
    // The final observation shows the flat book; the new episode starts flat at row 0.
    assert_eq!(b.final_obs_of(0)[0], 0.0);
    assert_eq!(env.row(0), 0);
    assert_eq!(env.nav(0), 1000.0);
}

#[test]
fn next_open_execution_trades_at_the_next_open() {
    // Decide at close 100; execute at the next open 105; mark at the next close 110.
    let market = Market::from_close(1, vec![100.0, 110.0, 120.0])
        .unwrap()
        .with_open(vec![100.0, 105.0, 115.0])
        .unwrap();
    let config = SingleAssetConfig {
        trading: TradingConfig {
            num_envs: 1,
            window: 1,
            initial_nav: 1050.0,
            costs: CostModel::zero(),
            execution: ExecutionPrice::NextOpen,
            episode_len: None,
            random_start: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut env = SingleAssetEnv::new(Arc::new(market), config).unwrap();
    let mut b = StepBatch::for_env(&env);
    env.reset(None, &mut b);
    env.step(Actions::Discrete(&[2]), &mut b).unwrap();
    // 1050 / 105 = 10 shares, marked at 110.
    close_eq(env.positions(0)[0], 10.0, "shares");
    close_eq(env.info(0).nav, 1100.0, "nav");
}

fn single(market: Arc<Market>, actions: PositionActions, trading: TradingConfig) -> SingleAssetEnv {
    SingleAssetEnv::new(market, SingleAssetConfig { trading, actions }).unwrap()
}

fn busy_config() -> TradingConfig {
    TradingConfig {
        num_envs: 4,
        window: 5,
        episode_len: Some(60),
        costs: CostModel {
            slippage_bps_std: 2.0,
            ..CostModel::default()
        },
        limits: RiskLimits {
            max_turnover: Some(1.5),
            max_drawdown: Some(0.05),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn every_trading_env_passes_the_conformance_checker() {
    let one = Arc::new(panel(1, 400, 1));
    let many = Arc::new(panel(20, 400, 2));
    let levels = PositionActions::Levels {
        levels: vec![-1.0, -0.5, 0.0, 0.5, 1.0],
    };
    let cont = PositionActions::Continuous {
        min_weight: -1.0,
        max_weight: 2.0,
    };
    for actions in [levels, cont] {
        let r = check_vec_env(
            || single(one.clone(), actions.clone(), busy_config()),
            500,
            3,
        )
        .unwrap();
        assert!(r.truncations > 0);
    }
    for actions in [
        PortfolioActions::Weights {
            mapping: WeightMapping::Softmax,
            leverage: 1.5,
            max_weight: 0.2,
        },
        PortfolioActions::Weights {
            mapping: WeightMapping::SimplexProjection,
            leverage: 1.0,
            max_weight: 0.5,
        },
        PortfolioActions::Regimes { allocations: None },
    ] {
        let make = || {
            PortfolioEnv::new(
                many.clone(),
                PortfolioConfig {
                    trading: busy_config(),
                    actions: actions.clone(),
                },
            )
            .unwrap()
        };
        let r = check_vec_env(make, 300, 4).unwrap();
        assert!(r.truncations > 0);
    }
}

#[test]
fn ruin_terminates() {
    // A 3x levered long into a 40% crash loses everything.
    let market = Arc::new(Market::from_close(1, vec![100.0, 100.0, 60.0, 60.0, 60.0]).unwrap());
    let trading = TradingConfig {
        num_envs: 1,
        window: 1,
        costs: CostModel::zero(),
        episode_len: None,
        random_start: false,
        ..Default::default()
    };
    let mut env = single(
        market,
        PositionActions::Levels {
            levels: vec![0.0, 3.0],
        },
        trading,
    );
    let mut b = StepBatch::for_env(&env);
    env.reset(None, &mut b);
    env.step(Actions::Discrete(&[1]), &mut b).unwrap();
    assert!(!b.done(0));
    env.step(Actions::Discrete(&[1]), &mut b).unwrap();
    assert!(b.terminated[0] && !b.truncated[0]);
    assert!(b.rewards[0].is_finite());
    // NAV = 1e6 * (1 - 3 * 0.4) < 0: reported as is; the reward uses a tiny floor.
    assert!(env.info(0).nav < 0.0);
}

fn levels_env(limits: RiskLimits, tradable: Option<Vec<bool>>) -> SingleAssetEnv {
    let close: Vec<f64> = (0..40)
        .map(|t| 100.0 - if t > 5 { 2.0 * (t - 5) as f64 } else { 0.0 })
        .collect();
    let mut m = Market::from_close(1, close).unwrap();
    if let Some(tr) = tradable {
        m = m.with_tradable(tr).unwrap();
    }
    single(
        Arc::new(m),
        PositionActions::Levels {
            levels: vec![-1.0, 0.0, 0.5, 1.0],
        },
        TradingConfig {
            num_envs: 1,
            window: 1,
            costs: CostModel::zero(),
            episode_len: None,
            random_start: false,
            limits,
            ..Default::default()
        },
    )
}

#[test]
fn masks_enforce_turnover_limits_and_refuse_masked_actions() {
    let mut env = levels_env(
        RiskLimits {
            max_turnover: Some(0.6),
            max_abs_weight: Some(1.0),
            ..Default::default()
        },
        None,
    );
    let mut b = StepBatch::for_env(&env);
    env.reset(None, &mut b);
    // Flat: only moves of at most 0.6 (to 0.5) besides holding flat.
    assert_eq!(
        b.action_masks.as_deref(),
        Some(&[false, true, true, false][..])
    );
    let e = env.step(Actions::Discrete(&[3]), &mut b).unwrap_err();
    assert!(matches!(e, EnvError::InvalidAction { .. }), "{e}");
    assert!(e.to_string().contains("masked"), "{e}");
    // A refused step changes nothing.
    assert_eq!(env.row(0), 0);
    env.step(Actions::Discrete(&[2]), &mut b).unwrap();
    // At 0.5: 0.0 and 1.0 are within 0.6 of the current weight, -1 is not.
    assert_eq!(
        b.action_masks.as_deref(),
        Some(&[false, true, true, true][..])
    );
}

#[test]
fn risk_budget_allows_only_reducing_exposure_in_drawdown() {
    let mut env = levels_env(
        RiskLimits {
            max_drawdown: Some(0.05),
            ..Default::default()
        },
        None,
    );
    let mut b = StepBatch::for_env(&env);
    env.reset(None, &mut b);
    env.step(Actions::Discrete(&[2]), &mut b).unwrap(); // half long
    let mut steps = 0;
    while env.info(0).drawdown <= 0.05 {
        env.step(Actions::Discrete(&[2]), &mut b).unwrap();
        steps += 1;
        assert!(steps < 30, "the falling market must draw down");
    }
    // Holding 0.5 long in a drawdown over the budget: flat (0) and holding are allowed, the
    // larger long and the short (gross 1) are not.
    let m = b.action_masks.clone().unwrap();
    assert_eq!(m, vec![false, true, true, false]);
}

#[test]
fn no_trade_windows_allow_only_holding() {
    let mut tradable = vec![true; 40];
    tradable[2] = false;
    let mut env = levels_env(RiskLimits::default(), Some(tradable));
    let mut b = StepBatch::for_env(&env);
    env.reset(None, &mut b);
    env.step(Actions::Discrete(&[3]), &mut b).unwrap(); // long on bar 1
    // The next order would execute on bar 2, which does not trade.
    assert_eq!(
        b.action_masks.as_deref(),
        Some(&[false, false, false, true][..])
    );
    env.step(Actions::Discrete(&[3]), &mut b).unwrap();
    assert_eq!(env.info(0).traded_notional, 0.0);
    assert_eq!(
        b.action_masks.as_deref(),
        Some(&[true, true, true, true][..])
    );
}

#[test]
fn adversary_multipliers_raise_costs_and_volatility() {
    let market = Arc::new(panel(1, 200, 5));
    let trading = TradingConfig {
        num_envs: 2,
        window: 3,
        random_start: false,
        episode_len: None,
        ..Default::default()
    };
    let mut env = single(market, PositionActions::default(), trading);
    let hard = AdversaryControls {
        spread: 3.0,
        impact: 2.0,
        volatility: 1.0,
    };
    env.set_adversary(1, hard).unwrap();
    assert!(
        env.set_adversary(
            0,
            AdversaryControls {
                spread: -1.0,
                ..Default::default()
            }
        )
        .is_err()
    );
    let mut b = StepBatch::for_env(&env);
    env.reset(Some(1), &mut b);
    env.step(Actions::Discrete(&[2, 2]), &mut b).unwrap();
    let (easy, harsh) = (env.info(0).costs, env.info(1).costs);
    close_eq(harsh.spread, 3.0 * easy.spread, "spread x3");
    close_eq(harsh.impact, 2.0 * easy.impact, "impact x2");
    // With volatility doubled the held position's log returns double.
    env.set_adversary(
        1,
        AdversaryControls {
            volatility: 2.0,
            ..hard
        },
    )
    .unwrap();
    let mut sum_sq = [0.0f64; 2];
    for _ in 0..50 {
        env.step(Actions::Discrete(&[2, 2]), &mut b).unwrap();
        for (k, s) in sum_sq.iter_mut().enumerate() {
            *s += (b.rewards[k] as f64).powi(2);
        }
    }
    assert!(sum_sq[1] > 3.0 * sum_sq[0], "{sum_sq:?}");
}

#[test]
fn saved_state_resumes_the_same_trajectory() {
    let market = Arc::new(panel(3, 300, 7));
    let config = PortfolioConfig {
        trading: busy_config(),
        actions: PortfolioActions::Regimes { allocations: None },
    };
    let mut a = PortfolioEnv::new(market.clone(), config.clone()).unwrap();
    let mut ba = StepBatch::for_env(&a);
    a.reset(Some(9), &mut ba);
    let act = |s: usize, m: &[bool]| -> Vec<u32> {
        (0..4)
            .map(|i| {
                let row = &m[i * 16..(i + 1) * 16];
                let want = (s * 7 + i * 3) % 16;
                (0..16).map(|k| (want + k) % 16).find(|&k| row[k]).unwrap() as u32
            })
            .collect()
    };
    for s in 0..37 {
        let acts = act(s, ba.action_masks.as_ref().unwrap());
        a.step(Actions::Discrete(&acts), &mut ba).unwrap();
    }
    let saved = a.save_state().unwrap();
    let mut b = PortfolioEnv::new(market, config).unwrap();
    let mut bb = StepBatch::for_env(&b);
    b.reset(Some(123), &mut bb);
    b.load_state(&saved).unwrap();
    bb.action_masks = ba.action_masks.clone();
    for s in 37..120 {
        let acts = act(s, ba.action_masks.as_ref().unwrap());
        a.step(Actions::Discrete(&acts), &mut ba).unwrap();
        b.step(Actions::Discrete(&acts), &mut bb).unwrap();
        assert_eq!(ba.obs, bb.obs, "step {s}");
        assert_eq!(ba.rewards, bb.rewards, "step {s}");
    }
    assert!(b.load_state("{}").is_err());
}

#[test]
fn bad_configs_are_clear_errors() {
    let market = Arc::new(panel(2, 50, 1));
    let e = SingleAssetEnv::new(market.clone(), SingleAssetConfig::default()).unwrap_err();
    assert!(e.to_string().contains("one asset"), "{e}");
    let bad = |trading: TradingConfig| {
        PortfolioEnv::new(
            market.clone(),
            PortfolioConfig {
                trading,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    };
    assert!(
        bad(TradingConfig {
            window: 60,
            ..Default::default()
        })
        .contains("window")
    );
    assert!(
        bad(TradingConfig {
            ruin_nav_fraction: 1.5,
            ..Default::default()
        })
        .contains("ruin_nav_fraction")
    );
    assert!(
        bad(TradingConfig {
            span_start: Some(40),
            span_end: Some(30),
            ..Default::default()
        })
        .contains("span")
    );
    assert!(
        bad(TradingConfig {
            reward: RewardConfig {
                kind: RewardKind::DifferentialSharpe { eta: 0.0 },
                drawdown_penalty: 0.0
            },
            ..Default::default()
        })
        .contains("eta")
    );
    let e = PortfolioEnv::new(
        market.clone(),
        PortfolioConfig {
            actions: PortfolioActions::Regimes {
                allocations: Some(vec![vec![0.5]]),
            },
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("allocations[0]"), "{e}");
    // A config read from TOML with an unknown key is refused by serde.
    let r: Result<PortfolioConfig, _> = toml_like("{\"num_envs\": 2, \"windw\": 3}");
    assert!(r.is_err());
}

fn toml_like(json: &str) -> Result<PortfolioConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn differential_sharpe_and_drawdown_penalty_shape_rewards() {
    let market = Arc::new(panel(1, 300, 11));
    let base = TradingConfig {
        num_envs: 1,
        window: 2,
        random_start: false,
        episode_len: None,
        costs: CostModel::zero(),
        ..Default::default()
    };
    let run = |reward: RewardConfig| {
        let mut env = single(
            market.clone(),
            PositionActions::default(),
            TradingConfig {
                reward,
                ..base.clone()
            },
        );
        let mut b = StepBatch::for_env(&env);
        env.reset(None, &mut b);
        let mut out = vec![];
        for _ in 0..100 {
            env.step(Actions::Discrete(&[2]), &mut b).unwrap();
            out.push((b.rewards[0] as f64, env.info(0).drawdown));
        }
        out
    };
    let plain = run(RewardConfig::default());
    let penal = run(RewardConfig {
        kind: RewardKind::LogReturn,
        drawdown_penalty: 2.0,
    });
    let mut dd_prev = 0.0;
    for (p, q) in plain.iter().zip(&penal) {
        let expect = p.0 - 2.0 * (q.1 - dd_prev).max(0.0);
        assert!((q.0 - expect).abs() < 1e-6, "{} vs {expect}", q.0);
        dd_prev = q.1;
    }
    let dsr = run(RewardConfig {
        kind: RewardKind::DifferentialSharpe { eta: 0.05 },
        drawdown_penalty: 0.0,
    });
    assert_eq!(dsr[0].0, 0.0, "no variance yet on the first step");
    assert!(dsr.iter().all(|r| r.0.is_finite() && r.0.abs() <= 10.0));
    assert!(dsr.iter().any(|r| r.0 != 0.0));
    // The sign of the differential Sharpe ratio follows the surprise in the return.
    assert!(
        dsr.iter()
            .zip(&plain)
            .skip(10)
            .filter(|(d, p)| d.0.signum() == p.0.signum())
            .count()
            > 60
    );
}

#[test]
fn the_embedded_sp500_portfolio_conforms() {
    let r = check_vec_env(
        || quantrl_envs::make_env("sp500-regimes", 2).unwrap(),
        300,
        1,
    )
    .unwrap();
    assert!(r.steps == 300);
}

/// Recorded fills add up to the step's costs and traded notional, move the positions by
/// their shares, and recording changes no number of the run.
#[test]
fn recorded_fills_add_up_and_change_nothing() {
    let market = Arc::new(panel(3, 200, 11));
    let config = PortfolioConfig {
        trading: busy_config(),
        actions: PortfolioActions::Regimes { allocations: None },
    };
    let mut plain = PortfolioEnv::new(market.clone(), config.clone()).unwrap();
    let mut rec = PortfolioEnv::new(market, config).unwrap();
    assert!(rec.fills(0).is_none());
    rec.set_record_fills(true);
    let (mut bp, mut br) = (StepBatch::for_env(&plain), StepBatch::for_env(&rec));
    plain.reset(Some(5), &mut bp);
    rec.reset(Some(5), &mut br);
    let mut traded_steps = 0;
    for s in 0..150 {
        let m = br.action_masks.clone().unwrap();
        let acts: Vec<u32> = (0..4)
            .map(|i| {
                let want = (s * 5 + i) % 16;
                (0..16)
                    .map(|k| (want + k) % 16)
                    .find(|&k| m[i * 16 + k])
                    .unwrap() as u32
            })
            .collect();
        let before: Vec<Vec<f64>> = (0..4).map(|i| rec.positions(i).to_vec()).collect();
        plain.step(Actions::Discrete(&acts), &mut bp).unwrap();
        rec.step(Actions::Discrete(&acts), &mut br).unwrap();
        assert_eq!(bp.rewards, br.rewards, "step {s}");
        assert_eq!(bp.obs, br.obs, "step {s}");
        for i in 0..4 {
            let info = rec.info(i);
            assert_eq!(info, plain.info(i), "step {s} env {i}");
            let fills = rec.fills(i).unwrap();
            assert_eq!(fills.len(), 3);
            let sum = |f: fn(&quantrl_envs::trading::Fill) -> f64| fills.iter().map(f).sum::<f64>();
            close_eq(sum(|f| f.costs.fee), info.costs.fee, "fee");
            close_eq(sum(|f| f.costs.spread), info.costs.spread, "spread");
            close_eq(sum(|f| f.costs.impact), info.costs.impact, "impact");
            close_eq(sum(|f| f.costs.slippage), info.costs.slippage, "slippage");
            close_eq(
                sum(|f| f.shares.abs() * f.price),
                info.traded_notional,
                "notional",
            );
            assert!(
                fills
                    .iter()
                    .all(|f| f.costs.borrow == 0.0 && f.costs.financing == 0.0)
            );
            if br.done(i) {
                continue;
            }
            for (a, f) in fills.iter().enumerate() {
                close_eq(before[i][a] + f.shares, rec.positions(i)[a], "shares");
                if f.shares != 0.0 {
                    let p = rec.market().close(info.t)[a];
                    assert_eq!(f.price, p, "executes at the close of the step's bar");
                }
            }
            traded_steps += usize::from(info.traded_notional > 0.0);
        }
    }
    assert!(traded_steps > 50, "{traded_steps}");
    rec.set_record_fills(false);
    assert!(rec.fills(0).is_none());
}

/// The registry's trading environments on embedded and synthetic data pass the conformance
/// checker (spaces, masks, reproducibility from a seed).
#[test]
fn registry_trading_envs_conform() {
    for name in ["googl", "synthetic-signal"] {
        let r = check_vec_env(|| quantrl_envs::make_env(name, 4).unwrap(), 300, 4)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.truncations + r.terminations > 0, "{name}: episodes end");
    }
}

/// The single-asset, discrete-action step runs in lanes of environments
/// (`advance_single_lanes`); recording fills sends it down the general per-environment path.
/// Both must give the same numbers bit for bit: rewards, observations, final observations,
/// episode ends, step infos and positions, over many episodes with trades, limits, no-trade
/// bars, adversary multipliers, next-open execution, a differential Sharpe reward, a drawdown
/// penalty, ruin, and a number of environments that is not a multiple of the lane width.
#[test]
fn single_asset_lanes_equal_the_general_path() {
    let base = panel(1, 300, 21);
    let tradable: Vec<bool> = (0..300).map(|t| t % 17 != 3).collect();
    let open: Vec<f64> = (0..300).map(|t| base.open(t)[0]).collect();
    let no_volume = Market::from_close(1, base.close_all().to_vec())
        .and_then(|m| m.with_open(open))
        .unwrap();
    let markets = [
        Arc::new(base.clone()),
        Arc::new(base.with_tradable(tradable).unwrap()),
        Arc::new(no_volume),
    ];
    let levels = PositionActions::Levels {
        levels: vec![-2.0, -1.0, 0.0, 0.5, 1.0, 3.0],
    };
    let configs = [
        TradingConfig {
            num_envs: 11,
            window: 4,
            episode_len: Some(40),
            limits: RiskLimits {
                max_turnover: Some(2.5),
                max_drawdown: Some(0.08),
                ..Default::default()
            },
            ..Default::default()
        },
        TradingConfig {
            num_envs: 5,
            window: 2,
            episode_len: None,
            execution: ExecutionPrice::NextOpen,
            reward: RewardConfig {
                kind: RewardKind::DifferentialSharpe { eta: 0.05 },
                drawdown_penalty: 0.5,
            },
            // Heavy costs and an easy ruin, so some episodes terminate.
            costs: CostModel {
                fee_bps: 300.0,
                impact_coef: 2.0,
                financing_bps_per_year: 5000.0,
                ..CostModel::default()
            },
            ruin_nav_fraction: 0.7,
            ..Default::default()
        },
    ];
    for (mi, market) in markets.iter().enumerate() {
        for (ci, config) in configs.iter().enumerate() {
            let make = || single(market.clone(), levels.clone(), config.clone());
            let at = format!("market {mi} config {ci}");
            assert_same_as_recorded(make, 400, mi as u64 * 10 + ci as u64, &at);
        }
    }
}

/// Run two copies of an environment on the same actions (valid under the masks, or random
/// continuous ones) and adversary settings, the second recording fills (the general
/// per-environment, per-asset path), and require identical numbers everywhere.
fn assert_same_as_recorded<E>(make: impl Fn() -> E, steps: usize, seed: u64, at: &str)
where
    E: VecEnv + std::ops::DerefMut<Target = quantrl_envs::trading::TradingEnv>,
{
    let (mut fast, mut general) = (make(), make());
    general.set_record_fills(true);
    let (mut bl, mut bg) = (StepBatch::for_env(&fast), StepBatch::for_env(&general));
    fast.reset(Some(9), &mut bl);
    general.reset(Some(9), &mut bg);
    let e = fast.num_envs();
    let space = fast.action_space().clone();
    let dim = space.flat_dim();
    let mut rng = quantrl_core::Rng::seed_from_u64(seed);
    let (mut trades, mut ends) = (0, 0);
    for s in 0..steps {
        if s % 50 == 7 {
            let i = s % e;
            let controls = AdversaryControls {
                spread: 1.0 + rng.uniform() * 3.0,
                impact: 2.0 * rng.uniform(),
                volatility: 0.5 + rng.uniform(),
            };
            fast.set_adversary(i, controls).unwrap();
            general.set_adversary(i, controls).unwrap();
        }
        let (ints, floats): (Vec<u32>, Vec<f32>) = match bl.action_masks.clone() {
            Some(m) => {
                let k = m.len() / e;
                let ints = (0..e)
                    .map(|i| {
                        let want = rng.below(k as u64) as usize;
                        (0..k)
                            .map(|j| (want + j) % k)
                            .find(|&j| m[i * k + j])
                            .unwrap() as u32
                    })
                    .collect();
                (ints, Vec::new())
            }
            None => {
                let mut floats = vec![0f32; e * dim];
                for i in 0..e {
                    space.sample_box(&mut rng, &mut floats[i * dim..(i + 1) * dim]);
                }
                (Vec::new(), floats)
            }
        };
        let actions = || {
            if floats.is_empty() {
                Actions::Discrete(&ints)
            } else {
                Actions::Continuous(&floats)
            }
        };
        fast.step(actions(), &mut bl).unwrap();
        general.step(actions(), &mut bg).unwrap();
        let at = format!("{at} step {s}");
        assert_eq!(bl.rewards, bg.rewards, "{at}");
        assert_eq!(bl.obs, bg.obs, "{at}");
        assert_eq!(bl.terminated, bg.terminated, "{at}");
        assert_eq!(bl.truncated, bg.truncated, "{at}");
        assert_eq!(bl.action_masks, bg.action_masks, "{at}");
        for i in 0..e {
            assert_eq!(fast.info(i), general.info(i), "{at} env {i}");
            assert_eq!(fast.positions(i), general.positions(i), "{at} env {i}");
            assert_eq!(fast.step_weights(i), general.step_weights(i), "{at}");
            if bl.done(i) {
                assert_eq!(
                    bl.final_obs[i * bl.obs_dim..(i + 1) * bl.obs_dim],
                    bg.final_obs[i * bg.obs_dim..(i + 1) * bg.obs_dim],
                    "{at} env {i}"
                );
                ends += 1;
            }
            trades += usize::from(fast.info(i).traded_notional > 0.0);
        }
    }
    assert!(
        trades > steps / 2 && ends > 5,
        "{at}: {trades} trades, {ends} ends"
    );
}

/// Recording fills changes no number of a portfolio run either, for continuous weights
/// (softmax, simplex projection) and discrete regimes, with and without volume (square-root
/// or fallback impact), limits and adversary multipliers.
#[test]
fn portfolio_recording_changes_nothing() {
    let market = Arc::new(panel(5, 300, 23));
    let no_volume = Arc::new(Market::from_close(5, market.close_all().to_vec()).unwrap());
    let config = TradingConfig {
        num_envs: 6,
        window: 3,
        episode_len: Some(50),
        limits: RiskLimits {
            max_turnover: Some(1.2),
            max_drawdown: Some(0.1),
            max_abs_weight: Some(0.6),
            ..Default::default()
        },
        ..Default::default()
    };
    for (mi, m) in [market, no_volume].iter().enumerate() {
        for (ai, actions) in [
            PortfolioActions::Weights {
                mapping: WeightMapping::Softmax,
                leverage: 1.5,
                max_weight: 0.5,
            },
            PortfolioActions::Weights {
                mapping: WeightMapping::SimplexProjection,
                leverage: 1.0,
                max_weight: 0.6,
            },
            PortfolioActions::Regimes { allocations: None },
        ]
        .iter()
        .enumerate()
        {
            let make = || {
                PortfolioEnv::new(
                    m.clone(),
                    PortfolioConfig {
                        trading: config.clone(),
                        actions: actions.clone(),
                    },
                )
                .unwrap()
            };
            assert_same_as_recorded(
                make,
                300,
                3 + ai as u64,
                &format!("market {mi} actions {ai}"),
            );
        }
    }
}

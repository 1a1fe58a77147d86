//! Whole-loop throughput, printed as a table (a bench binary, not criterion: each row is one
//! long run, timed end to end).
//!
//! ```text
//! cargo bench -p quantrl --bench throughput            # all rows
//! cargo bench -p quantrl --bench throughput -- ppo     # rows whose name contains "ppo"
//! ```
//!
//! Rows:
//! - `cartpole_raw_steps`: CartPole-v1, 8 and 256 environments, random actions drawn ahead of
//!   time, steps per second summed over environments (gymnasium's CartPole: ~155k steps/s on
//!   the reference 2-core machine).
//! - `single_asset_raw_steps`: `SingleAssetEnv` like gym-anytrading's `stocks-v0` (window 10,
//!   two features, three position levels), default costs, random actions, 64 environments
//!   on one thread (gym-anytrading: ~230k steps/s on the reference machine).
//! - `portfolio20_raw_steps`: `PortfolioEnv` on 20 assets (window 10, two features per asset,
//!   softmax weights with a 25% cap, and the 16 discrete regimes), 64 environments.
//! - `ppo_masked_identity_e2e`: PPO with action masks on sb3-contrib's
//!   `InvalidActionEnvDiscrete` (40 actions, 30 masked) at MaskablePPO's default settings (1
//!   env, n_steps 2048, batch 64, 10 epochs, lr 3e-4), steps per second including updates
//!   (sb3-contrib MaskablePPO on the same machine: ~1,500 steps/s).
//! - `ppo_cartpole_e2e`: PPO with the RL-Zoo CartPole-v1 settings (8 envs, n_steps 32, batch
//!   256, 20 epochs), environment steps per second including every update (SB3 on the same
//!   machine: ~4,200 steps/s).
//! - `ppo_recurrent_e2e`: recurrent PPO on CartPoleNoVel with a GRU or an LSTM (hidden 64,
//!   separate policy and value encoders, 8 envs, n_steps 32, batch 256) at the RL-Zoo settings
//!   (20 epochs, λ 0.8, γ 0.98) and at 10 epochs (λ 0.98, γ 0.99), 25,600 steps each
//!   (sb3-contrib RecurrentPPO with an LSTM on the same machine: ~830 steps/s at 20 epochs,
//!   ~1,100 at 10). Host BPTT on (the default) and, for the GRU at 20 epochs, off.

use std::time::Instant;

use quantrl::algos::{EncoderSettings, RecurrentPpo};
use quantrl::envs::trading::{
    Market, PortfolioActions, PortfolioConfig, PortfolioEnv, PositionActions, SingleAssetConfig,
    SingleAssetEnv, TradingConfig,
};
use quantrl::nets::EncoderKind;
use quantrl::prelude::*;

fn cartpole_raw(n_envs: usize, steps: usize) -> f64 {
    let mut env = CartPole::new(CartPoleConfig {
        num_envs: n_envs,
        ..Default::default()
    });
    let mut batch = StepBatch::for_env(&env);
    env.reset(Some(0), &mut batch);
    let mut rng = Rng::seed_from_u64(1);
    let actions: Vec<u32> = (0..n_envs * 1024).map(|_| rng.below(2) as u32).collect();
    let start = Instant::now();
    for t in 0..steps {
        let k = (t % 1024) * n_envs;
        env.step(Actions::Discrete(&actions[k..k + n_envs]), &mut batch)
            .unwrap();
    }
    std::hint::black_box(&batch.rewards);
    (steps * n_envs) as f64 / start.elapsed().as_secs_f64()
}

/// A seeded 5000-bar GBM panel of `n` assets with two features per asset (last log return
/// and price relative to a 10-bar mean), open prices and volume.
fn synthetic_market(n: usize) -> std::sync::Arc<Market> {
    let t = 5000;
    let mut rng = Rng::seed_from_u64(42);
    let mut close = vec![0.0; t * n];
    let mut volume = vec![0.0; t * n];
    for a in 0..n {
        let mut p = 100.0;
        for r in 0..t {
            p *= (0.0002 + 0.01 * rng.normal()).exp();
            close[r * n + a] = p;
            volume[r * n + a] = 1e6 * (0.5 + rng.uniform());
        }
    }
    let f = 2 * n;
    let mut feats = vec![0f32; t * f];
    for r in 10..t {
        for a in 0..n {
            let mean: f64 = (r - 9..=r).map(|k| close[k * n + a]).sum::<f64>() / 10.0;
            feats[r * f + 2 * a] = (close[r * n + a] / close[(r - 1) * n + a]).ln() as f32;
            feats[r * f + 2 * a + 1] = (close[r * n + a] / mean - 1.0) as f32;
        }
    }
    let names = (0..f).map(|k| format!("f{k}")).collect();
    std::sync::Arc::new(
        Market::from_close(n, close)
            .and_then(|m| m.with_volume(volume))
            .and_then(|m| m.with_features(names, feats, 10))
            .expect("valid synthetic market"),
    )
}

fn trading_raw<E: VecEnv>(mut env: E, steps: usize) -> f64 {
    let n_envs = env.num_envs();
    let mut batch = StepBatch::for_env(&env);
    env.reset(Some(0), &mut batch);
    let mut rng = Rng::seed_from_u64(1);
    let space = env.action_space().clone();
    let d = space.flat_dim();
    let mut ints = vec![0u32; n_envs * d * 1024];
    let mut floats = vec![0f32; n_envs * d * 1024];
    for k in 0..n_envs * 1024 {
        match &space {
            Space::Box { .. } => space.sample_box(&mut rng, &mut floats[k * d..(k + 1) * d]),
            _ => space.sample_discrete(&mut rng, &mut ints[k * d..(k + 1) * d]),
        }
    }
    let w = n_envs * d;
    let start = Instant::now();
    for t in 0..steps {
        let k = (t % 1024) * w;
        let actions = match space {
            Space::Box { .. } => Actions::Continuous(&floats[k..k + w]),
            _ => Actions::Discrete(&ints[k..k + w]),
        };
        env.step(actions, &mut batch).unwrap();
    }
    std::hint::black_box(&batch.rewards);
    (steps * n_envs) as f64 / start.elapsed().as_secs_f64()
}

fn ppo_masked_e2e(total_steps: u64) -> (f64, f64) {
    use quantrl::envs::{MaskedIdentity, MaskedIdentityConfig};
    let mut config = TrainConfig {
        total_steps,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let p = &mut config.ppo;
    p.n_envs = 1;
    p.n_steps = 2048;
    p.batch_size = 64;
    p.n_epochs = 10;
    p.gamma = 0.99;
    p.gae_lambda = 0.95;
    p.learning_rate = Schedule::Constant(3e-4);
    p.clip_range = Schedule::Constant(0.2);
    p.ent_coef = 0.0;
    let env = MaskedIdentity::new(MaskedIdentityConfig {
        num_envs: 1,
        ..Default::default()
    })
    .expect("valid config");
    let device = Default::default();
    let mut ppo = Ppo::<DefaultAutodiffBackend, _>::new(config, env, &device).unwrap();
    let start = Instant::now();
    ppo.learn::<MaskedIdentity>(None, &mut no_callback())
        .unwrap();
    (
        ppo.num_timesteps as f64 / start.elapsed().as_secs_f64(),
        ppo.recent_episodes().0,
    )
}

fn ppo_e2e(total_steps: u64) -> (f64, f64) {
    let config = TrainConfig {
        total_steps,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let env = CartPole::new(CartPoleConfig {
        num_envs: config.ppo.n_envs,
        ..Default::default()
    });
    let device = Default::default();
    let mut ppo = Ppo::<DefaultAutodiffBackend, _>::new(config, env, &device).unwrap();
    let start = Instant::now();
    ppo.learn::<CartPole>(None, &mut no_callback()).unwrap();
    (
        ppo.num_timesteps as f64 / start.elapsed().as_secs_f64(),
        ppo.recent_episodes().0,
    )
}

fn ppo_recurrent_e2e(kind: EncoderKind, zoo: bool, host_bptt: bool, total_steps: u64) -> f64 {
    let mut config = TrainConfig {
        total_steps,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    if !zoo {
        config.ppo.n_epochs = 10;
        config.ppo.gae_lambda = 0.98;
        config.ppo.gamma = 0.99;
    }
    config.policy.encoder = Some(EncoderSettings {
        kind,
        host_bptt,
        ..Default::default()
    });
    let env = CartPole::new(CartPoleConfig {
        num_envs: config.ppo.n_envs,
        hide_velocity: true,
        ..Default::default()
    });
    let device = Default::default();
    let mut ppo = RecurrentPpo::<DefaultAutodiffBackend, _>::new(config, env, &device).unwrap();
    let start = Instant::now();
    ppo.learn::<CartPole>(None, &mut no_callback()).unwrap();
    ppo.num_timesteps as f64 / start.elapsed().as_secs_f64()
}

/// Median of `k` runs of `f`.
fn median_of(k: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..k).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[k / 2]
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("| benchmark | setting | steps/s |");
    println!("| --- | --- | ---: |");
    if wanted("cartpole_raw_steps") {
        for n in [8usize, 256] {
            let med = median_of(5, || cartpole_raw(n, 4_000_000 / n));
            println!("| cartpole_raw_steps | {n} envs, median of 5 | {med:.0} |");
        }
    }
    let trading = TradingConfig {
        num_envs: std::env::var("QUANTRL_BENCH_TRADING_ENVS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(64),
        window: 10,
        ..Default::default()
    };
    if wanted("single_asset_raw_steps") {
        let market = synthetic_market(1);
        let med = median_of(5, || {
            let env = SingleAssetEnv::new(
                market.clone(),
                SingleAssetConfig {
                    trading: trading.clone(),
                    actions: PositionActions::default(),
                },
            )
            .unwrap();
            trading_raw(env, 8_000_000 / trading.num_envs)
        });
        println!(
            "| single_asset_raw_steps | window 10, 2 features, 3 levels, 64 envs, median of 5 | {med:.0} |"
        );
    }
    if wanted("portfolio20_raw_steps softmax regimes") {
        let market = synthetic_market(20);
        for (label, actions) in [
            ("softmax weights", PortfolioActions::default()),
            (
                "16 regimes",
                PortfolioActions::Regimes { allocations: None },
            ),
        ] {
            // `-- softmax` or `-- regimes` runs one of the two rows.
            if !wanted(&format!("portfolio20_raw_steps {label}")) {
                continue;
            }
            let med = median_of(5, || {
                let env = PortfolioEnv::new(
                    market.clone(),
                    PortfolioConfig {
                        trading: trading.clone(),
                        actions: actions.clone(),
                    },
                )
                .unwrap();
                trading_raw(env, 1_000_000 / trading.num_envs)
            });
            println!(
                "| portfolio20_raw_steps | 20 assets, window 10, {label}, 64 envs, median of 5 | {med:.0} |"
            );
        }
    }
    if wanted("ppo_masked_identity_e2e") {
        let (sps, ret) = ppo_masked_e2e(20_480);
        println!(
            "| ppo_masked_identity_e2e | MaskablePPO defaults, 20,480 steps (final rolling return {ret:.0}) | {sps:.0} |"
        );
    }
    if wanted("ppo_recurrent_e2e") {
        for (kind, zoo, host) in [
            (EncoderKind::Gru, true, true),
            (EncoderKind::Gru, true, false),
            (EncoderKind::Lstm, true, true),
            (EncoderKind::Gru, false, true),
            (EncoderKind::Lstm, false, true),
        ] {
            let sps = ppo_recurrent_e2e(kind, zoo, host, 25_600);
            let epochs = if zoo { "20 epochs" } else { "10 epochs" };
            let path = if host { "host BPTT" } else { "Burn autodiff" };
            println!(
                "| ppo_recurrent_e2e | CartPoleNoVel, {kind:?} 64, {epochs}, {path}, 25,600 steps | {sps:.0} |"
            );
        }
    }
    if wanted("ppo_cartpole_e2e") {
        let steps: u64 = std::env::var("QUANTRL_BENCH_PPO_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(50_176);
        let (sps, ret) = ppo_e2e(steps);
        println!(
            "| ppo_cartpole_e2e | RL-Zoo settings, {steps} steps (final rolling return {ret:.0}) | {sps:.0} |"
        );
    }
}

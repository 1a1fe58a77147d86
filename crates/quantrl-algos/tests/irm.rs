//! The IRM hook end to end: a trading market with regime labels gives PPO a label per sample,
//! the penalty is applied (and reported) when a minibatch holds two regimes, an environment
//! without labels is refused, and sparse IRM selects features by hard thresholding.

use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{
    AlgoError, EvalConfig, IrmPenaltyConfig, IrmTarget, MaskedFeatures, Ppo, SparseIrmConfig,
    SparseIrmScore, TrainConfig, irm::invariance_probe, sparse_irm,
};
use quantrl_core::{Rng, StepBatch, VecEnv};
use quantrl_envs::trading::{Market, SingleAssetConfig, SingleAssetEnv, TradingConfig};

type B = Autodiff<NdArray<f32>>;

/// 3000 bars, features `[signal, noise]`, regimes switching every 50 bars.
fn market(with_regimes: bool) -> Arc<Market> {
    let mut rng = Rng::seed_from_u64(1);
    let bars = 3000;
    let mut close = vec![100.0];
    let mut features = Vec::new();
    let mut signal = 0.0;
    for _ in 0..bars {
        let s = rng.normal();
        features.extend([s as f32, rng.normal() as f32]);
        let last: f64 = *close.last().unwrap();
        close.push(last * (0.003 * signal + 0.01 * rng.normal()).exp());
        signal = s;
    }
    close.pop();
    let mut m = Market::from_close(1, close)
        .unwrap()
        .with_features(vec!["signal".into(), "noise".into()], features, 0)
        .unwrap();
    if with_regimes {
        m = m
            .with_regimes((0..bars).map(|t| (t / 50) % 2).collect())
            .unwrap();
    }
    Arc::new(m)
}

fn env(m: Arc<Market>) -> SingleAssetEnv {
    SingleAssetEnv::new(
        m,
        SingleAssetConfig {
            trading: TradingConfig {
                num_envs: 4,
                window: 1,
                episode_len: Some(30),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
}

fn config(total: u64) -> TrainConfig {
    let mut c = TrainConfig {
        seed: 2,
        total_steps: total,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.policy.hidden = vec![16];
    c.ppo.n_envs = 4;
    c.ppo.n_steps = 32;
    c.ppo.batch_size = 64;
    c.ppo.n_epochs = 2;
    c.ppo.irm = Some(IrmPenaltyConfig {
        penalty_weight: 10.0,
        target: IrmTarget::Both,
    });
    c
}

#[test]
fn the_trading_env_labels_samples_and_ppo_applies_the_penalty() {
    let mut e = env(market(true));
    let mut batch = StepBatch::for_env(&e);
    e.reset(Some(0), &mut batch);
    for i in 0..4 {
        assert_eq!(e.regime_label(i), Some((e.row(i) / 50) % 2));
    }
    let device = Default::default();
    let mut ppo = Ppo::<B, _>::new(config(128 * 6), env(market(true)), &device).unwrap();
    let mut penalties = Vec::new();
    while !ppo.is_done() {
        let s = ppo.train_iteration().unwrap();
        assert!(s.loss.is_finite(), "{s:?}");
        penalties.extend(s.irm_penalty);
    }
    assert!(!penalties.is_empty(), "no minibatch held two regimes");
    assert!(
        penalties.iter().all(|p| p.is_finite() && *p >= 0.0),
        "{penalties:?}"
    );
}

#[test]
fn an_environment_without_labels_is_refused() {
    let e = Ppo::<B, _>::new(config(128), env(market(false)), &Default::default())
        .err()
        .expect("refused");
    assert!(
        matches!(&e, AlgoError::Config(_)) && e.to_string().contains("regime labels"),
        "{e}"
    );
}

#[test]
fn masked_features_read_zero_and_sparse_irm_keeps_the_target_count() {
    let mut m =
        MaskedFeatures::new(env(market(true)), vec![true, false, true, true, true, true]).unwrap();
    let mut batch = StepBatch::for_env(&m);
    m.reset(Some(0), &mut batch);
    assert!(batch.obs.chunks_exact(6).all(|row| row[1] == 0.0));
    assert_eq!(m.regime_label(0), m.inner().regime_label(0));

    let outcome = sparse_irm::<B, _, _>(
        &config(128 * 2),
        &SparseIrmConfig {
            candidates: Some(vec![0, 1]),
            target_k: 1,
            rounds: 1,
            score: SparseIrmScore::InvariantProbe {
                weight: 20.0,
                rollouts: 2,
            },
        },
        || env(market(true)),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(outcome.rounds.len(), 1);
    assert_eq!(outcome.rounds[0].len(), 1);
    assert_eq!(outcome.scores[0].len(), 6);
    assert_eq!(outcome.probes.len(), 1);
    assert_eq!(outcome.probes[0].len(), 2);
    // One of the two candidates and the four account entries.
    assert_eq!(outcome.selected.len(), 5);
    assert!(outcome.selected.contains(&outcome.rounds[0][0]));
}

/// The probe on data whose structure is known: `y = 0.5 s + c_e x + noise` with `c = 0.8` in
/// regime 0 and `0.2` in regime 1, a pure-noise input `n`, and an always-kept input `k`
/// that matters equally everywhere. Acting has no effect here (one action), so the probe is a
/// plain regression: `x` is the more useful input, yet variant; `s` is invariant.
#[test]
fn the_invariance_probe_scores_a_variant_input_below_an_invariant_one() {
    let mut rng = Rng::seed_from_u64(3);
    let n = 20_000;
    let (mut obs, mut y, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let e = usize::from(i % 2 == 1);
        let (s, x, z, k) = (rng.normal(), rng.normal(), rng.normal(), rng.normal());
        let c = if e == 0 { 0.8 } else { 0.2 };
        obs.extend([s as f32, x as f32, z as f32, k as f32]);
        y.push((0.5 * s + c * x + 0.3 * k + rng.normal()) as f32);
        labels.push(e);
    }
    let actions = vec![0u32; n];
    let found = invariance_probe(&obs, 4, &actions, 1, &y, &labels, &[0, 1, 2], 20.0);
    let (s, x, z) = (&found[0], &found[1], &found[2]);
    // Pooled slope of x is 0.5: regime 0 wants 1.6 times it, regime 1 0.4 times.
    assert!((x.best_scale[0] - 1.6).abs() < 0.1, "{x:?}");
    assert!((x.best_scale[1] - 0.4).abs() < 0.1, "{x:?}");
    assert!((s.best_scale[0] - 1.0).abs() < 0.1 && (s.best_scale[1] - 1.0).abs() < 0.1);
    assert!(x.usefulness > s.usefulness, "{x:?} {s:?}");
    assert!(
        x.regime_regret > 10.0 * s.regime_regret.max(1e-6),
        "{x:?} {s:?}"
    );
    assert!(s.score > z.score && z.score > x.score, "{s:?} {z:?} {x:?}");
    // Sampling noise alone: residual variance / regime size. In units of Var(y) = 1.68 the
    // residual is (1 + 0.09) / 1.68 ≈ 0.65 (noise, plus x's pooled misfit 0.3² per regime),
    // over 10000 samples a regime.
    assert!((s.noise_regret - 6.5e-5).abs() < 1e-5, "{s:?}");
    // Usefulness alone (weight 0) prefers x.
    let plain = invariance_probe(&obs, 4, &actions, 1, &y, &labels, &[0, 1, 2], 0.0);
    assert!(plain[1].score > plain[0].score);
}

/// An input's effect that differs per action is read through the action crossing: the
/// return is `+x` after action 1 and `-x` after action 0 in both regimes (invariant), and
/// `±c_e z` with `c` switching sign between regimes for `z`.
#[test]
fn the_invariance_probe_reads_action_dependent_effects() {
    let mut rng = Rng::seed_from_u64(4);
    let n = 20_000;
    let (mut obs, mut y, mut labels, mut actions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let e = usize::from(i % 3 == 0);
        let a = u32::from(rng.uniform() < 0.5);
        let (x, z) = (rng.normal(), rng.normal());
        let sign = if a == 1 { 1.0 } else { -1.0 };
        let c = if e == 0 { 0.6 } else { -0.2 };
        obs.extend([x as f32, z as f32]);
        y.push((sign * (0.4 * x + c * z) + rng.normal()) as f32);
        labels.push(e);
        actions.push(a);
    }
    let found = invariance_probe(&obs, 2, &actions, 2, &y, &labels, &[0, 1], 20.0);
    assert!(found[0].usefulness > 0.05, "{:?}", found[0]);
    assert!(found[0].regime_regret < 1e-3, "{:?}", found[0]);
    assert!(found[1].regime_regret > 0.01, "{:?}", found[1]);
    assert!(found[0].score > found[1].score);
}

#[test]
fn bad_sparse_irm_settings_are_refused() {
    for score in [
        SparseIrmScore::InvariantProbe {
            weight: -1.0,
            rollouts: 4,
        },
        SparseIrmScore::InvariantProbe {
            weight: f64::NAN,
            rollouts: 4,
        },
        SparseIrmScore::InvariantProbe {
            weight: 1.0,
            rollouts: 0,
        },
    ] {
        let c = SparseIrmConfig {
            candidates: None,
            target_k: 1,
            rounds: 1,
            score,
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sparse_irm.score"), "{e}");
    }
    let e = sparse_irm::<B, _, _>(
        &config(256),
        &SparseIrmConfig {
            candidates: None,
            target_k: 1,
            rounds: 1,
            score: SparseIrmScore::default(),
        },
        || env(market(false)),
        &Default::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("regime labels"), "{e}");
}

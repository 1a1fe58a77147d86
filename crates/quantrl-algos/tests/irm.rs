//! The IRM hook end to end: a trading market with regime labels gives PPO a label per sample,
//! the penalty is applied (and reported) when a minibatch holds two regimes, an environment
//! without labels is refused, and sparse IRM selects features by hard thresholding.

use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{
    AlgoError, EvalConfig, IrmPenaltyConfig, IrmTarget, MaskedFeatures, Ppo, SparseIrmConfig,
    TrainConfig, sparse_irm,
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
        },
        || env(market(true)),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(outcome.rounds.len(), 1);
    assert_eq!(outcome.rounds[0].len(), 1);
    assert_eq!(outcome.scores[0].len(), 6);
    // One of the two candidates and the four account entries.
    assert_eq!(outcome.selected.len(), 5);
    assert!(outcome.selected.contains(&outcome.rounds[0][0]));
}

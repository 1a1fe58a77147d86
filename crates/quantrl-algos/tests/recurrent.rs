//! Recurrent PPO: the rollout's stored states replay exactly through the training path
//! (resets and padding included), and CartPoleNoVel is solved with GRU and LSTM policies.
//! (Recurrent policies with action masks are tested in `masking.rs`.)

use std::ops::ControlFlow;

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{
    EncoderSettings, EvalConfig, NormalizeConfig, RecurrentPpo, TrainConfig, TrainEvent,
};
use quantrl_envs::{CartPole, CartPoleConfig};
use quantrl_nets::EncoderKind;

type B = Autodiff<NdArray<f32>>;

fn novel(n: usize) -> CartPole {
    CartPole::new(CartPoleConfig {
        num_envs: n,
        hide_velocity: true,
        ..Default::default()
    })
}

/// The RL-Zoo RecurrentPPO settings for CartPoleNoVel-v1 (8 envs, n_steps 32, batch 256,
/// 20 epochs, γ 0.98, λ 0.8, lr 1e-3 and clip 0.2 both linear to 0, hidden 64, separate
/// policy and value encoders, observations and rewards normalized as `VecNormalize`).
fn zoo_config(kind: EncoderKind, seed: u64, total_steps: u64) -> TrainConfig {
    let mut config = TrainConfig {
        seed,
        total_steps,
        env: "cartpole-novel".into(),
        eval: EvalConfig {
            every: 10_000,
            episodes: 20,
            stop_at_return: Some(475.0),
        },
        ..Default::default()
    };
    config.policy.encoder = Some(EncoderSettings {
        kind,
        ..Default::default()
    });
    config.ppo.normalize = Some(NormalizeConfig::default());
    config
}

#[test]
fn stored_states_replay_the_rollout_exactly() {
    // seq_len 32 = whole rollouts, 8 = four chunks per env, 5 = six full chunks and a padded
    // one of 2 steps. Episodes of CartPoleNoVel under a random policy last ~20 steps, so every
    // rollout holds resets in the middle of sequences.
    // The last case: a twin quantile critic (values are the mean of the reduced quantiles).
    let cases = [EncoderKind::Gru, EncoderKind::Lstm, EncoderKind::Gtrxl]
        .into_iter()
        .flat_map(|k| [32, 8, 5].map(|l| (k, l, false)))
        .chain([(EncoderKind::Gru, 5, true)]);
    for (kind, seq_len, distributional) in cases {
        {
            let mut config = zoo_config(kind, 3, 10_000);
            config.ppo.seq_len = Some(seq_len);
            if distributional {
                config.ppo.distributional = Some(quantrl_algos::DistributionalConfig {
                    n_quantiles: 8,
                    twin_critics: true,
                    ..Default::default()
                });
            }
            config.ppo.batch_size = seq_len * 8;
            let device = Default::default();
            let mut ppo = RecurrentPpo::<B, _>::new(config, novel(8), &device).unwrap();
            for round in 0..2 {
                ppo.collect_rollout().unwrap();
                let (log_probs, values) = ppo.replay_rollout();
                let buffer = ppo.rollout_buffer();
                assert!(buffer.episode_starts.iter().skip(8).any(|&s| s == 1.0));
                for (i, (&got, &want)) in log_probs.iter().zip(&buffer.log_probs).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{kind:?} seq_len {seq_len} round {round}: log-prob of sample {i}: replay {got} vs rollout {want}"
                    );
                }
                for (i, (&got, &want)) in values.iter().zip(&buffer.values).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{kind:?} seq_len {seq_len} round {round}: value of sample {i}: replay {got} vs rollout {want}"
                    );
                }
                ppo.update().unwrap();
            }
        }
    }
}

#[test]
fn sequence_length_must_divide_the_minibatch() {
    let mut config = zoo_config(EncoderKind::Gru, 0, 1000);
    config.ppo.seq_len = Some(24);
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("ppo.batch_size") && e.contains("24"), "{e}");
    let mut config = TrainConfig::default();
    config.ppo.seq_len = Some(8);
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("ppo.seq_len") && e.contains("recurrent"), "{e}");
    let mut config = zoo_config(EncoderKind::Gru, 0, 1000);
    config.ppo.seq_len = Some(33);
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("ppo.seq_len") && e.contains("33"), "{e}");
}

/// Train on CartPoleNoVel; the step count at which the mean deterministic evaluation return
/// over 20 episodes first reached `target` (`u64::MAX` if never) and the training speed.
fn solve_novel(kind: EncoderKind, seed: u64, budget: u64, target: f64) -> (u64, f64) {
    let mut config = zoo_config(kind, seed, budget);
    config.eval.stop_at_return = Some(target);
    let device = Default::default();
    let mut ppo = RecurrentPpo::<B, _>::new(config, novel(8), &device).unwrap();
    let mut eval_env = novel(4);
    let start = std::time::Instant::now();
    let mut solved_at = u64::MAX;
    let mut cb = |e: &TrainEvent| {
        if let TrainEvent::Eval(s) = e {
            eprintln!(
                "{kind:?} seed {seed}: {} steps, eval mean return {:.1}",
                s.timesteps, s.mean_return
            );
            if s.mean_return >= target && solved_at == u64::MAX {
                solved_at = s.timesteps;
            }
        }
        ControlFlow::Continue(())
    };
    ppo.learn(Some(&mut eval_env), &mut cb).unwrap();
    let sps = ppo.num_timesteps as f64 / start.elapsed().as_secs_f64();
    (solved_at, sps)
}

/// Seeds 1-3 each reach a greedy evaluation return of 475 within 200k steps.
fn assert_solves_novel_for_three_seeds(kind: EncoderKind) {
    for seed in [1, 2, 3] {
        let (steps, sps) = solve_novel(kind, seed, 200_000, 475.0);
        eprintln!("{kind:?} seed {seed}: solved at {steps} steps, {sps:.0} steps/s");
        assert!(
            steps <= 200_000,
            "{kind:?} seed {seed}: never reached 475 within 200k steps"
        );
    }
}

/// The target: a greedy evaluation return of 475 (20 episodes) within 200k steps for
/// each of three seeds. Memory is needed: a random policy lasts ~20 steps on CartPoleNoVel
/// and a memoryless one cannot infer the velocities. Measured: solved at 40k, 70k and 30k
/// steps (without normalization the returns plateaued at 200-450).
#[test]
fn gru_policy_solves_cartpole_novel_for_three_seeds() {
    assert_solves_novel_for_three_seeds(EncoderKind::Gru);
}

/// As [`gru_policy_solves_cartpole_novel_for_three_seeds`], with an LSTM. Measured: solved at
/// 30k, 80k and 30k steps.
#[test]
fn lstm_policy_solves_cartpole_novel_for_three_seeds() {
    assert_solves_novel_for_three_seeds(EncoderKind::Lstm);
}

/// GTrXL (width 64, 1 layer, 2 heads, memory 16, trained through Burn's autodiff) within the
/// budget stated for it, 200k steps, for three seeds. Measured: 482 at 160k, 484 at 60k and
/// 500 at 150k steps, at 90-140 steps/s on the loaded 2-core machine (about half an hour in
/// all), so it is left out of the default run: `cargo test -p quantrl-algos --test recurrent
/// -- --ignored`.
#[test]
#[ignore = "slow (GTrXL through autodiff, ~30 min on 2 cores): run with --ignored"]
fn gtrxl_policy_solves_cartpole_novel_for_three_seeds() {
    assert_solves_novel_for_three_seeds(EncoderKind::Gtrxl);
}

//! Learning test: PPO with the RL-Zoo CartPole-v1 hyperparameters reaches a mean return of at
//! least 475 over 20 deterministic evaluation episodes within 100k environment steps, for
//! each of 3 fixed seeds, on CPU.

use std::ops::ControlFlow;

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{EvalConfig, Ppo, TrainConfig, TrainEvent};
use quantrl_envs::{CartPole, CartPoleConfig};

type B = Autodiff<NdArray<f32>>;

fn solve(seed: u64) -> (u64, f64, f64) {
    let config = TrainConfig {
        seed,
        total_steps: 100_000,
        eval: EvalConfig {
            every: 10_000,
            episodes: 20,
            stop_at_return: Some(475.0),
        },
        ..Default::default()
    };
    let env = CartPole::new(CartPoleConfig {
        num_envs: config.ppo.n_envs,
        ..Default::default()
    });
    let mut eval_env = CartPole::new(CartPoleConfig {
        num_envs: 4,
        ..Default::default()
    });
    let device = Default::default();
    let mut ppo = Ppo::<B, _>::new(config, env, &device).unwrap();
    let start = std::time::Instant::now();
    let mut best = (u64::MAX, f64::MIN);
    let mut cb = |e: &TrainEvent| {
        if let TrainEvent::Eval(s) = e {
            eprintln!(
                "seed {seed}: {} steps, eval mean return {:.1}",
                s.timesteps, s.mean_return
            );
            if s.mean_return >= 475.0 && best.0 == u64::MAX {
                best = (s.timesteps, s.mean_return);
            }
        }
        ControlFlow::Continue(())
    };
    ppo.learn(Some(&mut eval_env), &mut cb).unwrap();
    let sps = ppo.num_timesteps as f64 / start.elapsed().as_secs_f64();
    (best.0, best.1, sps)
}

#[test]
fn ppo_solves_cartpole_for_three_seeds() {
    for seed in [1, 2, 3] {
        let (steps, ret, sps) = solve(seed);
        eprintln!("seed {seed}: solved at {steps} steps (return {ret:.1}), {sps:.0} steps/s");
        assert!(
            steps <= 100_000,
            "seed {seed}: mean evaluation return never reached 475 within 100k steps"
        );
    }
}

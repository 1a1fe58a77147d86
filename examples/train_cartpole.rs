//! Train PPO on CartPole-v1 with the RL-Zoo settings and report the evaluation return.
//!
//! ```text
//! cargo run --release -p quantrl --example train_cartpole            # 100k steps
//! cargo run --release -p quantrl --example train_cartpole -- 20000   # a shorter run
//! ```

use std::ops::ControlFlow;

use quantrl::prelude::*;

fn main() -> anyhow::Result<()> {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let config = TrainConfig {
        total_steps: steps,
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
    let mut ppo = Ppo::<DefaultAutodiffBackend, _>::new(config, env, &device)?;

    let mut report = |event: &TrainEvent| {
        if let TrainEvent::Eval(e) = event {
            println!(
                "{:>7} steps: evaluation return {:.1} ± {:.1}",
                e.timesteps, e.mean_return, e.std_return
            );
        }
        ControlFlow::Continue(())
    };
    let last = ppo.learn(Some(&mut eval_env), &mut report)?;
    if let Some(e) = last {
        println!(
            "final: {:.1} after {} steps",
            e.mean_return, ppo.num_timesteps
        );
    }
    Ok(())
}

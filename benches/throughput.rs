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
//! - `ppo_cartpole_e2e`: PPO with the RL-Zoo CartPole-v1 settings (8 envs, n_steps 32, batch
//!   256, 20 epochs), environment steps per second including every update (SB3 on the same
//!   machine: ~4,200 steps/s).

use std::time::Instant;

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
            let best = (0..3)
                .map(|_| cartpole_raw(n, 4_000_000 / n))
                .fold(0.0, f64::max);
            println!("| cartpole_raw_steps | {n} envs, best of 3 | {best:.0} |");
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

//! PPO trains with UPGD and AdaUPGD (with a value-head learning-rate group) on CartPole
//! without diverging, and clearly better than a random policy.

use burn::backend::{Autodiff, NdArray};
use quantrl_algos::{AdaUpgdConfig, EvalConfig, OptimizerConfig, Ppo, TrainConfig, UpgdConfig};
use quantrl_core::Schedule;
use quantrl_envs::{CartPole, CartPoleConfig};

type B = Autodiff<NdArray<f32>>;

fn train(optimizer: OptimizerConfig, lr: f64) -> f64 {
    let mut config = TrainConfig {
        seed: 1,
        total_steps: 30_000,
        optimizer,
        eval: EvalConfig {
            every: 0,
            episodes: 10,
            stop_at_return: None,
        },
        ..Default::default()
    };
    config.ppo.learning_rate = Schedule::Linear {
        start: lr,
        end: 0.0,
    };
    config.ppo.value_lr_multiplier = 2.0;
    let make = |n| {
        CartPole::new(CartPoleConfig {
            num_envs: n,
            ..Default::default()
        })
    };
    let device = Default::default();
    let mut ppo = Ppo::<B, _>::new(config, make(8), &device).unwrap();
    while !ppo.is_done() {
        // A non-finite loss or gradient would be Err(AlgoError::Diverged).
        let s = ppo.train_iteration().unwrap();
        assert!(s.loss.is_finite() && s.grad_norm.is_finite(), "{s:?}");
    }
    ppo.evaluate(&mut make(4), 10, 3).unwrap().mean_return
}

#[test]
fn ppo_trains_cartpole_with_upgd_and_adaupgd() {
    // A random policy averages about 22 on CartPole.
    let ada = train(OptimizerConfig::AdaUpgd(AdaUpgdConfig::default()), 1e-3);
    eprintln!("AdaUPGD: mean evaluation return {ada:.1}");
    assert!(ada > 100.0, "AdaUPGD: {ada}");
    let upgd = train(OptimizerConfig::Upgd(UpgdConfig::default()), 5e-2);
    eprintln!("UPGD: mean evaluation return {upgd:.1}");
    assert!(upgd > 60.0, "UPGD: {upgd}");
}

//! Distributional PPO: the quantile critic learns on a fixed batch, the CVaR objective moves
//! the policy away from a tail-risky action, masks are honoured, and a run with a quantile
//! critic, a CVaR constraint and AdaUPGD resumes from a checkpoint bit for bit.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData, activation::softmax};
use common::{cartpole, params};
use quantrl_algos::{
    CvarEstimate, CvarGradient, CvarPolicyConfig, DistributionalConfig, EvalConfig, EvalStats,
    OptimizerConfig, Ppo, TrainConfig, distributional_critic_loss, no_callback,
};
use quantrl_core::{Actions, EnvError, Rng, Space, StepBatch, VecEnv};
use quantrl_envs::CartPole;
use quantrl_losses::cvar::{CvarObjective, LagrangeMultiplier};
use quantrl_nets::{ActorCriticConfig, CriticReduction};
use quantrl_optim::AdamWSettings;

type B = Autodiff<NdArray<f32>>;

#[test]
fn quantile_critic_loss_decreases_on_a_fixed_batch() {
    let dev = Default::default();
    let (n, d, q) = (64, 4, 16);
    let mut rng = Rng::seed_from_u64(0);
    let obs: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    // Per row, 16 samples of N(obs[0], 0.5²): a distribution whose location depends on the
    // observation.
    let targets: Vec<f32> = (0..n)
        .flat_map(|i| {
            let loc = obs[i * d] as f64;
            (0..q)
                .map(|_| (loc + 0.5 * rng.normal()) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut model = ActorCriticConfig::new(d, 2)
        .with_hidden(vec![32])
        .with_n_quantiles(q)
        .with_twin_critic(true)
        .init::<B>(&dev);
    let mut optim = AdamWSettings::default().init::<B, _>();
    let x = Tensor::<B, 2>::from_data(TensorData::new(obs, [n, d]), &dev);
    let y = Tensor::<B, 2>::from_data(TensorData::new(targets, [n, q]), &dev);
    let mut losses = Vec::new();
    for _ in 0..300 {
        let current = model.forward(x.clone()).quantiles.unwrap();
        let loss = distributional_critic_loss(current, y.clone(), 1.0);
        losses.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // The learned quantiles are ordered like the targets' (the spread was learned, not only
    // the location): the top quantile is above the bottom one for most rows.
    let out = model.valid().forward(x.inner()).quantiles.unwrap();
    let v: Vec<f32> = out.into_data().to_vec().unwrap();
    let ordered = v
        .chunks_exact(q)
        .filter(|row| row[q - 1] > row[0] + 0.5)
        .count();
    assert!(
        ordered >= 2 * n * 9 / 10,
        "{ordered} of {} critic rows spread",
        2 * n
    );
}

/// One-step episodes with one observation: action 0 pays 0.5; action 1 pays +1 with
/// probability 0.9 and -2 with probability 0.1 (mean 0.7, CVaR_10% = -2).
struct RiskyBandit {
    n: usize,
    rng: Rng,
    obs: Space,
    act: Space,
}

impl VecEnv for RiskyBandit {
    fn num_envs(&self) -> usize {
        self.n
    }
    fn observation_space(&self) -> &Space {
        &self.obs
    }
    fn action_space(&self) -> &Space {
        &self.act
    }
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        if let Some(s) = seed {
            self.rng = Rng::seed_from_u64(s);
        }
        batch.obs.fill(1.0);
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        let a = actions.discrete_for(self.n, &self.act)?;
        for i in 0..self.n {
            let u = self.rng.uniform();
            batch.rewards[i] = match a[i] {
                0 => 0.5,
                _ if u < 0.1 => -2.0,
                _ => 1.0,
            };
            batch.terminated[i] = true;
            batch.truncated[i] = false;
            batch.final_obs[i] = 1.0;
        }
        batch.obs.fill(1.0);
        Ok(())
    }
    fn name(&self) -> &str {
        "RiskyBandit"
    }
}

fn bandit_probability_of_risky_action(weight: f64) -> f64 {
    bandit_probability_with(weight, CvarGradient::StateQuantiles)
}

fn bandit_probability_with(weight: f64, gradient: CvarGradient) -> f64 {
    let mut c = TrainConfig {
        seed: 3,
        total_steps: 8 * 32 * 40,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.policy.hidden = vec![16];
    c.ppo.n_envs = 8;
    c.ppo.n_steps = 32;
    c.ppo.batch_size = 64;
    c.ppo.n_epochs = 4;
    c.ppo.learning_rate = quantrl_core::Schedule::Constant(3e-3);
    c.ppo.distributional = Some(DistributionalConfig {
        n_quantiles: 20,
        twin_critics: true,
        twin_reduction: CriticReduction::ElementwiseMin,
        cvar: Some(CvarPolicyConfig {
            alpha: 0.1,
            objective: CvarObjective::Penalty { weight },
            gradient,
            ..Default::default()
        }),
        ..Default::default()
    });
    let env = RiskyBandit {
        n: 8,
        rng: Rng::seed_from_u64(0),
        obs: Space::uniform_box(1, 0.0, 1.0),
        act: Space::Discrete { n: 2 },
    };
    let dev = Default::default();
    let mut ppo = Ppo::<B, _>::new(c, env, &dev).unwrap();
    while !ppo.is_done() {
        let s = ppo.train_iteration().unwrap();
        // The episode shortfall shapes rewards and adds no surrogate term to the loss.
        let surrogate = gradient == CvarGradient::StateQuantiles;
        assert!(
            s.loss.is_finite() && s.cvar_loss.is_some_and(f64::is_finite) == surrogate,
            "{s:?}"
        );
    }
    let logits = ppo
        .model()
        .valid()
        .forward(Tensor::ones([1, 1], &dev))
        .logits;
    let p: Vec<f32> = softmax(logits, 1).into_data().to_vec().unwrap();
    p[1] as f64
}

#[test]
fn a_cvar_penalty_lowers_the_probability_of_the_tail_risky_action() {
    let neutral = bandit_probability_of_risky_action(0.0);
    let averse = bandit_probability_of_risky_action(3.0);
    eprintln!("P(risky action): weight 0 -> {neutral:.3}, weight 3 -> {averse:.3}");
    assert!(
        neutral > 0.6,
        "risk-neutral should prefer the higher mean: {neutral}"
    );
    assert!(
        averse < neutral - 0.3 && averse < 0.4,
        "the CVaR penalty should move away from the risky action: {neutral} -> {averse}"
    );
}

#[test]
fn the_episode_shortfall_moves_the_bandit_to_the_safe_action() {
    // On the return's own scale: mean + w CVaR_10% is 0.7 - 2w for the risky action and
    // 0.5 + 0.5w for the safe one, so the safe action is better from w = 0.08 on.
    let neutral = bandit_probability_with(0.0, CvarGradient::EpisodeShortfall);
    let averse = bandit_probability_with(0.5, CvarGradient::EpisodeShortfall);
    eprintln!(
        "P(risky action), episode shortfall: weight 0 -> {neutral:.3}, weight 0.5 -> {averse:.3}"
    );
    assert!(neutral > 0.6, "weight 0 is risk-neutral: {neutral}");
    assert!(
        averse < 0.2,
        "the shortfall penalty should move away from the risky action: {neutral} -> {averse}"
    );
}

fn distributional_config(total: u64, optimizer: OptimizerConfig) -> TrainConfig {
    let mut c = TrainConfig {
        seed: 5,
        total_steps: total,
        optimizer,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.ppo.n_epochs = 3;
    c.ppo.value_lr_multiplier = 2.0;
    c.ppo.distributional = Some(DistributionalConfig {
        n_quantiles: 8,
        twin_critics: true,
        cvar: Some(CvarPolicyConfig {
            alpha: 0.2,
            objective: CvarObjective::Constraint(LagrangeMultiplier::new(50.0, 0.01, 0.1).unwrap()),
            ..Default::default()
        }),
        ..Default::default()
    });
    c
}

#[test]
fn distributional_upgd_run_resumes_bit_for_bit() {
    let device = Default::default();
    let total = 256 * 6;
    let optimizer = OptimizerConfig::AdaUpgd(Default::default());
    let mut straight = Ppo::<B, _>::new(
        distributional_config(total, optimizer),
        cartpole(8),
        &device,
    )
    .unwrap();
    let mut weights = Vec::new();
    while !straight.is_done() {
        weights.push(straight.train_iteration().unwrap().cvar_weight.unwrap());
    }
    // The constraint (CVaR >= 50, unreachable early) raised the multiplier.
    assert!(weights.last().unwrap() > &0.1, "{weights:?}");

    let dir = std::env::temp_dir().join(format!("quantrl-dist-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = Ppo::<B, _>::new(
        distributional_config(total, optimizer),
        cartpole(8),
        &device,
    )
    .unwrap();
    while first.num_timesteps < total / 2 {
        first.train_iteration().unwrap();
    }
    first.save_checkpoint(&dir).unwrap();
    drop(first);
    let mut resumed = Ppo::<B, _>::resume(&dir, cartpole(8), None, &device).unwrap();
    resumed.learn::<CartPole>(None, &mut no_callback()).unwrap();
    assert_eq!(
        params(resumed.model()),
        params(straight.model()),
        "resumed run must equal the straight run bit for bit"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The estimates a CVaR constraint's multiplier can move with: the greedy evaluation's CVaR
/// once per evaluation (and only for that estimate), the training episodes' CVaR after each
/// update once enough episodes have finished.
#[test]
fn constraint_multiplier_moves_with_the_chosen_estimate() {
    let device = Default::default();
    let with = |estimate| {
        let mut c = distributional_config(256 * 8, OptimizerConfig::default());
        let d = c.ppo.distributional.as_mut().unwrap();
        d.cvar.as_mut().unwrap().estimate = estimate;
        c
    };
    // Threshold 50, lr 0.01, initial 0.1, α = 0.2.
    let step = |w: f64, cvar: f64| (w + 0.01 * (50.0 - cvar)).max(0.0);
    let eval = EvalStats {
        timesteps: 0,
        episodes: 10,
        mean_return: 5.5,
        std_return: 0.0,
        mean_length: 1.0,
        returns: (1..=10).map(f64::from).collect(),
    };

    let mut ppo =
        Ppo::<B, _>::new(with(CvarEstimate::GreedyEvaluation), cartpole(8), &device).unwrap();
    let stats = ppo.train_iteration().unwrap();
    assert_eq!(stats.cvar_estimate, None, "no move after an update");
    assert_eq!(stats.cvar_weight, Some(0.1));
    // n = 10: k = floor(9 * 0.2) = 1, VaR = 2, CVaR = mean(1, 2).
    assert_eq!(ppo.move_multiplier_with_evaluation(&eval), Some(1.5));
    let w = ppo.train_iteration().unwrap().cvar_weight.unwrap();
    assert!((w - step(0.1, 1.5)).abs() < 1e-12, "{w}");

    let mut ppo =
        Ppo::<B, _>::new(with(CvarEstimate::EpisodeReturns), cartpole(8), &device).unwrap();
    assert_eq!(ppo.move_multiplier_with_evaluation(&eval), None, "ignored");
    let (mut w, mut moves) = (0.1, 0);
    while !ppo.is_done() {
        let stats = ppo.train_iteration().unwrap();
        if let Some(c) = stats.cvar_estimate {
            // CartPole pays 1 a step: a CVaR of episode returns is a positive episode length.
            assert!(c >= 1.0, "{c}");
            w = step(w, c);
            moves += 1;
        }
        assert!((stats.cvar_weight.unwrap() - w).abs() < 1e-9, "{stats:?}");
    }
    assert!(moves > 0, "20 episodes finish within the run");
}

/// A checkpoint written before the quantile critic and the optimizer choice existed (AdamW
/// record, config without `kind` or `distributional`) still loads and trains on.
#[test]
fn a_checkpoint_from_before_the_options_still_resumes() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint_v1_adamw");
    let device = Default::default();
    let (state, model) =
        quantrl_algos::checkpoint::load_model::<B, quantrl_nets::ActorCritic<B>>(&dir, &device)
            .unwrap();
    assert_eq!(state.config.optimizer, OptimizerConfig::default());
    assert!(model.n_quantiles() == 0 && model.n_critics() == 1);
    let mut ppo = Ppo::<B, _>::resume(&dir, cartpole(2), Some(64), &device).unwrap();
    assert_eq!(ppo.num_timesteps, 32);
    let stats = ppo.train_iteration().unwrap();
    assert!(stats.loss.is_finite(), "{stats:?}");
}

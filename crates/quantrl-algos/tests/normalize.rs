//! Observation and reward normalization (`ppo.normalize`, SB3's `VecNormalize`): the network's
//! statistics are the running moments of the observations the policy acted on, training
//! rewards are scaled while reported returns are not, a saved network normalizes as in
//! training wherever it is loaded, a run resumes bit for bit, and PPO still solves CartPole.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use common::{cartpole, params};
use quantrl_algos::checkpoint::load_model;
use quantrl_algos::policy::evaluate;
use quantrl_algos::{
    EvalConfig, NormalizeConfig, PolicyNetwork, Ppo, RunningMeanStd, TrainConfig, no_callback,
};
use quantrl_envs::CartPole;
use quantrl_nets::ActorCritic;

type B = Autodiff<NdArray<f32>>;

fn config(total: u64, seed: u64) -> TrainConfig {
    let mut c = TrainConfig {
        seed,
        total_steps: total,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.ppo.normalize = Some(NormalizeConfig::default());
    c
}

#[test]
fn statistics_are_the_moments_of_the_observations_acted_on() {
    let device = Default::default();
    let mut ppo = Ppo::<B, _>::new(config(256 * 4, 3), cartpole(8), &device).unwrap();
    // Before any update: the identity.
    assert_eq!(ppo.model().obs_stats(), Some((vec![0.0; 4], vec![1.0; 4])));
    let mut reference = RunningMeanStd::new(4);
    while !ppo.is_done() {
        let stats = ppo.train_iteration().unwrap();
        assert!(stats.loss.is_finite(), "{stats:?}");
        let buffer = ppo.rollout_buffer();
        reference.update(&buffer.obs);
        let (mean, var) = ppo.model().obs_stats().unwrap();
        assert_eq!((mean, var), reference.as_f32());
        // Training rewards are CartPole's 1 per step scaled by the return spread (and
        // truncation bootstraps): none is the raw 1 once the spread is known.
        assert!(buffer.rewards.iter().all(|r| r.is_finite() && *r <= 10.0));
        assert!(buffer.rewards.iter().filter(|&&r| r == 1.0).count() < buffer.rewards.len() / 4);
        // Reported returns stay in the environment's units (whole numbers of steps).
        let (ret, len) = ppo.recent_episodes();
        if len > 0.0 {
            assert!((ret - len).abs() < 1e-6, "return {ret} vs length {len}");
        }
    }
    // CartPole's cart velocity and pole angle vary, so the statistics moved away from the
    // identity.
    assert!(
        reference.var.iter().all(|&v| v > 0.0 && v != 1.0),
        "{reference:?}"
    );
}

#[test]
fn a_saved_network_normalizes_as_in_training_and_the_run_resumes_bit_for_bit() {
    let device = Default::default();
    let total = 256 * 6;
    let mut straight = Ppo::<B, _>::new(config(total, 4), cartpole(8), &device).unwrap();
    straight
        .learn::<CartPole>(None, &mut no_callback())
        .unwrap();

    let dir = std::env::temp_dir().join(format!("quantrl-norm-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = Ppo::<B, _>::new(config(total, 4), cartpole(8), &device).unwrap();
    while first.num_timesteps < total / 2 {
        first.train_iteration().unwrap();
    }
    first.save_checkpoint(&dir).unwrap();

    // The loaded network carries the statistics and acts exactly as the learner's.
    let (state, loaded) =
        load_model::<NdArray<f32>, ActorCritic<NdArray<f32>>>(&dir, &device).unwrap();
    assert!(
        state
            .normalizer
            .as_ref()
            .is_some_and(|n| n.obs.is_some() && n.ret.is_some())
    );
    let learner_stats = first.model().obs_stats().unwrap();
    assert_ne!(learner_stats.1, vec![1.0; 4]);
    assert_eq!(loaded.obs_stats().unwrap(), learner_stats);
    let a = evaluate(&loaded, &mut cartpole(2), 6, 9, true, &device).unwrap();
    let b = first.evaluate(&mut cartpole(2), 6, 9).unwrap();
    assert_eq!(a.returns, b.returns);
    // Without the statistics the same weights act differently (the normalization matters).
    let raw = loaded.clone().with_obs_stats(&[0.0; 4], &[1.0; 4]);
    let x = Tensor::<NdArray<f32>, 2>::from_data([[0.05f32, 0.4, -0.03, -0.6]], &device);
    let (l1, l2) = (
        loaded
            .forward(x.clone())
            .logits
            .into_data()
            .to_vec::<f32>()
            .unwrap(),
        raw.forward(x).logits.into_data().to_vec::<f32>().unwrap(),
    );
    assert_ne!(l1, l2);
    drop(first);

    let mut resumed = Ppo::<B, _>::resume(&dir, cartpole(8), None, &device).unwrap();
    resumed.learn::<CartPole>(None, &mut no_callback()).unwrap();
    assert_eq!(
        params(resumed.model()),
        params(straight.model()),
        "resumed run must equal the straight run bit for bit"
    );
    assert_eq!(resumed.model().obs_stats(), straight.model().obs_stats());

    // A checkpoint whose statistics were lost is refused, naming the problem.
    let state_path = dir.join("state.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    json["normalizer"] = serde_json::Value::Null;
    let bytes = serde_json::to_vec_pretty(&json).unwrap();
    std::fs::write(&state_path, bytes).unwrap();
    let err = match Ppo::<B, _>::resume(&dir, cartpole(8), None, &device) {
        Ok(_) => panic!("a checkpoint without its normalization statistics resumed"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("normalization"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PPO with normalized observations and rewards still solves CartPole-v1 (the RL-Zoo
/// settings, 100k steps, greedy evaluation of 20 episodes).
#[test]
fn normalized_ppo_solves_cartpole() {
    let device = Default::default();
    let mut c = config(100_000, 1);
    c.eval = EvalConfig {
        every: 10_000,
        episodes: 20,
        stop_at_return: Some(475.0),
    };
    let mut ppo = Ppo::<B, _>::new(c, cartpole(8), &device).unwrap();
    let eval = ppo
        .learn(Some(&mut cartpole(4)), &mut no_callback())
        .unwrap()
        .unwrap();
    eprintln!(
        "normalized PPO: {} steps, eval {:.1}",
        eval.timesteps, eval.mean_return
    );
    assert!(eval.mean_return >= 475.0, "{eval:?}");
}

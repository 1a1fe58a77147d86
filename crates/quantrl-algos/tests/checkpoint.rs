//! Checkpoints resume the same run: training N steps straight equals training N/2, saving,
//! loading into a fresh learner and training the rest. Damaged checkpoints are typed errors.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::{cartpole, params};
use quantrl_algos::{AlgoError, CheckpointError, EvalConfig, Ppo, TrainConfig, no_callback};
use quantrl_envs::{CartPole, CartPoleConfig};

type B = Autodiff<NdArray<f32>>;

fn config(total: u64) -> TrainConfig {
    let mut c = TrainConfig {
        seed: 9,
        total_steps: total,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.ppo.n_epochs = 3;
    c
}

fn env() -> CartPole {
    cartpole(8)
}

#[test]
fn resume_continues_the_same_run() {
    let device = Default::default();
    let total = 256 * 8;
    let mut straight = Ppo::<B, _>::new(config(total), env(), &device).unwrap();
    straight
        .learn::<CartPole>(None, &mut no_callback())
        .unwrap();

    let dir = std::env::temp_dir().join(format!("quantrl-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = Ppo::<B, _>::new(config(total), env(), &device).unwrap();
    while first.num_timesteps < total / 2 {
        first.train_iteration().unwrap();
    }
    first.save_checkpoint(&dir).unwrap();
    drop(first);
    let mut resumed = Ppo::<B, _>::resume(&dir, env(), None, &device).unwrap();
    assert_eq!(resumed.num_timesteps, total / 2);
    resumed.learn::<CartPole>(None, &mut no_callback()).unwrap();
    assert_eq!(resumed.num_timesteps, straight.num_timesteps);
    assert_eq!(
        params(resumed.model()),
        params(straight.model()),
        "resumed run must equal the straight run bit for bit"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn assert_corrupt(e: AlgoError) {
    assert!(
        matches!(e, AlgoError::Checkpoint(CheckpointError::Corrupt { .. })),
        "{e}"
    );
}

#[test]
fn damaged_checkpoints_are_typed_errors() {
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("quantrl-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let missing = Ppo::<B, _>::resume(&dir, env(), None, &device)
        .err()
        .unwrap();
    assert!(
        matches!(
            missing,
            AlgoError::Checkpoint(CheckpointError::Missing { .. })
        ),
        "{missing}"
    );

    let mut ppo = Ppo::<B, _>::new(config(512), env(), &device).unwrap();
    ppo.train_iteration().unwrap();
    ppo.save_checkpoint(&dir).unwrap();
    // Another environment: a mismatch, not a crash.
    let novel = CartPole::new(CartPoleConfig {
        num_envs: 8,
        hide_velocity: true,
        ..Default::default()
    });
    let e = Ppo::<B, _>::resume(&dir, novel, None, &device)
        .err()
        .unwrap();
    assert!(
        matches!(e, AlgoError::Checkpoint(CheckpointError::Mismatch { .. })),
        "{e}"
    );
    // Truncated optimizer state.
    let optim = dir.join("optimizer.mpk");
    let bytes = std::fs::read(&optim).unwrap();
    std::fs::write(&optim, &bytes[..bytes.len() / 3]).unwrap();
    assert_corrupt(
        Ppo::<B, _>::resume(&dir, env(), None, &device)
            .err()
            .unwrap(),
    );
    // Consistent manifest but garbage record bytes: decoding fails cleanly.
    std::fs::write(&optim, b"not a record").unwrap();
    let state_path = dir.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    for f in state["files"].as_array_mut().unwrap() {
        if f["name"] == "optimizer.mpk" {
            f["bytes"] = 12.into();
            f["fnv64"] = quantrl_algos::checkpoint::fnv64(b"not a record").into();
        }
    }
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();
    assert_corrupt(
        Ppo::<B, _>::resume(&dir, env(), None, &device)
            .err()
            .unwrap(),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

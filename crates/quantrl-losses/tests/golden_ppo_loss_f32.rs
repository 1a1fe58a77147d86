//! The PPO loss in float32 against what Stable-Baselines3's own `PPO.train()` produced
//! (`expected_sb3_float32` in `ppo_loss.json`). A separate binary from the float64 test: Burn
//! 0.21 fixes a device's default float dtype at its first use in a process.

mod common;

use burn::backend::{Autodiff, NdArray};
use quantrl_testkit::load;

#[test]
fn ppo_loss_matches_sb3_float32() {
    let golden = load("ppo_loss");
    for case in golden.cases() {
        if case.get("expected_sb3_float32").is_some() {
            common::run_case::<Autodiff<NdArray<f32>>>(&golden, case, "expected_sb3_float32");
        }
    }
}

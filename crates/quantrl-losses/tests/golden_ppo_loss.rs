//! The PPO loss against Stable-Baselines3 2.9.2 (`ppo_loss.json`): values and gradients of
//! every case, in float64 at the file's tight tolerance.

mod common;

use burn::backend::{Autodiff, NdArray};
use quantrl_losses::ppo::PpoLossConfig;
use quantrl_testkit::load;

#[test]
fn ppo_loss_matches_sb3_float64() {
    let golden = load("ppo_loss");
    for case in golden.cases() {
        common::run_case::<Autodiff<NdArray<f64>>>(&golden, case, "expected");
    }
}

#[test]
fn bad_clip_is_a_config_error() {
    let c = PpoLossConfig {
        clip_range: 1.5,
        ..Default::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("clip_range") && e.contains("1.5"), "{e}");
}

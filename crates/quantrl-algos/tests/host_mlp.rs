//! The host path of the feed-forward PPO (`policy.host_mlp`, the default: rollouts and
//! minibatches through `quantrl_nets::host_mlp` and `quantrl_losses::host`) trains the same
//! network as Burn's graph: from one seed, the same rollouts (to float rounding), the same
//! loss terms and the same parameters after whole updates, with and without action masks,
//! observation normalization, value clipping and a shared trunk. Configurations it does not
//! cover (a quantile critic) fall back to Burn's graph.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::{cartpole, params};
use quantrl_algos::{
    AdaUpgdConfig, EvalConfig, NormalizeConfig, OptimizerConfig, Ppo, TrainConfig,
};
use quantrl_core::VecEnv;
use quantrl_envs::{MaskedIdentity, MaskedIdentityConfig};
use quantrl_optim::AdamWSettings;

type B = Autodiff<NdArray<f32>>;

fn config(seed: u64, host: bool) -> TrainConfig {
    let mut c = TrainConfig {
        seed,
        total_steps: 1 << 20,
        eval: EvalConfig {
            every: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    c.policy.host_mlp = host;
    c.ppo.n_envs = 8;
    c.ppo.n_steps = 32;
    c.ppo.batch_size = 64;
    c.ppo.n_epochs = 4;
    c
}

/// Largest absolute difference, and the largest magnitude, of two equally long vectors.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let m = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
    (d, m)
}

/// Two learners differing only in `policy.host_mlp`, run for `iterations` rollouts and
/// updates: rollouts, loss terms and parameters must agree.
fn compare<E: VecEnv>(make: impl Fn() -> E, tweak: impl Fn(&mut TrainConfig), iterations: usize) {
    let device = Default::default();
    let mut learners = [true, false].map(|host| {
        let mut c = config(7, host);
        tweak(&mut c);
        Ppo::<B, E>::new(c, make(), &device).unwrap()
    });
    assert_eq!(
        params(learners[0].model()),
        params(learners[1].model()),
        "same initial weights"
    );
    for it in 0..iterations {
        let [host, graph] = &mut learners;
        host.collect_rollout().unwrap();
        graph.collect_rollout().unwrap();
        let (hb, gb) = (host.rollout_buffer(), graph.rollout_buffer());
        assert_eq!(
            hb.actions, gb.actions,
            "iteration {it}: same actions sampled"
        );
        let (d, m) = max_diff(&hb.values, &gb.values);
        assert!(
            d <= 1e-4 * (1.0 + m),
            "iteration {it}: values differ by {d}"
        );
        let (d, _) = max_diff(&hb.log_probs, &gb.log_probs);
        assert!(d <= 1e-4, "iteration {it}: log-probabilities differ by {d}");
        let (hs, gs) = (host.update().unwrap(), graph.update().unwrap());
        for (name, h, g) in [
            ("policy loss", hs.policy_loss, gs.policy_loss),
            ("value loss", hs.value_loss, gs.value_loss),
            ("entropy loss", hs.entropy_loss, gs.entropy_loss),
            ("approx kl", hs.approx_kl, gs.approx_kl),
            ("grad norm", hs.grad_norm, gs.grad_norm),
        ] {
            assert!(
                (h - g).abs() <= 1e-3 * (1.0 + g.abs()),
                "iteration {it}: {name} {h} (host) vs {g} (graph)"
            );
        }
        assert_eq!(hs.epochs, gs.epochs);
        let (d, m) = max_diff(&params(host.model()), &params(graph.model()));
        assert!(
            d <= 1e-4 * (1.0 + m),
            "iteration {it}: parameters differ by {d} (largest {m})"
        );
    }
}

#[test]
fn host_path_trains_like_the_graph_on_cartpole() {
    compare(|| cartpole(8), |_| {}, 3);
}

#[test]
fn host_path_trains_like_the_graph_with_normalization_value_clipping_and_a_shared_trunk() {
    compare(
        || cartpole(8),
        |c| {
            c.ppo.normalize = Some(NormalizeConfig::default());
            c.ppo.clip_range_vf = Some(0.2);
            c.ppo.ent_coef = 0.01;
            c.policy.shared_trunk = true;
            c.policy.activation = quantrl_nets::Activation::Relu;
        },
        3,
    );
}

#[test]
fn host_path_trains_like_the_graph_with_action_masks() {
    compare(
        || {
            MaskedIdentity::new(MaskedIdentityConfig {
                num_envs: 8,
                ..Default::default()
            })
            .unwrap()
        },
        |c| c.ppo.ent_coef = 0.01,
        2,
    );
}

#[test]
fn host_adamw_steps_like_burns_with_weight_decay_and_a_value_head_group() {
    // AdamW runs on the host (its state taken out of Burn's optimizer at each update and
    // put back at its end); the graph path steps Burn's AdamW.
    compare(
        || cartpole(8),
        |c| {
            c.ppo.value_lr_multiplier = 2.0;
            c.optimizer = OptimizerConfig::AdamW(AdamWSettings {
                weight_decay: 0.01,
                ..Default::default()
            });
        },
        3,
    );
}

#[test]
fn host_path_with_upgd_steps_through_burn() {
    // Optimizers other than AdamW keep Burn's step on the host gradients.
    compare(
        || cartpole(8),
        |c| c.optimizer = OptimizerConfig::AdaUpgd(AdaUpgdConfig::default()),
        2,
    );
}

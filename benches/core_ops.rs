//! Criterion micro-benchmarks of the pieces of a PPO iteration.
//!
//! ```text
//! cargo bench -p quantrl --bench core_ops
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use quantrl::algos::gae::compute_gae;
use quantrl::burn::module::AutodiffModule;
use quantrl::burn::optim::{GradientsParams, Optimizer};
use quantrl::burn::tensor::{Distribution, Tensor};
use quantrl::nets::HostActorCritic;
use quantrl::optim::AdamWSettings;
use quantrl::prelude::*;

fn cartpole_step(c: &mut Criterion) {
    for n in [8usize, 256] {
        let mut env = CartPole::new(CartPoleConfig {
            num_envs: n,
            ..Default::default()
        });
        let mut batch = StepBatch::for_env(&env);
        env.reset(Some(0), &mut batch);
        let actions: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
        c.bench_function(&format!("cartpole_step_{n}_envs"), |b| {
            b.iter(|| {
                env.step(Actions::Discrete(black_box(&actions)), &mut batch)
                    .unwrap()
            })
        });
    }
}

fn gae(c: &mut Criterion) {
    for (steps, envs) in [(32usize, 8usize), (2048, 8)] {
        let n = steps * envs;
        let mut rng = Rng::seed_from_u64(0);
        let rewards: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let values: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let starts: Vec<f32> = (0..n)
            .map(|_| (rng.uniform() < 0.02) as u8 as f32)
            .collect();
        let (last, dones) = (vec![0.5f32; envs], vec![0.0f32; envs]);
        let (mut adv, mut ret) = (vec![0f32; n], vec![0f32; n]);
        c.bench_function(&format!("gae_{steps}x{envs}"), |b| {
            b.iter(|| {
                compute_gae(
                    &rewards, &values, &starts, &last, &dones, 0.99, 0.95, envs, &mut adv, &mut ret,
                )
            })
        });
    }
}

fn network(c: &mut Criterion) {
    let device = Default::default();
    for activation in [Activation::Tanh, Activation::TanhNative, Activation::Relu] {
        for batch in [8usize, 256, 2048] {
            let net: ActorCritic<DefaultAutodiffBackend> = ActorCriticConfig::new(4, 2)
                .with_activation(activation)
                .init(&device);
            let x = Tensor::<DefaultBackend, 2>::random(
                [batch, 4],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let valid = net.valid();
            c.bench_function(
                &format!("actor_critic_inference_{activation:?}_b{batch}"),
                |b| {
                    b.iter(|| {
                        let out = valid.forward(x.clone());
                        black_box(out.logits.into_data());
                    })
                },
            );
            if batch == 8 {
                continue;
            }
            let mut model = net.clone();
            let mut optim = AdamWSettings::default()
                .init::<DefaultAutodiffBackend, ActorCritic<DefaultAutodiffBackend>>();
            let xa = Tensor::<DefaultAutodiffBackend, 2>::from_inner(x.clone());
            c.bench_function(
                &format!("actor_critic_forward_backward_adamw_{activation:?}_b{batch}"),
                |b| {
                    b.iter(|| {
                        let out = model.forward(xa.clone());
                        let loss = out.logits.sum() + out.values.sum();
                        let grads = GradientsParams::from_grads(loss.backward(), &model);
                        model = optim.step(1e-4, model.clone(), grads);
                    })
                },
            );
        }
    }
}

/// The host path's network pieces (`quantrl_nets::host_mlp`): a rollout step's forward at
/// batch 8, and one minibatch's forward and backward (no optimizer step) at 256 and 2048.
fn host_network(c: &mut Criterion) {
    let device = Default::default();
    let net: ActorCritic<DefaultBackend> = ActorCriticConfig::new(4, 2).init(&device);
    let host = HostActorCritic::from_actor_critic(&net).expect("scalar critic");
    for batch in [8usize, 256, 2048] {
        let x: Vec<f32> = (0..batch * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        c.bench_function(&format!("host_actor_critic_inference_b{batch}"), |b| {
            b.iter(|| black_box(host.forward(&x, batch).logits))
        });
        if batch == 8 {
            continue;
        }
        let (d_logits, d_values) = (vec![1f32; batch * 2], vec![1f32; batch]);
        c.bench_function(
            &format!("host_actor_critic_forward_backward_b{batch}"),
            |b| {
                b.iter(|| {
                    let mut tape = host.forward(&x, batch);
                    black_box(host.backward(&mut tape, &d_logits, &d_values))
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = cartpole_step, gae, network, host_network
}
criterion_main!(benches);

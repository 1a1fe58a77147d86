//! One training step (forward, backward, optimizer step) of a 64x64 MLP actor-critic-sized
//! network, batch 256, with AdamW, UPGD and AdaUPGD on the NdArray backend (float32), and the
//! forward and backward alone (`fwd_bwd_only`), so that the optimizer's own share can be read
//! off as the difference.
//!
//! `cargo bench -p quantrl-optim --bench optimizer_step`

use std::cell::RefCell;
use std::hint::black_box;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor, backend::Backend};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use quantrl_optim::{AdamWSettings, BackendNoise, RngNoise, UpgdSettings};

type B = Autodiff<NdArray<f32>>;

const OBS: usize = 32;
const HIDDEN: usize = 64;
const ACTIONS: usize = 5;
const BATCH: usize = 256;

/// Two tanh layers of 64, then a policy head (5 logits) and a value head, as
/// `quantrl-nets`'s shared-trunk actor-critic.
#[derive(Module, Debug)]
struct ActorCritic<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
    policy: Linear<B>,
    value: Linear<B>,
}

impl<B: Backend> ActorCritic<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            l1: LinearConfig::new(OBS, HIDDEN).init(device),
            l2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            policy: LinearConfig::new(HIDDEN, ACTIONS).init(device),
            value: LinearConfig::new(HIDDEN, 1).init(device),
        }
    }

    fn loss(&self, x: Tensor<B, 2>) -> Tensor<B, 1> {
        let h = tanh(self.l2.forward(tanh(self.l1.forward(x))));
        let logits = self.policy.forward(h.clone());
        let v = self.value.forward(h);
        logits.square().mean() + v.square().mean()
    }
}

/// `tanh` through one `exp`, as `quantrl-nets` computes it (Burn's CPU `tanh` is ~10x slower
/// and would hide the optimizer's cost).
fn tanh<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.mul_scalar(2.0)
        .exp()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(-2.0)
        .add_scalar(1.0)
}

fn bench_step<O: Optimizer<ActorCritic<B>, B>>(c: &mut Criterion, name: &str, mut optim: O) {
    let device = Default::default();
    let mut model = Some(ActorCritic::<B>::new(&device));
    let x = Tensor::<B, 2>::random([BATCH, OBS], Distribution::Normal(0.0, 1.0), &device);
    c.bench_function(name, |b| {
        b.iter(|| {
            let m = model.take().unwrap();
            let loss = m.loss(x.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optim.step(1e-4, m, grads));
        })
    });
    black_box(model);
}

/// The optimizer step alone: forward and backward run in criterion's untimed setup.
fn bench_step_only<O: Optimizer<ActorCritic<B>, B>>(c: &mut Criterion, name: &str, mut optim: O) {
    let device = Default::default();
    let model = RefCell::new(Some(ActorCritic::<B>::new(&device)));
    let x = Tensor::<B, 2>::random([BATCH, OBS], Distribution::Normal(0.0, 1.0), &device);
    c.bench_function(&format!("step_only/{name}"), |b| {
        b.iter_batched(
            || {
                let m = model.borrow_mut().take().unwrap();
                let grads = GradientsParams::from_grads(m.loss(x.clone()).backward(), &m);
                (m, grads)
            },
            |(m, grads)| {
                *model.borrow_mut() = Some(optim.step(1e-4, m, grads));
            },
            BatchSize::PerIteration,
        )
    });
}

fn fwd_bwd_only(c: &mut Criterion) {
    let device = Default::default();
    let model = ActorCritic::<B>::new(&device);
    let x = Tensor::<B, 2>::random([BATCH, OBS], Distribution::Normal(0.0, 1.0), &device);
    c.bench_function("fwd_bwd_only", |b| {
        b.iter(|| {
            let loss = model.loss(x.clone());
            black_box(GradientsParams::from_grads(loss.backward(), &model));
        })
    });
}

fn steps(c: &mut Criterion) {
    fwd_bwd_only(c);
    bench_step(
        c,
        "adamw",
        AdamWSettings::default().init::<B, ActorCritic<B>>(),
    );
    let rng = || RngNoise::seed_from_u64(0);
    bench_step(
        c,
        "upgd",
        UpgdSettings::first_order_global().init::<B, _>(rng()),
    );
    bench_step(c, "adaupgd", UpgdSettings::adaupgd().init::<B, _>(rng()));
    bench_step(
        c,
        "adaupgd_backend_noise",
        UpgdSettings::adaupgd().init::<B, _>(BackendNoise),
    );
    let local = UpgdSettings {
        scope: quantrl_optim::UtilityScope::Local,
        ..UpgdSettings::adaupgd()
    };
    bench_step(c, "adaupgd_local", local.init::<B, _>(rng()));

    bench_step_only(
        c,
        "adamw",
        AdamWSettings::default().init::<B, ActorCritic<B>>(),
    );
    bench_step_only(
        c,
        "upgd",
        UpgdSettings::first_order_global().init::<B, _>(rng()),
    );
    bench_step_only(c, "adaupgd", UpgdSettings::adaupgd().init::<B, _>(rng()));
    bench_step_only(
        c,
        "adaupgd_backend_noise",
        UpgdSettings::adaupgd().init::<B, _>(BackendNoise),
    );
    let sigma0 = UpgdSettings {
        sigma: 0.0,
        ..UpgdSettings::adaupgd()
    };
    bench_step_only(c, "adaupgd_sigma0", sigma0.init::<B, _>(rng()));
}

criterion_group!(benches, steps);
criterion_main!(benches);

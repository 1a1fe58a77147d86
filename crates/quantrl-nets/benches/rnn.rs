//! Criterion benchmarks of the recurrent encoders (see `docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo bench -p quantrl-nets --bench rnn
//! ```
//!
//! - `bptt_*`: one gradient step (forward over T = 32 at batch 8, 64 -> 64, backward, AdamW) of
//!   our GRU and LSTM and of Burn's own `burn::nn::Gru` doing the same.
//! - `step_*_b8`: one inference step at batch 8 (no autodiff).
//! - `gru_policy_*`: a GRU policy (64 inputs, 256 hidden, 16 logits through a linear head), one
//!   decision at batch 1 (latency) and at batch 256 (throughput), no autodiff; through Burn
//!   (`decision_b*`), through host snapshots of the same weights (`host_decision_b*`) and
//!   through host snapshots with the weights rounded to bfloat16 (`host_bf16_decision_b*`).

use std::hint::black_box;

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor, backend::Backend};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quantrl_nets::{EncoderState, Gru, HostGru, HostLinear, RnnConfig, SequenceEncoder};

type I = NdArray<f32>;
type A = Autodiff<I>;

const T: usize = 32;
const BATCH: usize = 8;
const F: usize = 64;
const H: usize = 64;

fn bptt_ours<M>(c: &mut Criterion, label: &str, net: M)
where
    M: SequenceEncoder<A> + AutodiffModule<A>,
{
    let device = Default::default();
    let x = Tensor::<A, 3>::random([BATCH, T, F], Distribution::Normal(0.0, 1.0), &device);
    let starts = Tensor::<A, 2>::zeros([BATCH, T], &device);
    let mut optim = AdamWConfig::new().init::<A, M>();
    let mut net = Some(net);
    c.bench_function(label, |b| {
        b.iter(|| {
            let m = net.take().unwrap();
            let s0 = m.initial_state(BATCH, &device);
            let (out, _) = m.forward_seq(x.clone(), s0, starts.clone());
            let loss = out.powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            net = Some(optim.step(1e-4, m, grads));
        })
    });
}

fn bptt(c: &mut Criterion) {
    let device = Default::default();
    let cfg = RnnConfig::new(F, H);
    bptt_ours(c, "bptt_gru_ours_t32_b8_64", cfg.init_gru::<A>(&device));
    bptt_ours(c, "bptt_lstm_ours_t32_b8_64", cfg.init_lstm::<A>(&device));

    let x = Tensor::<A, 3>::random([BATCH, T, F], Distribution::Normal(0.0, 1.0), &device);
    let burn_gru = burn::nn::gru::GruConfig::new(F, H, true).init::<A>(&device);
    let mut optim = AdamWConfig::new().init();
    let mut net = Some(burn_gru);
    c.bench_function("bptt_gru_burn_nn_t32_b8_64", |b| {
        b.iter(|| {
            let m = net.take().unwrap();
            let out = m.forward(x.clone(), None);
            let loss = out.powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            net = Some(optim.step(1e-4, m, grads));
        })
    });
}

fn inference_step<M: SequenceEncoder<I>>(c: &mut Criterion, label: &str, net: &M, batch: usize) {
    let device = Default::default();
    let x = Tensor::<I, 2>::random(
        [batch, net.input_dim()],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let starts = Tensor::<I, 1>::zeros([batch], &device);
    let mut state = Some(net.initial_state(batch, &device));
    c.bench_function(label, |b| {
        b.iter(|| {
            let (out, s) = net.step(x.clone(), state.take().unwrap(), starts.clone());
            state = Some(s);
            black_box(out)
        })
    });
}

fn steps(c: &mut Criterion) {
    let device = Default::default();
    let cfg = RnnConfig::new(F, H);
    inference_step(c, "step_gru_b8_64", &cfg.init_gru::<I>(&device), BATCH);
    inference_step(c, "step_lstm_b8_64", &cfg.init_lstm::<I>(&device), BATCH);
}

/// A GRU policy: GRU encoder and a linear head over its output.
struct GruPolicy<B: Backend> {
    gru: Gru<B>,
    head: Linear<B>,
}

impl<B: Backend> GruPolicy<B> {
    fn decide(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        let (h, s) = self.gru.step(obs, state, start);
        (self.head.forward(h), s)
    }
}

fn policy(c: &mut Criterion) {
    let device = Default::default();
    let net = GruPolicy::<I> {
        gru: RnnConfig::new(64, 256).init_gru(&device),
        head: LinearConfig::new(256, 16).init(&device),
    };
    let mut group = c.benchmark_group("gru_policy_64_256_16");
    for batch in [1usize, 256] {
        let x = Tensor::<I, 2>::random([batch, 64], Distribution::Normal(0.0, 1.0), &device);
        let starts = Tensor::<I, 1>::zeros([batch], &device);
        let mut state = Some(net.gru.initial_state(batch, &device));
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("decision_b{batch}"), |b| {
            b.iter(|| {
                let (logits, s) = net.decide(x.clone(), state.take().unwrap(), starts.clone());
                state = Some(s);
                black_box(logits.into_data())
            })
        });
    }
    // The same policy as host snapshots (weights copied once to plain slices), in f32 and
    // with the weights rounded to bfloat16.
    let (hg, hl) = (
        HostGru::from_gru(&net.gru),
        HostLinear::from_linear(&net.head),
    );
    let (bg, bl) = (hg.with_bf16_weights(), hl.with_bf16_weights());
    for (name, g, l) in [("host", &hg, &hl), ("host_bf16", &bg, &bl)] {
        for batch in [1usize, 256] {
            let obs: Vec<f32> = (0..batch * 64).map(|i| (i as f32 * 0.37).sin()).collect();
            let starts = vec![false; batch];
            let mut state = g.initial_state(batch);
            let (mut h, mut logits) = (vec![0f32; batch * 256], vec![0f32; batch * 16]);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{name}_decision_b{batch}"), |b| {
                b.iter(|| {
                    g.step(black_box(&obs), &mut state, &starts, &mut h);
                    l.forward(&h, &mut logits);
                    black_box(logits[0])
                })
            });
        }
    }
    group.finish();
    black_box(net.gru.num_params());
}

criterion_group!(benches, bptt, steps, policy);
criterion_main!(benches);

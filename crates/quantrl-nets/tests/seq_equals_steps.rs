//! Property: for every encoder (and the recurrent actor-critic), `forward_seq` over a sequence
//! equals a loop of `step` calls, episode-start resets included, outputs and final state.

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use proptest::prelude::*;
use quantrl_nets::{
    EncoderConfig, EncoderKind, EncoderState, RecurrentActorCriticConfig, SequenceEncoder,
};

type B = NdArray<f32>;

const TOL: f32 = 2e-4;

fn close(what: &str, a: Vec<f32>, b: Vec<f32>) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        prop_assert!(
            (x - y).abs() <= TOL * (1.0 + y.abs()),
            "{}[{}]: seq {} vs steps {}",
            what,
            i,
            x,
            y
        );
    }
    Ok(())
}

fn v<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn config(kind: EncoderKind) -> EncoderConfig {
    let c = EncoderConfig::new(kind).with_hidden(8);
    match kind {
        EncoderKind::Mlp | EncoderKind::Gru | EncoderKind::Lstm => c.with_num_layers(2),
        EncoderKind::Clstm => c.with_window(3).with_hidden(4),
        EncoderKind::Gtrxl => c.with_num_layers(2).with_memory_len(3),
        EncoderKind::Transformer => c.with_window(3).with_num_layers(1),
    }
}

/// Random observations, starts and a non-zero incoming state (one warm-up sequence).
fn inputs(
    b: usize,
    t: usize,
    obs_dim: usize,
    seed: u64,
    start_bits: &[bool],
) -> (Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 3>) {
    let dev = Default::default();
    let obs: Vec<f32> = (0..b * t * obs_dim)
        .map(|i| ((i as f64 * 0.731 + seed as f64 * 1.37).sin() * 1.5) as f32)
        .collect();
    let starts: Vec<f32> = (0..b * t).map(|i| start_bits[i] as u8 as f32).collect();
    let warm: Vec<f32> = (0..b * t * obs_dim)
        .map(|i| ((i as f64 * 0.377 + seed as f64).cos()) as f32)
        .collect();
    (
        Tensor::from_data(TensorData::new(obs, [b, t, obs_dim]), &dev),
        Tensor::from_data(TensorData::new(starts, [b, t]), &dev),
        Tensor::from_data(TensorData::new(warm, [b, t, obs_dim]), &dev),
    )
}

fn check_encoder(
    kind: EncoderKind,
    b: usize,
    t: usize,
    seed: u64,
    bits: &[bool],
) -> Result<(), TestCaseError> {
    let dev = Default::default();
    let obs_dim = 6;
    let enc = config(kind).init::<B>(obs_dim, seed, &dev);
    let (obs, starts, warm) = inputs(b, t, obs_dim, seed, bits);
    // A non-zero incoming state, so that resets matter.
    let (_, s0) = enc.forward_seq(
        warm,
        enc.initial_state(b, &dev),
        Tensor::zeros([b, t], &dev),
    );
    let (seq_out, seq_state) = enc.forward_seq(obs.clone(), s0.clone(), starts.clone());
    let mut state = s0;
    let mut outs = Vec::new();
    for k in 0..t {
        let x = obs.clone().slice([0..b, k..k + 1]).reshape([b, obs_dim]);
        let s = starts.clone().slice([0..b, k..k + 1]).reshape([b]);
        let (o, next) = enc.step(x, state, s);
        outs.push(o);
        state = next;
    }
    let loop_out = Tensor::stack::<3>(outs, 1);
    close(&format!("{kind:?} output"), v(seq_out), v(loop_out))?;
    prop_assert_eq!(seq_state.tensors.len(), state.tensors.len());
    for (a, c) in seq_state.tensors.into_iter().zip(state.tensors) {
        close(&format!("{kind:?} state"), v(a), v(c))?;
    }
    Ok(())
}

const KINDS: [EncoderKind; 6] = [
    EncoderKind::Mlp,
    EncoderKind::Gru,
    EncoderKind::Lstm,
    EncoderKind::Clstm,
    EncoderKind::Gtrxl,
    EncoderKind::Transformer,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn forward_seq_equals_step_loop(
        b in 1usize..4,
        t in 1usize..7,
        seed in 0u64..1000,
        bits in proptest::collection::vec(proptest::bool::weighted(0.25), 24),
    ) {
        for kind in KINDS {
            check_encoder(kind, b, t, seed, &bits)?;
        }
    }

    #[test]
    fn actor_critic_forward_seq_equals_step_loop(
        shared in any::<bool>(),
        kind_index in 0usize..6,
        seed in 0u64..1000,
        bits in proptest::collection::vec(proptest::bool::weighted(0.3), 24),
    ) {
        let (b, t, obs_dim) = (3, 5, 6);
        let dev = Default::default();
        let net = RecurrentActorCriticConfig::new(obs_dim, 4, config(KINDS[kind_index]))
            .with_shared_encoder(shared)
            .with_seed(seed)
            .init::<B>(&dev);
        let (obs, starts, warm) = inputs(b, t, obs_dim, seed, &bits);
        let s0 = net.forward_seq(warm, net.initial_state(b, &dev), Tensor::zeros([b, t], &dev)).state;
        let seq = net.forward_seq(obs.clone(), s0.clone(), starts.clone());
        let mut state: EncoderState<B> = s0;
        let (mut logits, mut values) = (Vec::new(), Vec::new());
        for k in 0..t {
            let x = obs.clone().slice([0..b, k..k + 1]).reshape([b, obs_dim]);
            let s = starts.clone().slice([0..b, k..k + 1]).reshape([b]);
            let out = net.step(x, state, s);
            logits.push(out.logits);
            values.push(out.values);
            state = out.state;
        }
        close("logits", v(seq.logits), v(Tensor::stack::<3>(logits, 1)))?;
        close("values", v(seq.values), v(Tensor::stack::<2>(values, 1)))?;
        for (a, c) in seq.state.tensors.into_iter().zip(state.tensors) {
            close("state", v(a), v(c))?;
        }
    }
}

/// The property must be able to fail: a sequence without its reset flags differs from the
/// step loop with them (for a recurrent encoder and for GTrXL).
#[test]
fn ignoring_a_reset_is_detected() {
    let dev = Default::default();
    for kind in [EncoderKind::Gru, EncoderKind::Gtrxl] {
        let enc = config(kind).init::<B>(6, 1, &dev);
        let mut bits = vec![false; 24];
        bits[2] = true;
        let (obs, starts, warm) = inputs(1, 4, 6, 1, &bits);
        let (_, s0) = enc.forward_seq(
            warm,
            enc.initial_state(1, &dev),
            Tensor::zeros([1, 4], &dev),
        );
        let (with, _) = enc.forward_seq(obs.clone(), s0.clone(), starts);
        let (without, _) = enc.forward_seq(obs, s0, Tensor::zeros([1, 4], &dev));
        let diff: f32 = v(with)
            .iter()
            .zip(v(without))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff > 1e-3, "{kind:?}: reset changed nothing ({diff})");
    }
}

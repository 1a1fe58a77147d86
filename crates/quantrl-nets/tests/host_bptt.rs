//! The host BPTT fast path equals Burn's autodiff of the same recurrent actor-critic: outputs
//! and the gradient of every parameter, for GRU and LSTM, one and two layers, shared and
//! separate encoders, with non-zero starting states and resets inside the sequences, and with
//! observation normalization in front of the encoders.

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_core::Rng;
use quantrl_nets::{EncoderConfig, EncoderKind, EncoderState, RecurrentActorCriticConfig};

type B = Autodiff<NdArray<f32>>;

/// Collects every float parameter's id.
struct Ids(Vec<ParamId>);

impl<BB: Backend> ModuleVisitor<BB> for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<BB, D>>) {
        self.0.push(param.id);
    }
}

fn host(t: Tensor<NdArray<f32>, 1>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// `quantiles > 0`: a twin quantile critic with that many quantiles.
fn check(kind: EncoderKind, layers: usize, shared: bool, quantiles: usize) {
    check_with(kind, layers, shared, quantiles, false);
}

/// `normalized`: observation normalization with non-trivial statistics (some inputs clipped).
fn check_with(kind: EncoderKind, layers: usize, shared: bool, quantiles: usize, normalized: bool) {
    let (seqs, len, d, a) = (3, 7, 5, 4);
    let device = Default::default();
    let net = RecurrentActorCriticConfig::new(
        d,
        a,
        EncoderConfig::new(kind)
            .with_hidden(8)
            .with_num_layers(layers),
    )
    .with_shared_encoder(shared)
    .with_n_quantiles(quantiles)
    .with_twin_critic(quantiles > 0)
    .with_normalize_obs(normalized)
    .with_clip_obs(3.0)
    .with_seed(11)
    .init::<B>(&device);
    let mut rng = Rng::seed_from_u64(5);
    let net = if normalized {
        let mean: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
        let var: Vec<f32> = (0..d).map(|i| 0.05 + 0.5 * i as f32).collect();
        net.with_obs_stats(&mean, &var)
    } else {
        net
    };
    // The normalizer's statistics: not trained, no gradient on either path.
    let mut stats_ids = Ids(Vec::new());
    if let Some(norm) = net.obs_normalizer() {
        norm.visit(&mut stats_ids);
    }
    assert_eq!(stats_ids.0.len(), if normalized { 2 } else { 0 });
    let obs: Vec<f32> = (0..seqs * len * d).map(|_| rng.normal() as f32).collect();
    let mut starts = vec![0f32; seqs * len];
    starts[0] = 1.0; // sequence 0 starts an episode (its state0 is discarded)
    starts[len + 3] = 1.0; // sequence 1 resets mid-way
    starts[2 * len + 6] = 1.0; // sequence 2 resets at its last step
    let shapes: Vec<[usize; 3]> = net
        .initial_state(seqs, &device)
        .tensors
        .iter()
        .map(|t| t.dims())
        .collect();
    let state0: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| {
            (0..s.iter().product::<usize>())
                .map(|_| 0.5 * rng.normal() as f32)
                .collect()
        })
        .collect();
    // Random weights for the loss so every output matters.
    let wl: Vec<f32> = (0..seqs * len * a).map(|_| rng.normal() as f32).collect();
    let wv: Vec<f32> = (0..seqs * len).map(|_| rng.normal() as f32).collect();
    let nq = 2 * quantiles; // twin critics
    let wq: Vec<f32> = (0..seqs * len * nq).map(|_| rng.normal() as f32).collect();
    let loss_of = |logits: Tensor<B, 3>, values: Tensor<B, 2>, q: Option<Tensor<B, 3>>| {
        let wl = Tensor::<B, 3>::from_data(TensorData::new(wl.clone(), [seqs, len, a]), &device);
        let wv = Tensor::<B, 2>::from_data(TensorData::new(wv.clone(), [seqs, len]), &device);
        let loss = (logits.tanh() * wl).sum() + (values * wv).sum();
        match q {
            Some(q) => {
                let wq = Tensor::<B, 3>::from_data(
                    TensorData::new(wq.clone(), [seqs * len, 2, quantiles]),
                    &device,
                );
                loss + (q * wq).sum()
            }
            None => loss,
        }
    };

    // All-Burn reference.
    let st = EncoderState::<B>::new(
        state0
            .iter()
            .zip(&shapes)
            .map(|(v, s)| Tensor::from_data(TensorData::new(v.clone(), *s), &device))
            .collect(),
    );
    let out = net.forward_seq(
        Tensor::from_data(TensorData::new(obs.clone(), [seqs, len, d]), &device),
        st,
        Tensor::from_data(TensorData::new(starts.clone(), [seqs, len]), &device),
    );
    let ref_logits = out.logits.clone().inner();
    let ref_values = out.values.clone().inner();
    let ref_quantiles = out.quantiles.clone().map(|q| q.inner());
    let ref_grads = loss_of(out.logits, out.values, out.quantiles).backward();

    // Host path.
    let fwd = net.forward_seq_host_bptt(&obs, seqs, len, &state0, &starts, &device);
    let close = |what: &str, got: &[f32], want: &[f32], tol: f32| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{kind:?} layers {layers} shared {shared}: {what}[{i}]: host {g} vs burn {w}"
            );
        }
    };
    close(
        "logits",
        &host(fwd.logits.clone().inner().reshape([seqs * len * a])),
        &host(ref_logits.reshape([seqs * len * a])),
        1e-5,
    );
    close(
        "values",
        &host(fwd.values.clone().inner().reshape([seqs * len])),
        &host(ref_values.reshape([seqs * len])),
        1e-5,
    );
    match (&fwd.quantiles, ref_quantiles) {
        (Some(got), Some(want)) => close(
            "quantiles",
            &host(got.clone().inner().reshape([seqs * len * nq])),
            &host(want.reshape([seqs * len * nq])),
            1e-5,
        ),
        (None, None) => assert_eq!(quantiles, 0),
        _ => panic!("host and Burn paths disagree on the critic"),
    }
    let grads = loss_of(
        fwd.logits.clone(),
        fwd.values.clone(),
        fwd.quantiles.clone(),
    )
    .backward();
    let host_grads = fwd.param_grads(&grads);
    assert!(!host_grads.is_empty());
    let mut ids = Ids(Vec::new());
    net.visit(&mut ids);
    let mut checked = 0;
    for id in ids.0 {
        // Reference gradient of this parameter from Burn's autodiff.
        let mut want: Option<Vec<f32>> = None;
        struct Find<'a> {
            id: ParamId,
            grads: &'a <B as burn::tensor::backend::AutodiffBackend>::Gradients,
            out: &'a mut Option<Vec<f32>>,
        }
        impl ModuleVisitor<B> for Find<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if param.id == self.id
                    && let Some(g) = param.val().grad(self.grads)
                {
                    *self.out = Some(g.into_data().convert::<f32>().to_vec().unwrap());
                }
            }
        }
        net.visit(&mut Find {
            id,
            grads: &ref_grads,
            out: &mut want,
        });
        if stats_ids.0.contains(&id) {
            assert!(want.is_none(), "normalizer statistics got a gradient");
            assert!(host_grads.iter().all(|g| g.id != id));
            continue;
        }
        let want = want.expect("every parameter has a reference gradient");
        let got: Vec<f32> = match host_grads.iter().find(|g| g.id == id) {
            Some(g) => g.values.clone(),
            None => {
                // A head parameter: its gradient is in Burn's graph of the host path.
                let mut got = None;
                net.visit(&mut Find {
                    id,
                    grads: &grads,
                    out: &mut got,
                });
                got.expect("head parameters get Burn gradients")
            }
        };
        close(&format!("grad of {id}"), &got, &want, 1e-4);
        checked += 1;
    }
    assert!(checked >= 8, "{checked} parameters checked");
    let _ = net.valid();
}

#[test]
fn gru_host_bptt_matches_autodiff() {
    check(EncoderKind::Gru, 1, false, 0);
    check(EncoderKind::Gru, 2, false, 0);
    check(EncoderKind::Gru, 1, true, 0);
}

/// A twin quantile critic on the recurrent encoders: quantiles, the values (their reduced
/// mean) and every gradient agree between the host path and Burn's autodiff.
#[test]
fn quantile_critic_host_bptt_matches_autodiff() {
    check(EncoderKind::Gru, 1, false, 5);
    check(EncoderKind::Lstm, 1, true, 5);
}

/// With observation normalization the host path normalizes exactly as Burn's path does, and
/// neither trains the statistics.
#[test]
fn normalized_observations_host_bptt_matches_autodiff() {
    check_with(EncoderKind::Gru, 1, false, 0, true);
    check_with(EncoderKind::Lstm, 1, true, 5, true);
}

#[test]
fn lstm_host_bptt_matches_autodiff() {
    check(EncoderKind::Lstm, 1, false, 0);
    check(EncoderKind::Lstm, 2, true, 0);
}

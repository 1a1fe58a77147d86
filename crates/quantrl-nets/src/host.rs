//! Host-side inference for single decisions: a [`HostGru`] and a [`HostLinear`] copied out of
//! their Burn modules into plain `f32` slices, stepped by hand-written loops.
//!
//! At batch 1 a GRU step through Burn is about twenty tensor operations, each with its own
//! dispatch and allocation; on a CPU that overhead dwarfs the arithmetic. These snapshots do the
//! same computation (same weights, PyTorch's GRU conventions, resets before the step) with no
//! allocation after a thread's first step (the gate scratch is kept per thread), for live
//! trading loops and latency-bound rollouts.
//! Weights are copied once: take a new snapshot after each update.

use std::cell::RefCell;

use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};

use crate::fastmath;
use crate::gemm::{gemm_acc, gemv_acc, gemv_acc_bf16, pack_bf16_pairs, unpack_bf16_pairs};
use crate::host_mlp::param_values;
use crate::rnn::Gru;
use quantrl_core::multiversion;

/// Dot product with eight independent accumulators (vectorizes without fast-math).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A Burn `[d_in, d_out]` weight, row-major `[d_in][d_out]`.
fn weight<B: Backend>(w: Tensor<B, 2>) -> Weight {
    let [d_in, d_out] = w.dims();
    Weight {
        rows: param_values(w),
        bf16: None,
        d_in,
        d_out,
    }
}

/// A weight as stored by Burn (see [`weight`]).
#[derive(Debug, Clone)]
struct Weight {
    /// `[d_in][d_out]`.
    rows: Vec<f32>,
    /// `rows` rounded to bfloat16 and packed by pairs of rows (`gemm::pack_bf16_pairs`), in
    /// a reduced-precision snapshot (`rows` then hold the same values widened, for the
    /// blocked product): single decisions stream these.
    bf16: Option<Vec<u32>>,
    d_in: usize,
    d_out: usize,
}

/// Batches from this size on go through the blocked matrix product; smaller ones row by row
/// through matrix-vector products (the product's 8-row blocks would be mostly padding).
const BATCHED: usize = 8;

impl Weight {
    /// This weight rounded to bfloat16 (see [`HostGru::with_bf16_weights`]).
    fn to_bf16(&self) -> Self {
        let packed = pack_bf16_pairs(&self.rows, self.d_in, self.d_out);
        Self {
            rows: unpack_bf16_pairs(&packed, self.d_in, self.d_out),
            bf16: Some(packed),
            d_in: self.d_in,
            d_out: self.d_out,
        }
    }

    /// `out[r, :] = bias + x[r, :] · W` for the rows of `x` (row stride `ldx`, the first
    /// `d_in` columns read) into `out` (`[rows, d_out]`).
    fn affine(&self, bias: &[f32], x: &[f32], ldx: usize, rows: usize, out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.d_out).take(rows) {
            row.copy_from_slice(bias);
        }
        if rows >= BATCHED {
            gemm_acc(
                (rows, self.d_in, self.d_out),
                &x[..(rows - 1) * ldx + self.d_in],
                (ldx, 1),
                &self.rows,
                self.d_out,
                out,
                self.d_out,
            );
        } else {
            for (r, row) in out.chunks_exact_mut(self.d_out).take(rows).enumerate() {
                let x = &x[r * ldx..r * ldx + self.d_in];
                match &self.bf16 {
                    Some(bits) => gemv_acc_bf16(bits, x, row),
                    None => gemv_acc(&self.rows, x, row),
                }
            }
        }
    }
}

/// A linear layer on the host (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HostLinear {
    weight: Weight,
    bias: Vec<f32>,
}

impl HostLinear {
    /// A snapshot of `linear`.
    pub fn from_linear<B: Backend>(linear: &Linear<B>) -> Self {
        let weight = weight(linear.weight.val());
        let bias = linear
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; weight.d_out], |b| param_values(b.val()));
        Self { weight, bias }
    }

    /// This layer with its weight rounded to bfloat16, as [`HostGru::with_bf16_weights`]
    /// (the bias stays `f32`).
    pub fn with_bf16_weights(&self) -> Self {
        Self {
            weight: self.weight.to_bf16(),
            bias: self.bias.clone(),
        }
    }

    /// `out = x W + b` for `batch` rows: `x` is `[batch, d_in]`, `out` `[batch, d_out]`.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        let (d_in, d_out) = (self.weight.d_in, self.weight.d_out);
        let batch = x.len() / d_in;
        assert_eq!(x.len(), batch * d_in, "input is not [batch, {d_in}]");
        assert_eq!(out.len(), batch * d_out, "output is not [batch, {d_out}]");
        if batch > 0 {
            self.weight.affine(&self.bias, x, d_in, batch, out);
        }
    }
}

multiversion! {
    /// The GRU update of one row (PyTorch's equations) from its gate pre-activations
    /// `gi = x W_ih + b_ih` and `gh = h W_hh + b_hh` (`[r | z | n]`, `3h` each): `hs` in place.
    fn gru_update(gi: &[f32], gh: &[f32], hs: &mut [f32]) {
        let h = hs.len();
        let (gi_r, gi_zn) = gi.split_at(h);
        let (gi_z, gi_n) = gi_zn.split_at(h);
        let (gh_r, gh_zn) = gh.split_at(h);
        let (gh_z, gh_n) = gh_zn.split_at(h);
        for (k, hk) in hs.iter_mut().enumerate() {
            let r = fastmath::sigmoid(gi_r[k] + gh_r[k]);
            let z = fastmath::sigmoid(gi_z[k] + gh_z[k]);
            let n = fastmath::tanh(gi_n[k] + r * gh_n[k]);
            *hk = n + z * (*hk - n);
        }
    }
}

/// One GRU layer on the host.
#[derive(Debug, Clone)]
struct HostGruLayer {
    w_ih: Weight,
    w_hh: Weight,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

thread_local! {
    /// The gate pre-activations of [`HostGru::step`] (`gi`, `gh`), kept per thread between
    /// calls: at batch 256 two fresh 786 KB buffers a step cost page faults and zeroing
    /// (about 5% of a step in a profile).
    static GATE_SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A GRU on the host (see the [module docs](self)). Its state is a `[batch, layers, hidden]`
/// row-major slice, the layout of the [`Gru`]'s [`EncoderState`](crate::EncoderState).
#[derive(Debug, Clone)]
pub struct HostGru {
    layers: Vec<HostGruLayer>,
    d_hidden: usize,
}

impl HostGru {
    /// A snapshot of `gru`.
    pub fn from_gru<B: Backend>(gru: &Gru<B>) -> Self {
        let layers: Vec<HostGruLayer> = gru
            .layers()
            .iter()
            .map(|l| HostGruLayer {
                w_ih: weight(l.w_ih.val()),
                w_hh: weight(l.w_hh.val()),
                b_ih: param_values(l.b_ih.val()),
                b_hh: param_values(l.b_hh.val()),
            })
            .collect();
        let d_hidden = layers[0].b_ih.len() / 3;
        Self { layers, d_hidden }
    }

    /// This GRU with its weight matrices rounded to the nearest bfloat16 (8 significant
    /// bits: each weight within a relative `2^-8` of its `f32` value; biases, state and all
    /// arithmetic stay `f32`). Single decisions (batches below 8) then stream half the bytes,
    /// which is what bounds their latency once the `f32` weights outgrow the core's L2 cache
    /// (a 64 → 256 GRU is 1 MB of `f32` weights); batches of 8 and more compute with the same
    /// rounded values widened to `f32`, so every batch size gives the same numbers as an
    /// `f32` snapshot of the rounded weights. The outputs differ from the `f32` network's by
    /// the rounding of the weights (about `2^-8` relative per product term); measure what
    /// that does to your policy's decisions before serving it.
    pub fn with_bf16_weights(&self) -> Self {
        self.map_weights(Weight::to_bf16)
    }

    /// This GRU with `f` applied to every weight matrix (biases kept).
    fn map_weights(&self, f: impl Fn(&Weight) -> Weight) -> Self {
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| HostGruLayer {
                    w_ih: f(&l.w_ih),
                    w_hh: f(&l.w_hh),
                    b_ih: l.b_ih.clone(),
                    b_hh: l.b_hh.clone(),
                })
                .collect(),
            d_hidden: self.d_hidden,
        }
    }

    /// Width of the hidden state and of the output.
    pub fn d_hidden(&self) -> usize {
        self.d_hidden
    }

    /// The initial (zero) state for `batch` environments.
    pub fn initial_state(&self, batch: usize) -> Vec<f32> {
        vec![0.0; batch * self.layers.len() * self.d_hidden]
    }

    /// One step for `batch` rows: reset the rows whose `episode_start` is true, then advance.
    /// `obs` is `[batch, input]`, `state` `[batch, layers, hidden]` (updated in place), `out`
    /// `[batch, hidden]` (the last layer's new hidden state).
    ///
    /// Each layer's gate pre-activations for the whole batch come from two matrix products
    /// (`[batch, d_in] × [d_in, 3h]` and `[batch, h] × [h, 3h]`), then the elementwise update
    /// runs row by row. The pre-activations go to a scratch kept per thread (`6 · batch · h`
    /// floats for the largest batch seen), so steps after the first allocate nothing.
    pub fn step(&self, obs: &[f32], state: &mut [f32], episode_start: &[bool], out: &mut [f32]) {
        let (h, nl) = (self.d_hidden, self.layers.len());
        let batch = episode_start.len();
        let d0 = self.layers[0].w_ih.d_in;
        assert_eq!(obs.len(), batch * d0, "obs is not [batch, {d0}]");
        assert_eq!(
            state.len(),
            batch * nl * h,
            "state is not [batch, layers, hidden]"
        );
        assert_eq!(out.len(), batch * h, "out is not [batch, hidden]");
        if batch == 0 {
            return;
        }
        for (s, &start) in state.chunks_exact_mut(nl * h).zip(episode_start) {
            if start {
                s.fill(0.0);
            }
        }
        GATE_SCRATCH.with_borrow_mut(|(gi, gh)| {
            // Every element is written (the biases) before it is read.
            for g in [&mut *gi, &mut *gh] {
                if g.len() < batch * 3 * h {
                    g.resize(batch * 3 * h, 0.0);
                }
            }
            let (gi, gh) = (&mut gi[..batch * 3 * h], &mut gh[..batch * 3 * h]);
            self.step_layers(obs, state, batch, gi, gh);
        });
        for (o, s) in out.chunks_exact_mut(h).zip(state.chunks_exact(nl * h)) {
            o.copy_from_slice(&s[(nl - 1) * h..]);
        }
    }

    /// The layers of [`Self::step`], with the gate pre-activations in `gi` and `gh`
    /// (`[batch, 3h]` each).
    fn step_layers(
        &self,
        obs: &[f32],
        state: &mut [f32],
        batch: usize,
        gi: &mut [f32],
        gh: &mut [f32],
    ) {
        let (h, nl) = (self.d_hidden, self.layers.len());
        let d0 = self.layers[0].w_ih.d_in;
        let row = nl * h;
        for (l, layer) in self.layers.iter().enumerate() {
            // Layer 0 reads the observations, layer l the new state of layer l - 1.
            if l == 0 {
                layer.w_ih.affine(&layer.b_ih, obs, d0, batch, gi);
            } else {
                let prev = &state[(l - 1) * h..];
                layer.w_ih.affine(&layer.b_ih, prev, row, batch, gi);
            }
            layer
                .w_hh
                .affine(&layer.b_hh, &state[l * h..], row, batch, gh);
            for ((s, gi), gh) in state
                .chunks_exact_mut(row)
                .zip(gi.chunks_exact(3 * h))
                .zip(gh.chunks_exact(3 * h))
            {
                gru_update(gi, gh, &mut s[l * h..(l + 1) * h]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncoderState, RnnConfig, SequenceEncoder};
    use burn::backend::NdArray;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    /// A two-layer GRU (5 -> 12) with a 4-logit head, and host snapshots of both.
    fn small_policy() -> (Gru<B>, burn::nn::Linear<B>, HostGru, HostLinear) {
        let dev = Default::default();
        let gru = RnnConfig::new(5, 12)
            .with_num_layers(2)
            .with_seed(3)
            .init_gru::<B>(&dev);
        let head = LinearConfig::new(12, 4).init::<B>(&dev);
        let (hg, hl) = (HostGru::from_gru(&gru), HostLinear::from_linear(&head));
        (gru, head, hg, hl)
    }

    #[test]
    fn host_gru_and_linear_match_burn_with_resets() {
        let (gru, head, hg, hl) = small_policy();
        // Row by row below `BATCHED` rows, through the blocked product from it on.
        for batch in [3, BATCHED + 3] {
            check_batch(&gru, &head, &hg, &hl, batch);
        }
    }

    #[test]
    fn bf16_snapshots_compute_with_the_rounded_weights() {
        let (_, _, hg, hl) = small_policy();
        let (bg, bl) = (hg.with_bf16_weights(), hl.with_bf16_weights());
        // The same snapshot with the rounded weights held as f32 (no bf16 copy): every batch
        // size must give exactly its numbers, the single-decision path included.
        let widen = |w: &Weight| Weight {
            rows: w.rows.clone(),
            bf16: None,
            d_in: w.d_in,
            d_out: w.d_out,
        };
        let rg = bg.map_weights(widen);
        let rl = HostLinear {
            weight: widen(&bl.weight),
            bias: bl.bias.clone(),
        };
        for (l, r) in bg.layers.iter().zip(&hg.layers) {
            for (a, b) in l.w_hh.rows.iter().zip(&r.w_hh.rows) {
                assert!((a - b).abs() <= b.abs() * 2f32.powi(-8), "{a} vs {b}");
            }
        }
        for batch in [1, 3, BATCHED + 3] {
            let (mut sb, mut sr, mut sf) = (
                bg.initial_state(batch),
                rg.initial_state(batch),
                hg.initial_state(batch),
            );
            let mut worst = 0f32;
            for t in 0..6 {
                let obs: Vec<f32> = (0..batch * 5)
                    .map(|i| ((i + 7 * t) as f32 * 0.41).sin())
                    .collect();
                let starts: Vec<bool> = (0..batch).map(|b| (b + t) % 4 == 0 && t > 0).collect();
                let mut outs = [
                    vec![0f32; batch * 12],
                    vec![0f32; batch * 12],
                    vec![0f32; batch * 12],
                ];
                let mut logits = [
                    vec![0f32; batch * 4],
                    vec![0f32; batch * 4],
                    vec![0f32; batch * 4],
                ];
                bg.step(&obs, &mut sb, &starts, &mut outs[0]);
                rg.step(&obs, &mut sr, &starts, &mut outs[1]);
                hg.step(&obs, &mut sf, &starts, &mut outs[2]);
                bl.forward(&outs[0], &mut logits[0]);
                rl.forward(&outs[1], &mut logits[1]);
                hl.forward(&outs[2], &mut logits[2]);
                assert_eq!(outs[0], outs[1], "batch {batch}, step {t}: outputs");
                assert_eq!(logits[0], logits[1], "batch {batch}, step {t}: logits");
                assert_eq!(sb, sr, "batch {batch}, step {t}: state");
                for (a, b) in logits[0].iter().zip(&logits[2]) {
                    worst = worst.max((a - b).abs());
                }
            }
            // And close to the f32 network (its logits are of order 0.1-1 here).
            assert!(worst > 0.0 && worst < 1e-2, "batch {batch}: {worst}");
        }
    }

    #[test]
    fn bf16_policy_of_the_benchmark_decides_like_the_f32_one() {
        // The benchmark's GRU policy (64 -> 256, a 16-logit head), 256 environments for 50
        // steps of smooth observations with resets.
        let dev = Default::default();
        let gru = RnnConfig::new(64, 256).with_seed(11).init_gru::<B>(&dev);
        let head = LinearConfig::new(256, 16).init::<B>(&dev);
        let (hg, hl) = (HostGru::from_gru(&gru), HostLinear::from_linear(&head));
        let (bg, bl) = (hg.with_bf16_weights(), hl.with_bf16_weights());
        let batch = 256;
        let (mut sf, mut sb) = (hg.initial_state(batch), bg.initial_state(batch));
        let (mut hf, mut hb) = (vec![0f32; batch * 256], vec![0f32; batch * 256]);
        let (mut lf, mut lb) = (vec![0f32; batch * 16], vec![0f32; batch * 16]);
        let (mut worst, mut scale, mut same, mut total) = (0f32, 0f32, 0usize, 0usize);
        for t in 0..50 {
            let obs: Vec<f32> = (0..batch * 64)
                .map(|i| ((i * 13 + t * 7) as f32 * 0.031).sin() * 2.0)
                .collect();
            let starts: Vec<bool> = (0..batch).map(|b| (b + t) % 17 == 0).collect();
            hg.step(&obs, &mut sf, &starts, &mut hf);
            bg.step(&obs, &mut sb, &starts, &mut hb);
            hl.forward(&hf, &mut lf);
            bl.forward(&hb, &mut lb);
            for (rf, rb) in lf.chunks_exact(16).zip(lb.chunks_exact(16)) {
                let argmax = |r: &[f32]| (0..16).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap();
                same += usize::from(argmax(rf) == argmax(rb));
                total += 1;
                for (a, b) in rf.iter().zip(rb) {
                    worst = worst.max((a - b).abs());
                    scale = scale.max(a.abs());
                }
            }
        }
        eprintln!(
            "bf16 vs f32: max |dlogit| {worst} (max |logit| {scale}), same action {same}/{total}"
        );
        assert!(worst < 0.02 * scale, "{worst} vs logits up to {scale}");
        assert!(same * 100 >= total * 98, "{same}/{total}");
    }

    fn check_batch(
        gru: &Gru<B>,
        head: &burn::nn::Linear<B>,
        hg: &HostGru,
        hl: &HostLinear,
        batch: usize,
    ) {
        let dev = Default::default();
        let mut state = hg.initial_state(batch);
        let mut burn_state: EncoderState<B> = gru.initial_state(batch, &dev);
        for t in 0..6 {
            let obs: Vec<f32> = (0..batch * 5)
                .map(|i| ((i + 7 * t) as f32 * 0.41).sin())
                .collect();
            let starts: Vec<bool> = (0..batch).map(|b| (b + t) % 4 == 0 && t > 0).collect();
            let mut out = vec![0f32; batch * 12];
            hg.step(&obs, &mut state, &starts, &mut out);
            let mut logits = vec![0f32; batch * 4];
            hl.forward(&out, &mut logits);
            let s: Vec<f32> = starts.iter().map(|&b| b as u8 as f32).collect();
            let (o, next) = gru.step(
                Tensor::from_data(TensorData::new(obs, [batch, 5]), &dev),
                burn_state,
                Tensor::from_data(TensorData::new(s, [batch]), &dev),
            );
            let want_logits: Vec<f32> = head.forward(o.clone()).into_data().to_vec().unwrap();
            let want_out: Vec<f32> = o.into_data().to_vec().unwrap();
            let want_state: Vec<f32> = next.tensors[0].to_data().to_vec().unwrap();
            for (got, want) in [
                (&out, &want_out),
                (&logits, &want_logits),
                (&state, &want_state),
            ] {
                for (a, b) in got.iter().zip(want.iter()) {
                    assert!((a - b).abs() < 1e-5, "step {t}: {a} vs {b}");
                }
            }
            burn_state = next;
        }
    }
}

//! Host-side inference for single decisions: a [`HostGru`] and a [`HostLinear`] copied out of
//! their Burn modules into plain `f32` slices, stepped by hand-written loops.
//!
//! At batch 1 a GRU step through Burn is about twenty tensor operations, each with its own
//! dispatch and allocation; on a CPU that overhead dwarfs the arithmetic. These snapshots do the
//! same computation (same weights, PyTorch's GRU conventions, resets before the step) with no
//! allocation but a few scratch vectors, for live trading loops and latency-bound rollouts.
//! Weights are copied once: take a new snapshot after each update.

use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};

use crate::fastmath;
use crate::host_mlp::param_values;
use crate::rnn::Gru;

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

/// Row-major `[d_out][d_in]` copy of a Burn `[d_in, d_out]` weight.
fn transposed<B: Backend>(w: Tensor<B, 2>) -> (Vec<f32>, usize, usize) {
    let [d_in, d_out] = w.dims();
    let v = param_values(w);
    let mut t = vec![0f32; v.len()];
    for i in 0..d_in {
        for o in 0..d_out {
            t[o * d_in + i] = v[i * d_out + o];
        }
    }
    (t, d_in, d_out)
}

/// A linear layer on the host (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HostLinear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl HostLinear {
    /// A snapshot of `linear`.
    pub fn from_linear<B: Backend>(linear: &Linear<B>) -> Self {
        let (weight, d_in, d_out) = transposed(linear.weight.val());
        let bias = linear
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; d_out], |b| param_values(b.val()));
        Self {
            weight,
            bias,
            d_in,
            d_out,
        }
    }

    /// `out = x W + b` for `batch` rows: `x` is `[batch, d_in]`, `out` `[batch, d_out]`.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        let batch = x.len() / self.d_in;
        assert_eq!(
            x.len(),
            batch * self.d_in,
            "input is not [batch, {}]",
            self.d_in
        );
        assert_eq!(
            out.len(),
            batch * self.d_out,
            "output is not [batch, {}]",
            self.d_out
        );
        linear_rows(&self.weight, &self.bias, x, out);
    }
}

multiversion! {
    /// `out[r, o] = bias[o] + weight[o, :] · x[r, :]` (`weight` row-major `[d_out, d_in]`).
    fn linear_rows(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32]) {
        let (d_out, d_in) = (bias.len(), weight.len() / bias.len());
        for (xr, or) in x.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
            for ((v, w), &b) in or.iter_mut().zip(weight.chunks_exact(d_in)).zip(bias) {
                *v = b + dot(w, xr);
            }
        }
    }
}

multiversion! {
    /// One GRU layer's step for one row (PyTorch's equations): gate pre-activations from `x`
    /// and the state `hs` into the scratch `gi`, `gh`, then `hs` updated in place.
    #[allow(clippy::too_many_arguments)]
    fn gru_cell(
        w_ih: &[f32],
        w_hh: &[f32],
        b_ih: &[f32],
        b_hh: &[f32],
        x: &[f32],
        hs: &mut [f32],
        gi: &mut [f32],
        gh: &mut [f32],
    ) {
        let (h, d_in) = (hs.len(), x.len());
        for (g, (gi, gh)) in gi.iter_mut().zip(gh.iter_mut()).enumerate() {
            *gi = b_ih[g] + dot(&w_ih[g * d_in..(g + 1) * d_in], x);
            *gh = b_hh[g] + dot(&w_hh[g * h..(g + 1) * h], hs);
        }
        for (k, hk) in hs.iter_mut().enumerate() {
            let r = fastmath::sigmoid(gi[k] + gh[k]);
            let z = fastmath::sigmoid(gi[h + k] + gh[h + k]);
            let n = fastmath::tanh(gi[2 * h + k] + r * gh[2 * h + k]);
            *hk = n + z * (*hk - n);
        }
    }
}

/// One GRU layer on the host.
#[derive(Debug, Clone)]
struct HostGruLayer {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
    d_in: usize,
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
            .map(|l| {
                let (w_ih, d_in, _) = transposed(l.w_ih.val());
                let (w_hh, _, _) = transposed(l.w_hh.val());
                HostGruLayer {
                    w_ih,
                    w_hh,
                    b_ih: param_values(l.b_ih.val()),
                    b_hh: param_values(l.b_hh.val()),
                    d_in,
                }
            })
            .collect();
        let d_hidden = layers[0].b_ih.len() / 3;
        Self { layers, d_hidden }
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
    pub fn step(&self, obs: &[f32], state: &mut [f32], episode_start: &[bool], out: &mut [f32]) {
        let (h, nl) = (self.d_hidden, self.layers.len());
        let batch = episode_start.len();
        let d0 = self.layers[0].d_in;
        assert_eq!(obs.len(), batch * d0, "obs is not [batch, {d0}]");
        assert_eq!(
            state.len(),
            batch * nl * h,
            "state is not [batch, layers, hidden]"
        );
        assert_eq!(out.len(), batch * h, "out is not [batch, hidden]");
        let (mut gi, mut gh) = (vec![0f32; 3 * h], vec![0f32; 3 * h]);
        let mut input = vec![0f32; d0.max(h)];
        for b in 0..batch {
            let s = &mut state[b * nl * h..(b + 1) * nl * h];
            if episode_start[b] {
                s.fill(0.0);
            }
            input[..d0].copy_from_slice(&obs[b * d0..(b + 1) * d0]);
            for (l, layer) in self.layers.iter().enumerate() {
                let hs = &mut s[l * h..(l + 1) * h];
                gru_cell(
                    &layer.w_ih,
                    &layer.w_hh,
                    &layer.b_ih,
                    &layer.b_hh,
                    &input[..layer.d_in],
                    hs,
                    &mut gi,
                    &mut gh,
                );
                input[..h].copy_from_slice(hs);
            }
            out[b * h..(b + 1) * h].copy_from_slice(&input[..h]);
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

    #[test]
    fn host_gru_and_linear_match_burn_with_resets() {
        let dev = Default::default();
        let gru = RnnConfig::new(5, 12)
            .with_num_layers(2)
            .with_seed(3)
            .init_gru::<B>(&dev);
        let head = LinearConfig::new(12, 4).init::<B>(&dev);
        let (hg, hl) = (HostGru::from_gru(&gru), HostLinear::from_linear(&head));
        let batch = 3;
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

//! Backpropagation through time for [`Gru`](crate::Gru) and [`Lstm`](crate::Lstm) on the host,
//! with hand-derived gradients: the training fast path of recurrent PPO on CPU backends.
//!
//! Through Burn's autodiff a GRU sequence is ~15 tensor operations per step forward and as many
//! backward, each with dispatch, allocation and graph bookkeeping, on `[batch, hidden]` tensors
//! of a few hundred elements: the overhead, not the arithmetic, sets the time. Here the whole
//! sequence is two loops over plain `f32` arrays: the input projections of every step and the
//! weight gradients of every step are single large matrix products (the crate's register-blocked
//! kernel, AVX-512 or AVX2 picked at run time); per step only the `[batch, hidden] × [hidden,
//! G·hidden]` product and the element-wise gate arithmetic remain.
//!
//! [`RnnTape::forward`] runs the layers over `[seqs, len, input]` from given states, resetting
//! the state before step `t` of sequence `s` where `episode_starts[s, t]` is 1 (the same
//! semantics as [`SequenceEncoder::forward_seq`](crate::SequenceEncoder::forward_seq)), and keeps
//! what the backward pass needs. [`RnnTape::backward`] takes the gradient of the loss with
//! respect to the outputs and returns the gradient of every layer parameter. No gradient flows
//! into the starting states (they are constants in PPO: stored at rollout time) or the inputs
//! of the first layer (observations).
//!
//! Gate conventions are PyTorch's, as in [`crate::rnn`]: GRU gates `r, z, n` with
//! `n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))`, `h' = (1 - z) ⊙ n + z ⊙ h`; LSTM gates
//! `i, f, g, o`. Tests check outputs and gradients against Burn's autodiff of the same modules.

use crate::fastmath;
use ndarray::{Array2, ArrayView2, Axis, s};

use crate::gemm::{matmul_acc, mm};
use quantrl_core::multiversion;

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCell {
    /// Gated recurrent unit (3 gates).
    Gru,
    /// Long short-term memory (4 gates).
    Lstm,
}

impl HostCell {
    fn gates(self) -> usize {
        match self {
            HostCell::Gru => 3,
            HostCell::Lstm => 4,
        }
    }
}

/// One layer's parameters in Burn's layout: `w_ih: [input, G·H]`, `w_hh: [H, G·H]`, biases
/// `[G·H]` — or their gradients, shaped as the parameters ([`RnnTape::backward`]).
#[derive(Debug, Clone)]
pub struct HostRnnLayer {
    /// Input weights.
    pub w_ih: Array2<f32>,
    /// Hidden weights.
    pub w_hh: Array2<f32>,
    /// Input bias.
    pub b_ih: Vec<f32>,
    /// Hidden bias.
    pub b_hh: Vec<f32>,
}

/// What one layer's forward pass keeps for the backward pass. Rows are `(t, s)`, time-major.
#[derive(Debug)]
struct LayerTape {
    /// The layer input, `[len·seqs, input]`.
    x: Array2<f32>,
    /// The state entering each step after its reset, `[len·seqs, H]`.
    h_prev: Array2<f32>,
    /// LSTM: the cell state entering each step after its reset.
    c_prev: Array2<f32>,
    /// Gate activations: GRU `r, z, n`, LSTM `i, f, g, o`, `[len·seqs, G·H]`.
    gates: Array2<f32>,
    /// GRU: `h W_hn + b_hn` (inside `r ⊙ ·`); LSTM: `tanh(c)`. `[len·seqs, H]`.
    extra: Array2<f32>,
}

/// A recorded forward pass of a stack of recurrent layers (see the [module docs](self)).
#[derive(Debug)]
pub struct RnnTape {
    cell: HostCell,
    seqs: usize,
    len: usize,
    hidden: usize,
    /// `1 - episode_starts`, time-major `[len][seqs]`.
    keep: Vec<f32>,
    layers: Vec<LayerTape>,
}

multiversion! {
    /// One row of a GRU time step (PyTorch's equations): `gh += b_hh`, then the gates
    /// `[r | z | n]` and `W_hn h + b_hn` kept for the backward pass, and `h` updated in place.
    fn gru_row(
        gi: &[f32],
        gh: &mut [f32],
        b_hh: &[f32],
        gates: &mut [f32],
        ex: &mut [f32],
        h: &mut [f32],
    ) {
        let n = h.len();
        for (v, b) in gh.iter_mut().zip(b_hh) {
            *v += b;
        }
        let (gi_r, gi_z, gi_n) = (&gi[..n], &gi[n..2 * n], &gi[2 * n..3 * n]);
        let (gh_r, gh_z, gh_n) = (&gh[..n], &gh[n..2 * n], &gh[2 * n..3 * n]);
        let (g_r, rest) = gates.split_at_mut(n);
        let (g_z, g_n) = rest.split_at_mut(n);
        let (g_z, g_n, ex) = (&mut g_z[..n], &mut g_n[..n], &mut ex[..n]);
        for j in 0..n {
            let r = fastmath::sigmoid(gi_r[j] + gh_r[j]);
            let z = fastmath::sigmoid(gi_z[j] + gh_z[j]);
            let ghn = gh_n[j];
            let nn = fastmath::tanh(gi_n[j] + r * ghn);
            g_r[j] = r;
            g_z[j] = z;
            g_n[j] = nn;
            ex[j] = ghn;
            h[j] = nn + z * (h[j] - nn);
        }
    }
}

multiversion! {
    /// One row of an LSTM time step (PyTorch's equations, biases already in `gi`): the gates
    /// `[i | f | g | o]` and `tanh(c)` kept for the backward pass, `h` and `c` updated.
    fn lstm_row(
        gi: &[f32],
        pre: &[f32],
        gates: &mut [f32],
        ex: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
    ) {
        let n = h.len();
        let (gi_i, gi_f, gi_g, gi_o) = (&gi[..n], &gi[n..2 * n], &gi[2 * n..3 * n], &gi[3 * n..4 * n]);
        let (p_i, p_f, p_g, p_o) = (&pre[..n], &pre[n..2 * n], &pre[2 * n..3 * n], &pre[3 * n..4 * n]);
        let (g_i, rest) = gates.split_at_mut(n);
        let (g_f, rest) = rest.split_at_mut(n);
        let (g_g, g_o) = rest.split_at_mut(n);
        let (g_f, g_g, g_o, ex, c) = (&mut g_f[..n], &mut g_g[..n], &mut g_o[..n], &mut ex[..n], &mut c[..n]);
        for j in 0..n {
            let i = fastmath::sigmoid(gi_i[j] + p_i[j]);
            let f = fastmath::sigmoid(gi_f[j] + p_f[j]);
            let gg = fastmath::tanh(gi_g[j] + p_g[j]);
            let o = fastmath::sigmoid(gi_o[j] + p_o[j]);
            let cn = f * c[j] + i * gg;
            let tc = fastmath::tanh(cn);
            g_i[j] = i;
            g_f[j] = f;
            g_g[j] = gg;
            g_o[j] = o;
            ex[j] = tc;
            c[j] = cn;
            h[j] = o * tc;
        }
    }
}

impl RnnTape {
    /// Run `layers` over `obs` (`[seqs, len, input]`, row-major) from the per-layer starting
    /// states `h0[l]` (and `c0[l]` for an LSTM), each `[seqs, H]`; returns the last layer's
    /// outputs `[seqs, len, H]` (row-major) and the tape.
    ///
    /// # Panics
    /// When the sizes disagree.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        cell: HostCell,
        layers: &[HostRnnLayer],
        obs: &[f32],
        seqs: usize,
        len: usize,
        episode_starts: &[f32],
        h0: &[Vec<f32>],
        c0: &[Vec<f32>],
    ) -> (Vec<f32>, Self) {
        let hidden = layers[0].w_hh.nrows();
        let g = cell.gates() * hidden;
        let n = seqs * len;
        assert_eq!(episode_starts.len(), n, "episode_starts size");
        assert_eq!(h0.len(), layers.len(), "one starting state per layer");
        let d_in = obs.len() / n;
        // Time-major input rows (t, s).
        let mut x = Array2::<f32>::zeros((n, d_in));
        for s_ in 0..seqs {
            for t in 0..len {
                let src = &obs[(s_ * len + t) * d_in..(s_ * len + t + 1) * d_in];
                x.row_mut(t * seqs + s_)
                    .as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(src);
            }
        }
        let mut keep = vec![0f32; n];
        for s_ in 0..seqs {
            for t in 0..len {
                keep[t * seqs + s_] = 1.0 - episode_starts[s_ * len + t];
            }
        }
        let mut tapes = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            let mut gi = mm(x.view(), layer.w_ih.view());
            let bias: Vec<f32> = match cell {
                HostCell::Gru => layer.b_ih.clone(),
                HostCell::Lstm => layer
                    .b_ih
                    .iter()
                    .zip(&layer.b_hh)
                    .map(|(a, b)| a + b)
                    .collect(),
            };
            for mut row in gi.rows_mut() {
                row.iter_mut().zip(&bias).for_each(|(v, b)| *v += b);
            }
            let mut h = Array2::from_shape_vec((seqs, hidden), h0[l].clone()).expect("h0 size");
            let mut c = match cell {
                HostCell::Lstm => {
                    Array2::from_shape_vec((seqs, hidden), c0[l].clone()).expect("c0 size")
                }
                HostCell::Gru => Array2::zeros((0, 0)),
            };
            let mut h_prev = Array2::<f32>::zeros((n, hidden));
            let mut c_prev = match cell {
                HostCell::Lstm => Array2::<f32>::zeros((n, hidden)),
                HostCell::Gru => Array2::zeros((0, 0)),
            };
            let mut gates = Array2::<f32>::zeros((n, g));
            let mut extra = Array2::<f32>::zeros((n, hidden));
            let mut out = Array2::<f32>::zeros((n, hidden));
            for t in 0..len {
                let rows = t * seqs..(t + 1) * seqs;
                for s_ in 0..seqs {
                    let k = keep[t * seqs + s_];
                    if k != 1.0 {
                        h.row_mut(s_).iter_mut().for_each(|v| *v *= k);
                        if cell == HostCell::Lstm {
                            c.row_mut(s_).iter_mut().for_each(|v| *v *= k);
                        }
                    }
                }
                h_prev.slice_mut(s![rows.clone(), ..]).assign(&h);
                let mut gh = mm(h.view(), layer.w_hh.view());
                match cell {
                    HostCell::Gru => {
                        for s_ in 0..seqs {
                            let row = t * seqs + s_;
                            let gi_r = gi.row(row);
                            let gh_r = gh.row_mut(s_);
                            let gi_r = gi_r.as_slice().expect("contiguous");
                            let gh_r = gh_r.into_slice().expect("contiguous");
                            let mut gate_row = gates.row_mut(row);
                            let gate_row = gate_row.as_slice_mut().expect("contiguous");
                            let mut ex = extra.row_mut(row);
                            let ex = ex.as_slice_mut().expect("contiguous");
                            let mut hr = h.row_mut(s_);
                            let hr = hr.as_slice_mut().expect("contiguous");
                            gru_row(gi_r, gh_r, &layer.b_hh, gate_row, ex, hr);
                        }
                    }
                    HostCell::Lstm => {
                        c_prev.slice_mut(s![rows.clone(), ..]).assign(&c);
                        for s_ in 0..seqs {
                            let row = t * seqs + s_;
                            let gi_r = gi.row(row);
                            let gi_r = gi_r.as_slice().expect("contiguous");
                            let pre = gh.row_mut(s_).into_slice().expect("contiguous");
                            let mut gate_row = gates.row_mut(row);
                            let gate_row = gate_row.as_slice_mut().expect("contiguous");
                            let mut ex = extra.row_mut(row);
                            let ex = ex.as_slice_mut().expect("contiguous");
                            let mut hr = h.row_mut(s_);
                            let hr = hr.as_slice_mut().expect("contiguous");
                            let mut cr = c.row_mut(s_);
                            let cr = cr.as_slice_mut().expect("contiguous");
                            lstm_row(gi_r, pre, gate_row, ex, hr, cr);
                        }
                    }
                }
                out.slice_mut(s![rows, ..]).assign(&h);
            }
            tapes.push(LayerTape {
                x,
                h_prev,
                c_prev,
                gates,
                extra,
            });
            x = out;
        }
        // Back to sequence-major `[seqs, len, H]`.
        let mut y = vec![0f32; n * hidden];
        for s_ in 0..seqs {
            for t in 0..len {
                y[(s_ * len + t) * hidden..(s_ * len + t + 1) * hidden]
                    .copy_from_slice(x.row(t * seqs + s_).as_slice().expect("contiguous"));
            }
        }
        (
            y,
            Self {
                cell,
                seqs,
                len,
                hidden,
                keep,
                layers: tapes,
            },
        )
    }

    /// Gradients of every layer's parameters given `d_out = ∂L/∂outputs` (`[seqs, len, H]`,
    /// row-major, the layout [`forward`](Self::forward) returned).
    pub fn backward(&self, layers: &[HostRnnLayer], d_out: &[f32]) -> Vec<HostRnnLayer> {
        let (seqs, len, hd) = (self.seqs, self.len, self.hidden);
        let n = seqs * len;
        let g = self.cell.gates() * hd;
        let mut dy = Array2::<f32>::zeros((n, hd));
        for s_ in 0..seqs {
            for t in 0..len {
                dy.row_mut(t * seqs + s_)
                    .as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&d_out[(s_ * len + t) * hd..(s_ * len + t + 1) * hd]);
            }
        }
        let mut grads = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate().rev() {
            let tape = &self.layers[l];
            // ∂L/∂(gate pre-activations): for the input projection (d_gi) and, for the GRU,
            // the hidden projection (d_gh differs from d_gi in the n gate).
            let mut d_gi = Array2::<f32>::zeros((n, g));
            let mut d_gh = match self.cell {
                HostCell::Gru => Array2::<f32>::zeros((n, g)),
                HostCell::Lstm => Array2::zeros((0, 0)),
            };
            let mut dh_next = Array2::<f32>::zeros((seqs, hd));
            let mut dc_next = Array2::<f32>::zeros((seqs, hd));
            let w_hh_t = layer.w_hh.t().as_standard_layout().into_owned();
            for t in (0..len).rev() {
                let rows = t * seqs..(t + 1) * seqs;
                for s_ in 0..seqs {
                    let row = t * seqs + s_;
                    let gate = tape.gates.row(row);
                    let gate = gate.as_slice().expect("contiguous");
                    let ex = tape.extra.row(row);
                    let ex = ex.as_slice().expect("contiguous");
                    let hp = tape.h_prev.row(row);
                    let hp = hp.as_slice().expect("contiguous");
                    let dyr = dy.row(row);
                    let dyr = dyr.as_slice().expect("contiguous");
                    let mut dhn = dh_next.row_mut(s_);
                    let dhn = dhn.as_slice_mut().expect("contiguous");
                    let mut dgi = d_gi.row_mut(row);
                    let dgi = dgi.as_slice_mut().expect("contiguous");
                    match self.cell {
                        HostCell::Gru => {
                            let mut dgh = d_gh.row_mut(row);
                            let dgh = dgh.as_slice_mut().expect("contiguous");
                            for j in 0..hd {
                                let (r, z, nn) = (gate[j], gate[hd + j], gate[2 * hd + j]);
                                let dh = dyr[j] + dhn[j];
                                let dn = dh * (1.0 - z);
                                let dz = dh * (hp[j] - nn);
                                let dn_pre = dn * (1.0 - nn * nn);
                                let dr_pre = dn_pre * ex[j] * r * (1.0 - r);
                                let dz_pre = dz * z * (1.0 - z);
                                dgi[j] = dr_pre;
                                dgi[hd + j] = dz_pre;
                                dgi[2 * hd + j] = dn_pre;
                                dgh[j] = dr_pre;
                                dgh[hd + j] = dz_pre;
                                dgh[2 * hd + j] = dn_pre * r;
                                // The direct path h → h' (z ⊙ h); the matmul path is added below.
                                dhn[j] = dh * z;
                            }
                        }
                        HostCell::Lstm => {
                            let cp = tape.c_prev.row(row);
                            let cp = cp.as_slice().expect("contiguous");
                            let mut dcn = dc_next.row_mut(s_);
                            let dcn = dcn.as_slice_mut().expect("contiguous");
                            for j in 0..hd {
                                let (i, f, gg, o) =
                                    (gate[j], gate[hd + j], gate[2 * hd + j], gate[3 * hd + j]);
                                let tc = ex[j];
                                let dh = dyr[j] + dhn[j];
                                let dc = dcn[j] + dh * o * (1.0 - tc * tc);
                                dgi[j] = dc * gg * i * (1.0 - i);
                                dgi[hd + j] = dc * cp[j] * f * (1.0 - f);
                                dgi[2 * hd + j] = dc * i * (1.0 - gg * gg);
                                dgi[3 * hd + j] = dh * tc * o * (1.0 - o);
                                dcn[j] = dc * f;
                                dhn[j] = 0.0;
                            }
                        }
                    }
                }
                let d_pre = match self.cell {
                    HostCell::Gru => d_gh.slice(s![rows.clone(), ..]),
                    HostCell::Lstm => d_gi.slice(s![rows.clone(), ..]),
                };
                matmul_acc(d_pre, w_hh_t.view(), &mut dh_next);
                // No gradient crosses a reset: the state before it was replaced by zeros.
                for s_ in 0..seqs {
                    let k = self.keep[t * seqs + s_];
                    if k != 1.0 {
                        dh_next.row_mut(s_).iter_mut().for_each(|v| *v *= k);
                        dc_next.row_mut(s_).iter_mut().for_each(|v| *v *= k);
                    }
                }
            }
            let col_sum = |m: &Array2<f32>| m.sum_axis(Axis(0)).to_vec();
            let (w_hh, b_hh) = match self.cell {
                HostCell::Gru => (mm(tape.h_prev.t(), d_gh.view()), col_sum(&d_gh)),
                HostCell::Lstm => (mm(tape.h_prev.t(), d_gi.view()), col_sum(&d_gi)),
            };
            let b_ih = col_sum(&d_gi);
            let w_ih = mm(tape.x.t(), d_gi.view());
            if l > 0 {
                dy = mm(d_gi.view(), layer.w_ih.t());
            }
            grads.push(HostRnnLayer {
                w_ih,
                w_hh,
                b_ih,
                b_hh,
            });
        }
        grads.reverse();
        grads
    }
}

/// A `[rows, cols]` view of a row-major slice.
pub fn view2(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), data).expect("slice of rows * cols")
}

//! GRU and LSTM encoders (Cho et al. 2014; Hochreiter & Schmidhuber 1997) with PyTorch's
//! conventions, episode-start resets inside the sequence, and a step loop built for speed.
//!
//! Conventions (PyTorch `nn.GRU` / `nn.LSTM`, checked against `rnn_cells.json`): gates stacked
//! in the order `(r, z, n)` for the GRU and `(i, f, g, o)` for the LSTM, separate input and
//! hidden biases, and the GRU's reset gate applied *after* the hidden matmul and its bias:
//! `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`, `h' = (1 - z) * n + z * h`.
//! Weights are stored in Burn's layout, `w_ih: [input, G * hidden]`, `w_hh: [hidden, G * hidden]`
//! (the transpose of PyTorch's).
//!
//! Speed: the input projections of a whole sequence are one `[batch * time, input] x
//! [input, G * hidden]` matmul; each step is one fused `[hidden, G * hidden]` hidden matmul and
//! a few element-wise operations with the one-`exp` activations of [`crate::activation`].
//! Layers run one after the other over the whole sequence, so every layer's input projection
//! is batched too. Resets cost one multiplication, and only on steps where some environment
//! starts an episode.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Element, Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, Rng};

use crate::activation::{sigmoid, tanh};
use crate::encoder::{EncoderState, SequenceEncoder, keep_masks};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Gru,
    Lstm,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }
}

/// Configuration of a [`Gru`] or an [`Lstm`] encoder.
#[derive(Config, Debug)]
pub struct RnnConfig {
    /// Width of one input vector.
    pub d_input: usize,
    /// Width of the hidden state (and of the output).
    pub d_hidden: usize,
    /// Number of stacked layers.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Seed of the initial weights (PyTorch's default: uniform in `±1/sqrt(d_hidden)`, drawn on
    /// the host).
    #[config(default = 0)]
    pub seed: u64,
}

impl RnnConfig {
    /// Check that every size is positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("d_input", self.d_input),
            ("d_hidden", self.d_hidden),
            ("num_layers", self.num_layers),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        Ok(())
    }

    /// A GRU on `device`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init_gru<B: Backend>(&self, device: &Device<B>) -> Gru<B> {
        Gru {
            rnn: self.init_rnn(Cell::Gru, device),
        }
    }

    /// An LSTM on `device`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init_lstm<B: Backend>(&self, device: &Device<B>) -> Lstm<B> {
        Lstm {
            rnn: self.init_rnn(Cell::Lstm, device),
        }
    }

    fn init_rnn<B: Backend>(&self, cell: Cell, device: &Device<B>) -> Rnn<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RnnConfig: {e}");
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let h = self.d_hidden;
        let g = cell.gates() * h;
        let k = 1.0 / (h as f64).sqrt();
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| rng.uniform_range(-k, k) as f32)
                .collect::<Vec<f32>>()
        };
        let layers = (0..self.num_layers)
            .map(|l| {
                let d_in = if l == 0 { self.d_input } else { h };
                RnnLayer::from_burn_layout(
                    draw(d_in * g),
                    draw(h * g),
                    draw(g),
                    draw(g),
                    d_in,
                    h,
                    cell.gates(),
                    device,
                )
            })
            .collect();
        Rnn {
            layers,
            d_input: self.d_input,
            d_hidden: h,
            cell,
        }
    }
}

/// The weights of one recurrent layer in PyTorch's layout (row-major, float64 so that nothing is
/// lost on a float64 backend), for importing models
/// trained with PyTorch: `weight_ih: [G * hidden, input]`, `weight_hh: [G * hidden, hidden]`,
/// `bias_ih`, `bias_hh: [G * hidden]`.
#[derive(Debug, Clone)]
pub struct PytorchRnnWeights {
    /// `weight_ih_l<k>`, `[G * hidden, input]` row-major.
    pub weight_ih: Vec<f64>,
    /// `weight_hh_l<k>`, `[G * hidden, hidden]` row-major.
    pub weight_hh: Vec<f64>,
    /// `bias_ih_l<k>`, `[G * hidden]`.
    pub bias_ih: Vec<f64>,
    /// `bias_hh_l<k>`, `[G * hidden]`.
    pub bias_hh: Vec<f64>,
}

/// One recurrent layer's parameters (Burn layout).
#[derive(Module, Debug)]
pub struct RnnLayer<B: Backend> {
    /// Input weights `[input, G * hidden]`.
    pub w_ih: Param<Tensor<B, 2>>,
    /// Hidden weights `[hidden, G * hidden]`.
    pub w_hh: Param<Tensor<B, 2>>,
    /// Input bias `[G * hidden]`.
    pub b_ih: Param<Tensor<B, 1>>,
    /// Hidden bias `[G * hidden]`.
    pub b_hh: Param<Tensor<B, 1>>,
}

impl<B: Backend> RnnLayer<B> {
    fn from_burn_layout<E: Element>(
        w_ih: Vec<E>,
        w_hh: Vec<E>,
        b_ih: Vec<E>,
        b_hh: Vec<E>,
        d_in: usize,
        h: usize,
        gates: usize,
        device: &Device<B>,
    ) -> Self {
        let g = gates * h;
        let t2 = |v: Vec<E>, r: usize| {
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [r, g]), device))
        };
        let t1 = |v: Vec<E>| Param::from_tensor(Tensor::from_data(TensorData::new(v, [g]), device));
        Self {
            w_ih: t2(w_ih, d_in),
            w_hh: t2(w_hh, h),
            b_ih: t1(b_ih),
            b_hh: t1(b_hh),
        }
    }

    fn from_pytorch(
        w: &PytorchRnnWeights,
        gates: usize,
        device: &Device<B>,
    ) -> (Self, usize, usize) {
        let g = w.bias_ih.len();
        assert!(
            g.is_multiple_of(gates) && g > 0,
            "bias length {g} is not a multiple of {gates}"
        );
        let h = g / gates;
        let d_in = w.weight_ih.len() / g;
        assert_eq!(w.weight_ih.len(), g * d_in, "weight_ih size");
        assert_eq!(w.weight_hh.len(), g * h, "weight_hh size");
        assert_eq!(w.bias_hh.len(), g, "bias_hh size");
        let transpose = |m: &[f64], cols: usize| -> Vec<f64> {
            let mut out = vec![0f64; m.len()];
            for r in 0..g {
                for c in 0..cols {
                    out[c * g + r] = m[r * cols + c];
                }
            }
            out
        };
        (
            Self::from_burn_layout(
                transpose(&w.weight_ih, d_in),
                transpose(&w.weight_hh, h),
                w.bias_ih.clone(),
                w.bias_hh.clone(),
                d_in,
                h,
                gates,
                device,
            ),
            d_in,
            h,
        )
    }
}

/// The shared body of [`Gru`] and [`Lstm`]: the layers and their sizes.
#[derive(Module, Debug)]
pub struct Rnn<B: Backend> {
    layers: Vec<RnnLayer<B>>,
    d_input: usize,
    d_hidden: usize,
    #[module(skip)]
    cell: Cell,
}

impl<B: Backend> Rnn<B> {
    fn cell(&self) -> Cell {
        self.cell
    }

    fn from_pytorch(cell: Cell, layers: &[PytorchRnnWeights], device: &Device<B>) -> Self {
        assert!(!layers.is_empty(), "an RNN needs at least one layer");
        let mut out = Vec::new();
        let (mut d_input, mut d_hidden) = (0, 0);
        for (l, w) in layers.iter().enumerate() {
            let (layer, d_in, h) = RnnLayer::from_pytorch(w, cell.gates(), device);
            if l == 0 {
                (d_input, d_hidden) = (d_in, h);
            } else {
                assert_eq!((d_in, h), (d_hidden, d_hidden), "layer {l} sizes");
            }
            out.push(layer);
        }
        Self {
            layers: out,
            d_input,
            d_hidden,
            cell,
        }
    }

    fn n_state(&self) -> usize {
        match self.cell() {
            Cell::Gru => 1,
            Cell::Lstm => 2,
        }
    }

    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        let shape = [self.layers.len(), self.d_hidden];
        EncoderState::zeros(batch, &vec![shape; self.n_state()], device)
    }

    /// The state of layer `l` as `[batch, hidden]` tensors.
    fn layer_state(&self, state: &EncoderState<B>, l: usize) -> Vec<Tensor<B, 2>> {
        assert_eq!(
            state.tensors.len(),
            self.n_state(),
            "state of another encoder (expected {} tensors)",
            self.n_state()
        );
        let [b, nl, h] = state.tensors[0].dims();
        assert_eq!((nl, h), (self.layers.len(), self.d_hidden), "state shape");
        state
            .tensors
            .iter()
            .map(|t| {
                if nl == 1 {
                    t.clone().reshape([b, h])
                } else {
                    t.clone().slice([0..b, l..l + 1, 0..h]).reshape([b, h])
                }
            })
            .collect()
    }

    /// Run all layers over a time-major input `x: [time, batch, input]`; returns the last
    /// layer's outputs `[time, batch, hidden]` and the final state.
    fn run(
        &self,
        x: Tensor<B, 3>,
        state: &EncoderState<B>,
        keep: &[Option<Tensor<B, 2>>],
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let [t, b, _] = x.dims();
        let h = self.d_hidden;
        let mut input = x;
        let mut finals: Vec<Vec<Tensor<B, 2>>> = vec![Vec::new(); self.n_state()];
        for (l, layer) in self.layers.iter().enumerate() {
            let d_in = input.dims()[2];
            let g = self.cell().gates() * h;
            let bias = match self.cell() {
                // The GRU's hidden bias of the n gate sits inside r * (.), so the hidden bias is
                // added per step; the LSTM's two biases fold into the batched projection.
                Cell::Gru => layer.b_ih.val(),
                Cell::Lstm => layer.b_ih.val() + layer.b_hh.val(),
            };
            let gi = (input.reshape([t * b, d_in]).matmul(layer.w_ih.val())
                + bias.unsqueeze::<2>())
            .reshape([t, b, g]);
            let s0 = self.layer_state(state, l);
            let (outs, last) = match self.cell() {
                Cell::Gru => gru_steps(layer, gi, s0[0].clone(), keep, b, h),
                Cell::Lstm => lstm_steps(layer, gi, s0[0].clone(), s0[1].clone(), keep, b, h),
            };
            for (f, s) in finals.iter_mut().zip(last) {
                f.push(s);
            }
            input = stack(outs, 0);
        }
        let state = EncoderState::new(
            finals
                .into_iter()
                .map(|per_layer| stack(per_layer, 1))
                .collect(),
        );
        (input, state)
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        let [b, f] = obs.dims();
        // One host read decides whether any row resets (a multiplication otherwise).
        let keep = keep_masks(&episode_start.reshape([b, 1]));
        let (out, state) = self.run(obs.reshape([1, b, f]), &state, &keep);
        (out.reshape([b, self.d_hidden]), state)
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let keep = keep_masks(&episode_starts);
        let (out, state) = self.run(obs.swap_dims(0, 1), &state0, &keep);
        (out.swap_dims(0, 1), state)
    }
}

/// `Tensor::stack`, with a reshape instead of a copy for a single tensor (every inference
/// step, and single-layer states).
fn stack<B: Backend>(mut items: Vec<Tensor<B, 2>>, dim: usize) -> Tensor<B, 3> {
    if items.len() == 1 {
        let t = items.pop().expect("one tensor");
        let [a, b] = t.dims();
        let shape = if dim == 0 { [1, a, b] } else { [a, 1, b] };
        t.reshape(shape)
    } else {
        Tensor::stack(items, dim)
    }
}

/// The GRU recursion over precomputed input projections `gi: [time, batch, 3H]`.
fn gru_steps<B: Backend>(
    layer: &RnnLayer<B>,
    gi: Tensor<B, 3>,
    mut h: Tensor<B, 2>,
    keep: &[Option<Tensor<B, 2>>],
    b: usize,
    hd: usize,
) -> (Vec<Tensor<B, 2>>, Vec<Tensor<B, 2>>) {
    let t_len = gi.dims()[0];
    let w_hh = layer.w_hh.val();
    let b_hh = layer.b_hh.val().unsqueeze::<2>();
    let mut outs = Vec::with_capacity(t_len);
    for t in 0..t_len {
        if let Some(k) = &keep[t] {
            h = h * k.clone();
        }
        let gi_t = gi.clone().narrow(0, t, 1).reshape([b, 3 * hd]);
        let gh = h.clone().matmul(w_hh.clone()) + b_hh.clone();
        let rz =
            sigmoid(gi_t.clone().slice([0..b, 0..2 * hd]) + gh.clone().slice([0..b, 0..2 * hd]));
        let r = rz.clone().slice([0..b, 0..hd]);
        let z = rz.slice([0..b, hd..2 * hd]);
        let n = tanh(gi_t.slice([0..b, 2 * hd..3 * hd]) + r * gh.slice([0..b, 2 * hd..3 * hd]));
        // h' = (1 - z) * n + z * h = n + z * (h - n)
        h = n.clone() + z * (h - n);
        outs.push(h.clone());
    }
    (outs, vec![h])
}

/// The LSTM recursion over precomputed input projections (both biases included)
/// `gi: [time, batch, 4H]`.
fn lstm_steps<B: Backend>(
    layer: &RnnLayer<B>,
    gi: Tensor<B, 3>,
    mut h: Tensor<B, 2>,
    mut c: Tensor<B, 2>,
    keep: &[Option<Tensor<B, 2>>],
    b: usize,
    hd: usize,
) -> (Vec<Tensor<B, 2>>, Vec<Tensor<B, 2>>) {
    let t_len = gi.dims()[0];
    let w_hh = layer.w_hh.val();
    let mut outs = Vec::with_capacity(t_len);
    for t in 0..t_len {
        if let Some(k) = &keep[t] {
            h = h * k.clone();
            c = c * k.clone();
        }
        let pre = gi.clone().narrow(0, t, 1).reshape([b, 4 * hd]) + h.matmul(w_hh.clone());
        let i_f = sigmoid(pre.clone().slice([0..b, 0..2 * hd]));
        let g = tanh(pre.clone().slice([0..b, 2 * hd..3 * hd]));
        let o = sigmoid(pre.slice([0..b, 3 * hd..4 * hd]));
        let i = i_f.clone().slice([0..b, 0..hd]);
        let f = i_f.slice([0..b, hd..2 * hd]);
        c = f * c + i * g;
        h = o * tanh(c.clone());
        outs.push(h.clone());
    }
    (outs, vec![h, c])
}

macro_rules! rnn_encoder {
    ($name:ident, $cell:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// State: see [`EncoderState`]. Output width: `d_hidden` (the last layer's hidden state).
        #[derive(Module, Debug)]
        pub struct $name<B: Backend> {
            rnn: Rnn<B>,
        }

        impl<B: Backend> $name<B> {
            /// Build from PyTorch weights, one entry per layer (sizes are read from them).
            pub fn from_pytorch(layers: &[PytorchRnnWeights], device: &Device<B>) -> Self {
                Self {
                    rnn: Rnn::from_pytorch($cell, layers, device),
                }
            }

            /// The layers' parameters.
            pub fn layers(&self) -> &[RnnLayer<B>] {
                &self.rnn.layers
            }
        }

        impl<B: Backend> SequenceEncoder<B> for $name<B> {
            fn output_dim(&self) -> usize {
                self.rnn.d_hidden
            }

            fn input_dim(&self) -> usize {
                self.rnn.d_input
            }

            fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
                self.rnn.initial_state(batch, device)
            }

            fn step(
                &self,
                obs: Tensor<B, 2>,
                state: EncoderState<B>,
                episode_start: Tensor<B, 1>,
            ) -> (Tensor<B, 2>, EncoderState<B>) {
                self.rnn.step(obs, state, episode_start)
            }

            fn forward_seq(
                &self,
                obs: Tensor<B, 3>,
                state0: EncoderState<B>,
                episode_starts: Tensor<B, 2>,
            ) -> (Tensor<B, 3>, EncoderState<B>) {
                self.rnn.forward_seq(obs, state0, episode_starts)
            }
        }
    };
}

rnn_encoder!(
    Gru,
    Cell::Gru,
    "A multi-layer GRU encoder with PyTorch's `nn.GRU` conventions (Cho et al. 2014); see the \
     [module docs](self)."
);
rnn_encoder!(
    Lstm,
    Cell::Lstm,
    "A multi-layer LSTM encoder with PyTorch's `nn.LSTM` conventions (Hochreiter & \
     Schmidhuber 1997); see the [module docs](self)."
);

//! GTrXL, the gated transformer-XL of Parisotto et al. 2020 ("Stabilizing Transformers for
//! Reinforcement Learning"), as DI-engine implements it (checked against `gtrxl_gate.json`).
//!
//! One layer, with input `h: [batch, T, E]` and the layer's memory `M: [batch, memory_len, E]`:
//!
//! ```text
//! x1 = LayerNorm1(concat(M, h))                       (pre-layer-norm, over memory and input)
//! a  = relu(RelativeAttention(query = h, keys/values from x1))
//! o1 = gate1(h, a)                                    (GRU-type gate instead of h + a)
//! o2 = gate2(o1, mlp(LayerNorm2(o1)))                 (mlp: mlp_num Linear+ReLU blocks)
//! ```
//!
//! with the gating unit `r = σ(W_r y + U_r x)`, `z = σ(W_z y + U_z x - b_g)`,
//! `ĥ = tanh(W_g y + U_g (r ⊙ x))`, `g = (1 - z) ⊙ x + z ⊙ ĥ` (`b_g` initialized to 2, so each
//! layer starts close to the identity), Transformer-XL relative positional attention
//! (sinusoidal relative encodings, learned biases `u`, `v`, the `_rel_shift` trick), and an
//! input embedding `relu(Linear(input_dim, E))`.
//!
//! **Memory.** Each layer `l` keeps the last `memory_len` inputs it saw (layer 0: the embedded
//! observations; the top slot keeps the final outputs), detached from the graph: the state is
//! `memory: [batch, (layers + 1) * memory_len, E]`, zeros initially (zero slots are attended
//! to, not masked, as in DI-engine). An episode start resets an environment's memory to zeros.
//!
//! **Step and sequence.** [`step`](SequenceEncoder::step) is DI-engine's forward on a segment of
//! length 1: the token attends to the `memory_len` previous tokens and itself.
//! [`forward_seq`](SequenceEncoder::forward_seq) computes the same values for all `T` tokens at
//! once: token `t` attends to the `memory_len` tokens before it (from the sequence or the
//! incoming memory) and itself, through a causal sliding-window mask; tokens from before an
//! episode start are replaced by the zero slot a reset memory holds, per environment. Within
//! the sequence, gradients flow from a token to the earlier tokens it attends to (as in
//! DI-engine's segment training); the incoming and outgoing memories are detached.
//! [`Gtrxl::forward_segment`] is DI-engine's own segment call, where every token of the segment
//! sees the whole memory and all earlier tokens of the segment (the golden reference).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{
    Bool, Device, Tensor, TensorData, activation::relu, activation::softmax, backend::Backend,
};
use quantrl_core::{ConfigError, Rng};

use crate::activation::{sigmoid, tanh};
use crate::encoder::{EncoderState, SequenceEncoder};
use crate::mlp::linear_from_pytorch;

/// Configuration of a [`Gtrxl`] encoder.
#[derive(Config, Debug)]
pub struct GtrxlConfig {
    /// Width of one observation.
    pub input_dim: usize,
    /// Model width `E` (the embedding and every layer's width; also the output width). Even.
    #[config(default = 64)]
    pub embedding_dim: usize,
    /// Number of attention heads.
    #[config(default = 2)]
    pub head_num: usize,
    /// Width of one head (`head_num * head_dim` is the attention width).
    #[config(default = 32)]
    pub head_dim: usize,
    /// Number of `Linear(E, E) + ReLU` blocks of each layer's MLP.
    #[config(default = 2)]
    pub mlp_num: usize,
    /// Number of transformer layers.
    #[config(default = 1)]
    pub layer_num: usize,
    /// Number of past tokens each layer remembers.
    #[config(default = 16)]
    pub memory_len: usize,
    /// Initial value of the gates' `b_g` (the paper and DI-engine: 2).
    #[config(default = 2.0)]
    pub gru_bias: f64,
    /// Seed of the initial weights (PyTorch's default uniform init, drawn on the host).
    #[config(default = 0)]
    pub seed: u64,
}

impl GtrxlConfig {
    /// Check sizes: all positive, `embedding_dim` even (sinusoidal encodings).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("input_dim", self.input_dim),
            ("embedding_dim", self.embedding_dim),
            ("head_num", self.head_num),
            ("head_dim", self.head_dim),
            ("mlp_num", self.mlp_num),
            ("layer_num", self.layer_num),
            ("memory_len", self.memory_len),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        if !self.embedding_dim.is_multiple_of(2) {
            return Err(ConfigError::out_of_range(
                "embedding_dim",
                self.embedding_dim,
                "even (sinusoidal positional encoding)",
            ));
        }
        Ok(())
    }

    /// A GTrXL with freshly drawn weights.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Gtrxl<B> {
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut fan_in = 1usize;
        self.build(
            |name, shape| {
                let n: usize = shape.iter().product();
                if name == "u"
                    || name == "v"
                    || (name.contains("layernorm") && name.ends_with(".bias"))
                {
                    vec![0.0; n]
                } else if name.contains("layernorm") {
                    vec![1.0; n]
                } else if name.ends_with(".bg") {
                    vec![self.gru_bias; n]
                } else {
                    // PyTorch's Linear default: U(±1/sqrt(fan_in)) for weights and biases.
                    if name.ends_with(".weight") {
                        fan_in = shape[1];
                    }
                    let k = 1.0 / (fan_in as f64).sqrt();
                    (0..n).map(|_| rng.uniform_range(-k, k)).collect()
                }
            },
            device,
        )
    }

    /// A GTrXL with the weights of a DI-engine `GTrXL` state dict: `tensor(name, shape)` returns
    /// the row-major values of parameter `name` (DI-engine's names and PyTorch layouts, e.g.
    /// `layers.0.attention.attention_kv.0.weight`, `[2 * head_num * head_dim, E]`).
    ///
    /// # Panics
    /// When the config is invalid or a returned tensor has the wrong number of values.
    pub fn from_di_engine<B: Backend>(
        &self,
        mut tensor: impl FnMut(&str, &[usize]) -> Vec<f64>,
        device: &Device<B>,
    ) -> Gtrxl<B> {
        self.build(
            |name, shape| {
                let n: usize = shape.iter().product();
                let v = tensor(name, shape);
                assert_eq!(v.len(), n, "{name}: {} values for shape {shape:?}", v.len());
                v
            },
            device,
        )
    }

    /// Build from a source of named parameters (PyTorch layouts and DI-engine names).
    fn build<B: Backend>(
        &self,
        mut get: impl FnMut(&str, &[usize]) -> Vec<f64>,
        device: &Device<B>,
    ) -> Gtrxl<B> {
        if let Err(e) = self.validate() {
            panic!("invalid GtrxlConfig: {e}");
        }
        let e = self.embedding_dim;
        let a = self.head_num * self.head_dim;
        let get: &mut dyn FnMut(&str, &[usize]) -> Vec<f64> = &mut get;
        let linear = |get: &mut dyn FnMut(&str, &[usize]) -> Vec<f64>,
                      name: &str,
                      d_in: usize,
                      d_out: usize|
         -> Linear<B> {
            let w = get(&format!("{name}.weight"), &[d_out, d_in]);
            let b = get(&format!("{name}.bias"), &[d_out]);
            linear_from_pytorch(&w, d_out, Some(&b), device)
        };
        let embedding = linear(get, "embedding.0", self.input_dim, e);
        let mut layers = Vec::with_capacity(self.layer_num);
        for l in 0..self.layer_num {
            let p = format!("layers.{l}");
            let attention = RelAttention {
                kv: linear(get, &format!("{p}.attention.attention_kv.0"), e, 2 * a),
                q: linear(get, &format!("{p}.attention.attention_q.0"), e, a),
                project: linear(get, &format!("{p}.attention.project.0"), a, e),
                project_pos: linear(get, &format!("{p}.attention.project_pos.0"), e, a),
            };
            // DI-engine's MLP is Sequential(fc_block, Dropout, fc_block, ...): linears at even
            // indices.
            let mlp = (0..self.mlp_num)
                .map(|k| linear(get, &format!("{p}.mlp.{}.0", 2 * k), e, e))
                .collect();
            let mut gate = |g: &str| {
                let mut w = |n: &str| get(&format!("{p}.{g}.{n}.weight"), &[e, e]);
                let (wr, ur, wz, uz, wg, ug) =
                    (w("Wr"), w("Ur"), w("Wz"), w("Uz"), w("Wg"), w("Ug"));
                let bg = get(&format!("{p}.{g}.bg"), &[e]);
                GruGate::from_pytorch(&wr, &ur, &wz, &uz, &wg, &ug, &bg, device)
            };
            let gate1 = gate("gate1");
            let gate2 = gate("gate2");
            let mut norm = |n: &str| {
                let mut ln = LayerNormConfig::new(e).with_epsilon(1e-5).init(device);
                let w = get(&format!("{p}.{n}.weight"), &[e]);
                let b = get(&format!("{p}.{n}.bias"), &[e]);
                ln.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(w, [e]), device));
                ln.beta = Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(b, [e]),
                    device,
                )));
                ln
            };
            let norm1 = norm("layernorm1");
            let norm2 = norm("layernorm2");
            layers.push(GtrxlLayer {
                norm1,
                norm2,
                attention,
                mlp,
                gate1,
                gate2,
            });
        }
        let hd = self.head_dim;
        let mut uv = |n: &str| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(get(n, &[self.head_num, hd]), [self.head_num, hd]),
                device,
            ))
        };
        let u = uv("u");
        let v = uv("v");
        Gtrxl {
            embedding,
            layers,
            u,
            v,
            input_dim: self.input_dim,
            embedding_dim: e,
            head_num: self.head_num,
            head_dim: hd,
            memory_len: self.memory_len,
        }
    }
}

/// The GRU-type gating unit of GTrXL: `g = (1 - z) ⊙ x + z ⊙ ĥ` with `x` the skip stream and
/// `y` the sub-layer output (see the [module docs](self)). Weights are fused: `[W_r | W_z | W_g]`
/// in one `[D, 3D]` matrix and `[U_r | U_z]` in one `[D, 2D]` matrix (Burn layout).
#[derive(Module, Debug)]
pub struct GruGate<B: Backend> {
    /// `[W_r | W_z | W_g]`, `[D, 3D]`.
    pub w: Param<Tensor<B, 2>>,
    /// `[U_r | U_z]`, `[D, 2D]`.
    pub u_rz: Param<Tensor<B, 2>>,
    /// `U_g`, `[D, D]`.
    pub u_g: Param<Tensor<B, 2>>,
    /// `b_g`, `[D]`.
    pub bg: Param<Tensor<B, 1>>,
}

impl<B: Backend> GruGate<B> {
    /// A gate from PyTorch-layout (`[out, in]`) weights of DI-engine's `GRUGatingUnit`.
    pub fn from_pytorch(
        wr: &[f64],
        ur: &[f64],
        wz: &[f64],
        uz: &[f64],
        wg: &[f64],
        ug: &[f64],
        bg: &[f64],
        device: &Device<B>,
    ) -> Self {
        let d = bg.len();
        // Burn layout [in, out] of several [out, in] blocks side by side.
        let fuse = |blocks: &[&[f64]]| -> Tensor<B, 2> {
            let k = blocks.len();
            let mut out = vec![0f64; d * k * d];
            for (bi, w) in blocks.iter().enumerate() {
                assert_eq!(w.len(), d * d, "gate weight is not [{d}, {d}]");
                for o in 0..d {
                    for i in 0..d {
                        out[i * k * d + bi * d + o] = w[o * d + i];
                    }
                }
            }
            Tensor::from_data(TensorData::new(out, [d, k * d]), device)
        };
        Self {
            w: Param::from_tensor(fuse(&[wr, wz, wg])),
            u_rz: Param::from_tensor(fuse(&[ur, uz])),
            u_g: Param::from_tensor(fuse(&[ug])),
            bg: Param::from_tensor(Tensor::from_data(TensorData::new(bg.to_vec(), [d]), device)),
        }
    }

    /// The gated output.
    ///
    /// # Shapes
    /// - `x` (skip stream), `y` (sub-layer output): `[n, D]`
    /// - output: `[n, D]`
    pub fn forward(&self, x: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let wy = y.matmul(self.w.val());
        let ux = x.clone().matmul(self.u_rz.val());
        let r = sigmoid(wy.clone().slice([0..n, 0..d]) + ux.clone().slice([0..n, 0..d]));
        let z = sigmoid(
            wy.clone().slice([0..n, d..2 * d]) + ux.slice([0..n, d..2 * d])
                - self.bg.val().unsqueeze::<2>(),
        );
        let h = tanh(wy.slice([0..n, 2 * d..3 * d]) + (r * x.clone()).matmul(self.u_g.val()));
        x.clone() + z * (h - x)
    }
}

/// Transformer-XL relative multi-head attention (DI-engine's `AttentionXL`).
#[derive(Module, Debug)]
struct RelAttention<B: Backend> {
    kv: Linear<B>,
    q: Linear<B>,
    project: Linear<B>,
    project_pos: Linear<B>,
}

/// One GTrXL layer.
#[derive(Module, Debug)]
struct GtrxlLayer<B: Backend> {
    norm1: LayerNorm<B>,
    norm2: LayerNorm<B>,
    attention: RelAttention<B>,
    mlp: Vec<Linear<B>>,
    gate1: GruGate<B>,
    gate2: GruGate<B>,
}

/// The gated transformer-XL encoder (Parisotto et al. 2020); see the [module docs](self).
///
/// Output width: `embedding_dim`. State: `memory: [batch, (layer_num + 1) * memory_len,
/// embedding_dim]` (see [`EncoderState`]).
#[derive(Module, Debug)]
pub struct Gtrxl<B: Backend> {
    embedding: Linear<B>,
    layers: Vec<GtrxlLayer<B>>,
    u: Param<Tensor<B, 2>>,
    v: Param<Tensor<B, 2>>,
    input_dim: usize,
    embedding_dim: usize,
    head_num: usize,
    head_dim: usize,
    memory_len: usize,
}

/// Which keys a query may attend to, beyond causality.
enum Window<B: Backend> {
    /// DI-engine's segment call: the whole memory and every earlier token of the segment.
    Segment,
    /// The `memory_len` previous tokens and itself (a loop of one-token calls), with per-env
    /// "real key" masks `[batch, T, memory_len + T]` (1 where the key is a real token, 0 where a
    /// reset put a zero slot in its place), or `None` when no reset happens.
    Sliding(Option<Tensor<B, 3>>),
}

/// A logit low enough that its softmax weight is exactly 0 (finite, so no `inf - inf`).
const MASKED_SCORE: f64 = -1e30;

/// Transformer-XL's `_rel_shift`: from scores against relative positions `full-1, ..., 0`
/// (`[.., T, full]`) to scores against key positions, `out[i, j] = x[i, j + T - 1 - i]` where
/// `j <= i + full - T` (the other entries are masked by every caller).
fn rel_shift<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, n, t, full] = x.dims();
    let zeros = Tensor::zeros([b, n, t, 1], &x.device());
    Tensor::cat(vec![zeros, x], 3)
        .reshape([b, n, full + 1, t])
        .slice([0..b, 0..n, 1..full + 1, 0..t])
        .reshape([b, n, t, full])
}

/// Sinusoidal encodings of the relative positions `full-1, ..., 0`, `[full, e]`
/// (`[sin(p f_k) | cos(p f_k)]`, `f_k = 10000^(-2k/e)`).
fn relative_positions<B: Backend>(full: usize, e: usize, device: &Device<B>) -> Tensor<B, 2> {
    let half = e / 2;
    let mut out = vec![0f64; full * e];
    for j in 0..full {
        let p = (full - 1 - j) as f64;
        for k in 0..half {
            let f = 1.0 / 10000f64.powf(2.0 * k as f64 / e as f64);
            out[j * e + k] = (p * f).sin();
            out[j * e + half + k] = (p * f).cos();
        }
    }
    Tensor::from_data(TensorData::new(out, [full, e]), device)
}

impl<B: Backend> Gtrxl<B> {
    /// Number of memory slots per layer.
    pub fn memory_len(&self) -> usize {
        self.memory_len
    }

    /// The gating units of every layer (`gate1`, `gate2` per layer).
    pub fn gates(&self) -> Vec<&GruGate<B>> {
        self.layers
            .iter()
            .flat_map(|l| [&l.gate1, &l.gate2])
            .collect()
    }

    /// The memory of each layer (and the top slot), `[batch, memory_len, E]` each.
    fn memories(&self, state: &EncoderState<B>) -> Vec<Tensor<B, 3>> {
        assert_eq!(state.tensors.len(), 1, "a GTrXL state has one tensor");
        let mem = &state.tensors[0];
        let [b, rows, e] = mem.dims();
        let m = self.memory_len;
        assert_eq!(
            (rows, e),
            ((self.layers.len() + 1) * m, self.embedding_dim),
            "GTrXL memory shape"
        );
        (0..=self.layers.len())
            .map(|l| mem.clone().slice([0..b, l * m..(l + 1) * m, 0..e]))
            .collect()
    }

    /// DI-engine's segment call: process `obs` as one segment after `memory`; every token sees
    /// the whole memory and all earlier tokens of the segment. Returns the outputs and the
    /// updated (detached) memory.
    ///
    /// # Shapes
    /// - `obs`: `[batch, T, input_dim]`
    /// - output: `[batch, T, embedding_dim]`
    pub fn forward_segment(
        &self,
        obs: Tensor<B, 3>,
        memory: EncoderState<B>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let mems = self.memories(&memory);
        let (out, hiddens) = self.run(obs, &mems, &Window::Segment);
        (out, self.updated_memory(mems, hiddens, None))
    }

    /// The memory after a call: per layer, the last `memory_len` of memory and new inputs,
    /// times `keep: [batch, memory_len, 1]` (zero slots for tokens before a reset), detached.
    fn updated_memory(
        &self,
        mems: Vec<Tensor<B, 3>>,
        hiddens: Vec<Tensor<B, 3>>,
        keep: Option<Tensor<B, 3>>,
    ) -> EncoderState<B> {
        let m = self.memory_len;
        let per_layer: Vec<Tensor<B, 3>> = mems
            .into_iter()
            .zip(hiddens)
            .map(|(mem, h)| {
                let [b, t, e] = h.dims();
                let new =
                    Tensor::cat(vec![mem.detach(), h.detach()], 1).slice([0..b, t..t + m, 0..e]);
                match &keep {
                    Some(k) => new * k.clone(),
                    None => new,
                }
            })
            .collect();
        EncoderState::new(vec![Tensor::cat(per_layer, 1)])
    }

    /// All layers over embedded-to-be `obs: [batch, T, input_dim]`; returns the output and the
    /// inputs of every layer plus the output (what the memory keeps).
    fn run(
        &self,
        obs: Tensor<B, 3>,
        mems: &[Tensor<B, 3>],
        window: &Window<B>,
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 3>>) {
        let device = obs.device();
        let [b, t, _] = obs.dims();
        let (m, e, n, hd) = (
            self.memory_len,
            self.embedding_dim,
            self.head_num,
            self.head_dim,
        );
        let a = n * hd;
        let full = m + t;
        let mut h = relu(self.embedding.forward(obs));
        let pos = relative_positions::<B>(full, e, &device);
        // Masked (true) where a query may not attend: the future, and beyond the sliding window.
        let masked: Vec<bool> = (0..t)
            .flat_map(|i| {
                (0..full).map(move |j| match window {
                    Window::Segment => j > i + m,
                    Window::Sliding(_) => j > i + m || j < i,
                })
            })
            .collect();
        let masked =
            Tensor::<B, 4, Bool>::from_data(TensorData::new(masked, [1, 1, t, full]), &device);
        let valid = match window {
            Window::Sliding(Some(v)) => Some(v.clone().unsqueeze_dim::<4>(1)),
            _ => None,
        };
        let u = self.u.val().reshape([1, n, 1, hd]);
        let v = self.v.val().reshape([1, n, 1, hd]);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut hiddens = Vec::with_capacity(self.layers.len() + 1);
        for (layer, mem) in self.layers.iter().zip(mems) {
            hiddens.push(h.clone());
            let att = &layer.attention;
            let x1 = layer
                .norm1
                .forward(Tensor::cat(vec![mem.clone(), h.clone()], 1));
            let kv = att.kv.forward(x1);
            let heads = |x: Tensor<B, 3>, len: usize| x.reshape([b, len, n, hd]).swap_dims(1, 2);
            let key = heads(kv.clone().slice([0..b, 0..full, 0..a]), full);
            let value = heads(kv.slice([0..b, 0..full, a..2 * a]), full);
            let q = heads(att.q.forward(h.clone()), t);
            let r = att
                .project_pos
                .forward(pos.clone())
                .reshape([1, full, n, hd])
                .swap_dims(1, 2);
            let qu = q.clone() + u.clone();
            let mut content = qu.clone().matmul(key.swap_dims(2, 3));
            let position = rel_shift((q + v.clone()).matmul(r.swap_dims(2, 3)));
            // Keys from before an episode start are the zero slot of a reset memory, whose
            // key and value are those of LayerNorm1(0).
            let zero_kv = valid.as_ref().map(|_| {
                let kv0 = att
                    .kv
                    .forward(layer.norm1.forward(Tensor::<B, 2>::zeros([1, e], &device)));
                let k0 = kv0.clone().slice([0..1, 0..a]).reshape([1, n, hd, 1]);
                let v0 = kv0.slice([0..1, a..2 * a]).reshape([1, n, 1, hd]);
                (k0, v0)
            });
            if let (Some(valid), Some((k0, _))) = (&valid, &zero_kv) {
                let c0 = qu.matmul(k0.clone());
                content = content * valid.clone() + c0 * valid.clone().neg().add_scalar(1.0);
            }
            let scores = (content + position)
                .mul_scalar(scale)
                .mask_fill(masked.clone(), MASKED_SCORE);
            let attn = softmax(scores, 3);
            let out = match (&valid, &zero_kv) {
                (Some(valid), Some((_, v0))) => {
                    let to_zero = (attn.clone() * valid.clone().neg().add_scalar(1.0)).sum_dim(3);
                    (attn * valid.clone()).matmul(value) + to_zero * v0.clone()
                }
                _ => attn.matmul(value),
            };
            let out = att.project.forward(out.swap_dims(1, 2).reshape([b, t, a]));
            let a1 = relu(out).reshape([b * t, e]);
            let h2 = h.reshape([b * t, e]);
            let o1 = layer.gate1.forward(h2, a1);
            let m2 = layer
                .mlp
                .iter()
                .fold(layer.norm2.forward(o1.clone()), |x, lin| {
                    relu(lin.forward(x))
                });
            h = layer.gate2.forward(o1, m2).reshape([b, t, e]);
        }
        hiddens.push(h.clone());
        (h, hiddens)
    }
}

impl<B: Backend> SequenceEncoder<B> for Gtrxl<B> {
    fn output_dim(&self) -> usize {
        self.embedding_dim
    }

    fn input_dim(&self) -> usize {
        self.input_dim
    }

    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        let rows = (self.layers.len() + 1) * self.memory_len;
        EncoderState::zeros(batch, &[[rows, self.embedding_dim]], device)
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        let [b, f] = obs.dims();
        let mems = self.memories(&state.reset(episode_start));
        let (out, hiddens) = self.run(obs.reshape([b, 1, f]), &mems, &Window::Sliding(None));
        (
            out.reshape([b, self.embedding_dim]),
            self.updated_memory(mems, hiddens, None),
        )
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let [b, t, _] = obs.dims();
        let m = self.memory_len;
        let full = m + t;
        let device = obs.device();
        let starts: Vec<f64> = episode_starts
            .to_data()
            .convert::<f64>()
            .to_vec()
            .expect("episode_starts as numbers");
        let (valid, keep) = if starts.iter().all(|&s| s == 0.0) {
            (None, None)
        } else {
            // Key j (full coordinates: memory 0..m, then tokens) is real for query i when no
            // episode starts after it, i.e. j >= m + (last start at or before i).
            let mut valid = vec![0f32; b * t * full];
            let mut keep = vec![0f32; b * m];
            for env in 0..b {
                let mut last: Option<usize> = None;
                for i in 0..t {
                    if starts[env * t + i] != 0.0 {
                        last = Some(i);
                    }
                    let first_real = last.map_or(0, |s| s + m);
                    for j in first_real..full {
                        valid[(env * t + i) * full + j] = 1.0;
                    }
                    if i == t - 1 {
                        for k in 0..m {
                            keep[env * m + k] = valid[(env * t + i) * full + t + k];
                        }
                    }
                }
            }
            (
                Some(Tensor::<B, 3>::from_data(
                    TensorData::new(valid, [b, t, full]),
                    &device,
                )),
                Some(Tensor::<B, 3>::from_data(
                    TensorData::new(keep, [b, m, 1]),
                    &device,
                )),
            )
        };
        let mems = self.memories(&state0);
        let (out, hiddens) = self.run(obs, &mems, &Window::Sliding(valid));
        (out, self.updated_memory(mems, hiddens, keep))
    }
}

//! A transformer encoder over an observation window (Vaswani et al. 2017), pre-layer-norm
//! (Xiong et al. 2020), with sinusoidal absolute positional encodings.
//!
//! **Layout.** A flat observation of width `window * features` is window-major (`obs[w *
//! features + f]`, oldest position first), viewed as `window` tokens of `features`. Each token
//! is projected to `d_model`, the positional encoding is added, `num_layers` blocks
//! `x += MHA(LN(x)); x += FFN(LN(x))` follow, then a final layer norm, and the window is pooled
//! into one vector of `d_model` (the last token, or the mean of all tokens).
//!
//! The window already holds the past, so the encoder is stateless: it implements
//! [`SequenceEncoder`] with an empty [`EncoderState`], `step` encodes one window and
//! `forward_seq` encodes `batch * time` windows at once (start flags change nothing).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{
    Device, Tensor, TensorData, activation::relu, activation::softmax, backend::Backend,
};
use quantrl_core::{ConfigError, Rng};
use serde::{Deserialize, Serialize};

use crate::encoder::{EncoderState, SequenceEncoder};
use crate::mlp::linear_uniform;

/// How a window of token embeddings becomes one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The embedding of the newest token (the last of the window).
    #[default]
    Last,
    /// The mean over the window.
    Mean,
}

/// Configuration of a [`TransformerEncoder`].
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    /// Number of window positions (tokens).
    pub window: usize,
    /// Features per window position.
    pub features: usize,
    /// Model width.
    #[config(default = 64)]
    pub d_model: usize,
    /// Attention heads (`d_model % heads == 0`).
    #[config(default = 4)]
    pub heads: usize,
    /// Number of blocks.
    #[config(default = 2)]
    pub num_layers: usize,
    /// Hidden width of the feed-forward sub-layer.
    #[config(default = 128)]
    pub d_ff: usize,
    /// Pooling of the window.
    #[config(default = "Pooling::Last")]
    pub pooling: Pooling,
    /// Seed of the initial weights (PyTorch's default uniform init, drawn on the host).
    #[config(default = 0)]
    pub seed: u64,
}

impl TransformerEncoderConfig {
    /// Check sizes: all positive, `d_model % heads == 0`, `d_model` even.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("window", self.window),
            ("features", self.features),
            ("d_model", self.d_model),
            ("heads", self.heads),
            ("num_layers", self.num_layers),
            ("d_ff", self.d_ff),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(ConfigError::Inconsistent(format!(
                "d_model = {} is not a multiple of heads = {}",
                self.d_model, self.heads
            )));
        }
        if !self.d_model.is_multiple_of(2) {
            return Err(ConfigError::out_of_range(
                "d_model",
                self.d_model,
                "even (sinusoidal positional encoding)",
            ));
        }
        Ok(())
    }

    /// A transformer encoder on `device`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> TransformerEncoder<B> {
        if let Err(e) = self.validate() {
            panic!("invalid TransformerEncoderConfig: {e}");
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let d = self.d_model;
        let norm = || LayerNormConfig::new(d).with_epsilon(1e-5).init(device);
        let input = linear_uniform(self.features, d, true, &mut rng, device);
        let blocks = (0..self.num_layers)
            .map(|_| Block {
                norm1: norm(),
                qkv: linear_uniform(d, 3 * d, true, &mut rng, device),
                out: linear_uniform(d, d, true, &mut rng, device),
                norm2: norm(),
                ff1: linear_uniform(d, self.d_ff, true, &mut rng, device),
                ff2: linear_uniform(self.d_ff, d, true, &mut rng, device),
            })
            .collect();
        let (w, half) = (self.window, d / 2);
        let mut pe = vec![0f32; w * d];
        for p in 0..w {
            for k in 0..half {
                let angle = p as f64 / 10000f64.powf(2.0 * k as f64 / d as f64);
                pe[p * d + 2 * k] = angle.sin() as f32;
                pe[p * d + 2 * k + 1] = angle.cos() as f32;
            }
        }
        TransformerEncoder {
            input,
            blocks,
            final_norm: norm(),
            positions: Tensor::from_data(TensorData::new(pe, [1, w, d]), device),
            window: w,
            features: self.features,
            d_model: d,
            heads: self.heads,
            pooling: self.pooling,
        }
    }
}

/// One pre-layer-norm block.
#[derive(Module, Debug)]
struct Block<B: Backend> {
    norm1: LayerNorm<B>,
    qkv: Linear<B>,
    out: Linear<B>,
    norm2: LayerNorm<B>,
    ff1: Linear<B>,
    ff2: Linear<B>,
}

/// A stateless transformer encoder over an observation window; see the [module docs](self).
#[derive(Module, Debug)]
pub struct TransformerEncoder<B: Backend> {
    input: Linear<B>,
    blocks: Vec<Block<B>>,
    final_norm: LayerNorm<B>,
    /// Sinusoidal encodings `[1, window, d_model]` (a constant, not a parameter).
    positions: Tensor<B, 3>,
    window: usize,
    features: usize,
    d_model: usize,
    heads: usize,
    #[module(skip)]
    pooling: Pooling,
}

impl<B: Backend> TransformerEncoder<B> {
    /// Encode windows of tokens.
    ///
    /// # Shapes
    /// - `x`: `[batch, window, features]`
    /// - output: `[batch, d_model]`
    pub fn forward_window(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, w, _] = x.dims();
        let (d, nh) = (self.d_model, self.heads);
        let hd = d / nh;
        let mut h = self.input.forward(x) + self.positions.clone();
        for blk in &self.blocks {
            let qkv = blk.qkv.forward(blk.norm1.forward(h.clone()));
            let split = |k: usize| {
                qkv.clone()
                    .slice([0..b, 0..w, k * d..(k + 1) * d])
                    .reshape([b, w, nh, hd])
                    .swap_dims(1, 2)
            };
            let (q, k, v) = (split(0), split(1), split(2));
            let attn = softmax(
                q.matmul(k.swap_dims(2, 3))
                    .mul_scalar(1.0 / (hd as f64).sqrt()),
                3,
            );
            let a = attn.matmul(v).swap_dims(1, 2).reshape([b, w, d]);
            h = h + blk.out.forward(a);
            let f = blk
                .ff2
                .forward(relu(blk.ff1.forward(blk.norm2.forward(h.clone()))));
            h = h + f;
        }
        let h = self.final_norm.forward(h);
        match self.pooling {
            Pooling::Last => h.slice([0..b, w - 1..w, 0..d]).reshape([b, d]),
            Pooling::Mean => h.mean_dim(1).reshape([b, d]),
        }
    }
}

impl<B: Backend> SequenceEncoder<B> for TransformerEncoder<B> {
    fn output_dim(&self) -> usize {
        self.d_model
    }

    fn input_dim(&self) -> usize {
        self.window * self.features
    }

    fn initial_state(&self, _batch: usize, _device: &Device<B>) -> EncoderState<B> {
        EncoderState::empty()
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        _episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        let [b, _] = obs.dims();
        (
            self.forward_window(obs.reshape([b, self.window, self.features])),
            state,
        )
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        _episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let [b, t, _] = obs.dims();
        let out = self.forward_window(obs.reshape([b * t, self.window, self.features]));
        (out.reshape([b, t, self.d_model]), state0)
    }
}

//! A convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network") over the feature window
//! of an observation: every gate is a 1-D convolution along the window instead of a matmul.
//!
//! **Layout.** A flat observation of width `window * channels` is window-major (`obs[w *
//! channels + c]`: the `channels` features of window position `w`, oldest first, as trading
//! environments emit a window of bars). It is viewed as `[batch, channels, window]` for the
//! convolutions; the state is `h, c: [batch, hidden_channels, window]` and the output is `h`
//! flattened channel-major to `[batch, hidden_channels * window]`.
//!
//! Gates in PyTorch's LSTM order `(i, f, g, o)`:
//! `[i, f, g, o] = conv(x, W_x) + b + conv(h, W_h)` (kernel `kernel_size`, "same" zero padding),
//! `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, `h' = σ(o) ⊙ tanh(c')`. The input convolution of a
//! whole sequence runs as one batched convolution over `batch * time` windows.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, Rng};

use crate::activation::{sigmoid, tanh};
use crate::encoder::{EncoderState, SequenceEncoder, keep_masks};

/// Configuration of a [`Clstm`].
#[derive(Config, Debug)]
pub struct ClstmConfig {
    /// Length of the feature window.
    pub window: usize,
    /// Features per window position (input channels).
    pub channels: usize,
    /// Hidden channels.
    #[config(default = 8)]
    pub hidden_channels: usize,
    /// Convolution kernel size (odd, for "same" padding).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Seed of the initial weights (uniform in `±1/sqrt(fan_in)`, drawn on the host).
    #[config(default = 0)]
    pub seed: u64,
}

impl ClstmConfig {
    /// Check sizes: all positive, odd kernel.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v) in [
            ("window", self.window),
            ("channels", self.channels),
            ("hidden_channels", self.hidden_channels),
            ("kernel_size", self.kernel_size),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        if self.kernel_size.is_multiple_of(2) {
            return Err(ConfigError::out_of_range(
                "kernel_size",
                self.kernel_size,
                "odd (same padding)",
            ));
        }
        Ok(())
    }

    /// A convolutional LSTM on `device`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Clstm<B> {
        if let Err(e) = self.validate() {
            panic!("invalid ClstmConfig: {e}");
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let (hc, c, k) = (self.hidden_channels, self.channels, self.kernel_size);
        let mut draw = |shape: [usize; 3], fan_in: usize| -> Tensor<B, 3> {
            let b = 1.0 / (fan_in as f64).sqrt();
            let n = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.uniform_range(-b, b) as f32).collect();
            Tensor::from_data(TensorData::new(v, shape), device)
        };
        let w_x = draw([4 * hc, c, k], c * k);
        let w_h = draw([4 * hc, hc, k], hc * k);
        let bias = draw([1, 1, 4 * hc], c * k).reshape([4 * hc]);
        Clstm {
            w_x: Param::from_tensor(w_x),
            w_h: Param::from_tensor(w_h),
            bias: Param::from_tensor(bias),
            window: self.window,
            channels: c,
            hidden_channels: hc,
        }
    }
}

/// A convolutional LSTM encoder; see the [module docs](self) for the layout.
#[derive(Module, Debug)]
pub struct Clstm<B: Backend> {
    /// Input convolution weights `[4 * hidden_channels, channels, kernel]`.
    pub w_x: Param<Tensor<B, 3>>,
    /// Hidden convolution weights `[4 * hidden_channels, hidden_channels, kernel]`.
    pub w_h: Param<Tensor<B, 3>>,
    /// Gate bias `[4 * hidden_channels]`.
    pub bias: Param<Tensor<B, 1>>,
    window: usize,
    channels: usize,
    hidden_channels: usize,
}

impl<B: Backend> Clstm<B> {
    fn options(&self) -> ConvOptions<1> {
        let k = self.w_x.dims()[2];
        ConvOptions::new([1], [k / 2], [1], 1)
    }

    /// Run over time-major input projections `gx: [T, batch, 4Hc, W]`.
    fn run(
        &self,
        gx: Tensor<B, 4>,
        state: &EncoderState<B>,
        keep: &[Option<Tensor<B, 2>>],
    ) -> (Vec<Tensor<B, 3>>, EncoderState<B>) {
        assert_eq!(
            state.tensors.len(),
            2,
            "a CLSTM state has two tensors (h, c)"
        );
        let [t_len, b, g4, w] = gx.dims();
        let hc = g4 / 4;
        let mut h = state.tensors[0].clone();
        let mut c = state.tensors[1].clone();
        let mut outs = Vec::with_capacity(t_len);
        for t in 0..t_len {
            if let Some(k) = &keep[t] {
                let k3: Tensor<B, 3> = k.clone().reshape([b, 1, 1]);
                h = h * k3.clone();
                c = c * k3;
            }
            let pre = gx.clone().narrow(0, t, 1).reshape([b, g4, w])
                + conv1d(h, self.w_h.val(), None, self.options());
            let i_f = sigmoid(pre.clone().slice([0..b, 0..2 * hc, 0..w]));
            let g = tanh(pre.clone().slice([0..b, 2 * hc..3 * hc, 0..w]));
            let o = sigmoid(pre.slice([0..b, 3 * hc..4 * hc, 0..w]));
            let i = i_f.clone().slice([0..b, 0..hc, 0..w]);
            let f = i_f.slice([0..b, hc..2 * hc, 0..w]);
            c = f * c + i * g;
            h = o * tanh(c.clone());
            outs.push(h.clone());
        }
        (outs, EncoderState::new(vec![h, c]))
    }

    /// Input convolutions of `n` flat observations `[n, window * channels]`: `[n, 4Hc, W]`.
    fn input_gates(&self, obs: Tensor<B, 2>) -> Tensor<B, 3> {
        let [n, _] = obs.dims();
        let x = obs.reshape([n, self.window, self.channels]).swap_dims(1, 2);
        conv1d(x, self.w_x.val(), Some(self.bias.val()), self.options())
    }
}

impl<B: Backend> SequenceEncoder<B> for Clstm<B> {
    fn output_dim(&self) -> usize {
        self.hidden_channels * self.window
    }

    fn input_dim(&self) -> usize {
        self.channels * self.window
    }

    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        let s = [self.hidden_channels, self.window];
        EncoderState::zeros(batch, &[s, s], device)
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        let [b, _] = obs.dims();
        let gx = self.input_gates(obs).unsqueeze::<4>();
        let (outs, state) = self.run(gx, &state.reset(episode_start), &[None]);
        let h = outs.into_iter().next().expect("one step");
        (h.reshape([b, self.output_dim()]), state)
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let [b, t, f] = obs.dims();
        let keep = keep_masks(&episode_starts);
        let gx = self.input_gates(obs.swap_dims(0, 1).reshape([t * b, f]));
        let [_, g4, w] = gx.dims();
        let (outs, state) = self.run(gx.reshape([t, b, g4, w]), &state0, &keep);
        let out = Tensor::stack::<4>(outs, 1).reshape([b, t, self.output_dim()]);
        (out, state)
    }
}

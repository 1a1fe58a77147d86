//! A recurrent actor-critic: any [`SequenceEncoder`] (chosen by [`EncoderKind`]), a categorical
//! policy head and a value head, over one shared encoder or separate policy and value encoders.

use burn::config::Config;
use burn::module::{Module, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, Rng, derive_seed};
use serde::{Deserialize, Serialize};

use crate::clstm::{Clstm, ClstmConfig};
use crate::encoder::{EncoderState, SequenceEncoder};
use crate::gtrxl::{Gtrxl, GtrxlConfig};
use crate::heads::{CategoricalHead, ValueHead};
use crate::host_bptt::{HostCell, HostRnnLayer, RnnTape};
use crate::host_mlp::param_values;
use crate::obs_norm::normalize_opt;
use crate::rnn::{Gru, Lstm, RnnConfig, RnnLayer};
use crate::transformer::{TransformerEncoder, TransformerEncoderConfig};
use crate::{Activation, CriticReduction, Mlp, ObsNormalizer, combine_quantile_critics};

/// Which encoder an [`EncoderConfig`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// A stateless MLP trunk ([`MlpEncoder`]).
    Mlp,
    /// A GRU ([`Gru`]).
    Gru,
    /// An LSTM ([`Lstm`]).
    Lstm,
    /// A convolutional LSTM over the feature window ([`Clstm`]).
    Clstm,
    /// A gated transformer-XL ([`Gtrxl`]).
    Gtrxl,
    /// A transformer over the observation window ([`TransformerEncoder`]).
    Transformer,
}

/// Configuration of an [`Encoder`]; each kind reads the fields it needs.
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// The encoder.
    pub kind: EncoderKind,
    /// Width: MLP layer width, RNN hidden size, CLSTM hidden channels, GTrXL embedding width,
    /// transformer `d_model`.
    #[config(default = 64)]
    pub hidden: usize,
    /// Layers (MLP, RNN, GTrXL, transformer; the CLSTM has one).
    #[config(default = 1)]
    pub num_layers: usize,
    /// Window length of a window-major observation (CLSTM, transformer): the observation is
    /// `window` positions of `obs_dim / window` features.
    #[config(default = 1)]
    pub window: usize,
    /// Attention heads (GTrXL, transformer).
    #[config(default = 2)]
    pub heads: usize,
    /// Memory length (GTrXL).
    #[config(default = 16)]
    pub memory_len: usize,
    /// Convolution kernel (CLSTM).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// MLP activation (MLP encoder).
    #[config(default = "Activation::Tanh")]
    pub activation: Activation,
}

impl EncoderConfig {
    /// Check the fields the kind uses against an observation width.
    pub fn validate(&self, obs_dim: usize) -> Result<(), ConfigError> {
        if obs_dim == 0 {
            return Err(ConfigError::out_of_range("obs_dim", obs_dim, ">= 1"));
        }
        for (field, v) in [
            ("encoder.hidden", self.hidden),
            ("encoder.num_layers", self.num_layers),
            ("encoder.window", self.window),
        ] {
            if v == 0 {
                return Err(ConfigError::out_of_range(field, v, ">= 1"));
            }
        }
        if matches!(self.kind, EncoderKind::Clstm | EncoderKind::Transformer)
            && !obs_dim.is_multiple_of(self.window)
        {
            return Err(ConfigError::Inconsistent(format!(
                "obs_dim = {obs_dim} is not a multiple of encoder.window = {}",
                self.window
            )));
        }
        match self.kind {
            EncoderKind::Clstm => self.clstm(obs_dim, 0).validate(),
            EncoderKind::Gtrxl => self.gtrxl(obs_dim, 0).validate(),
            EncoderKind::Transformer => self.transformer(obs_dim, 0).validate(),
            EncoderKind::Mlp | EncoderKind::Gru | EncoderKind::Lstm => Ok(()),
        }
    }

    fn clstm(&self, obs_dim: usize, seed: u64) -> ClstmConfig {
        ClstmConfig::new(self.window, obs_dim / self.window)
            .with_hidden_channels(self.hidden)
            .with_kernel_size(self.kernel_size)
            .with_seed(seed)
    }

    fn gtrxl(&self, obs_dim: usize, seed: u64) -> GtrxlConfig {
        GtrxlConfig::new(obs_dim)
            .with_embedding_dim(self.hidden)
            .with_head_num(self.heads)
            .with_head_dim((self.hidden / self.heads.max(1)).max(1))
            .with_layer_num(self.num_layers)
            .with_memory_len(self.memory_len)
            .with_seed(seed)
    }

    fn transformer(&self, obs_dim: usize, seed: u64) -> TransformerEncoderConfig {
        TransformerEncoderConfig::new(self.window, obs_dim / self.window)
            .with_d_model(self.hidden)
            .with_heads(self.heads)
            .with_num_layers(self.num_layers)
            .with_d_ff(2 * self.hidden)
            .with_seed(seed)
    }

    /// Build the encoder for observations of width `obs_dim`, weights drawn from `seed`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, obs_dim: usize, seed: u64, device: &Device<B>) -> Encoder<B> {
        if let Err(e) = self.validate(obs_dim) {
            panic!("invalid EncoderConfig: {e}");
        }
        let rnn = || {
            RnnConfig::new(obs_dim, self.hidden)
                .with_num_layers(self.num_layers)
                .with_seed(seed)
        };
        match self.kind {
            EncoderKind::Mlp => {
                let mut rng = Rng::seed_from_u64(seed);
                let widths = vec![self.hidden; self.num_layers];
                Encoder::Mlp(MlpEncoder {
                    mlp: Mlp::new(
                        obs_dim,
                        &widths,
                        self.activation,
                        Some(self.activation.hidden_gain()),
                        &mut rng,
                        device,
                    ),
                    d_in: obs_dim,
                    d_out: self.hidden,
                })
            }
            EncoderKind::Gru => Encoder::Gru(rnn().init_gru(device)),
            EncoderKind::Lstm => Encoder::Lstm(rnn().init_lstm(device)),
            EncoderKind::Clstm => Encoder::Clstm(self.clstm(obs_dim, seed).init(device)),
            EncoderKind::Gtrxl => Encoder::Gtrxl(self.gtrxl(obs_dim, seed).init(device)),
            EncoderKind::Transformer => {
                Encoder::Transformer(self.transformer(obs_dim, seed).init(device))
            }
        }
    }
}

/// A stateless MLP as a [`SequenceEncoder`] (each step encoded on its own).
#[derive(Module, Debug)]
pub struct MlpEncoder<B: Backend> {
    mlp: Mlp<B>,
    d_in: usize,
    d_out: usize,
}

impl<B: Backend> SequenceEncoder<B> for MlpEncoder<B> {
    fn output_dim(&self) -> usize {
        self.d_out
    }

    fn input_dim(&self) -> usize {
        self.d_in
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
        (self.mlp.forward(obs), state)
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        _episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        let [b, t, f] = obs.dims();
        let out = self.mlp.forward(obs.reshape([b * t, f]));
        (out.reshape([b, t, self.d_out]), state0)
    }
}

/// Any of the encoders, chosen at run time by [`EncoderKind`].
#[derive(Module, Debug)]
pub enum Encoder<B: Backend> {
    /// [`MlpEncoder`].
    Mlp(MlpEncoder<B>),
    /// [`Gru`].
    Gru(Gru<B>),
    /// [`Lstm`].
    Lstm(Lstm<B>),
    /// [`Clstm`].
    Clstm(Clstm<B>),
    /// [`Gtrxl`].
    Gtrxl(Gtrxl<B>),
    /// [`TransformerEncoder`].
    Transformer(TransformerEncoder<B>),
}

macro_rules! dispatch {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            Encoder::Mlp($e) => $body,
            Encoder::Gru($e) => $body,
            Encoder::Lstm($e) => $body,
            Encoder::Clstm($e) => $body,
            Encoder::Gtrxl($e) => $body,
            Encoder::Transformer($e) => $body,
        }
    };
}

impl<B: Backend> SequenceEncoder<B> for Encoder<B> {
    fn output_dim(&self) -> usize {
        dispatch!(self, e => e.output_dim())
    }

    fn input_dim(&self) -> usize {
        dispatch!(self, e => e.input_dim())
    }

    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        dispatch!(self, e => e.initial_state(batch, device))
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>) {
        dispatch!(self, e => e.step(obs, state, episode_start))
    }

    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>) {
        dispatch!(self, e => e.forward_seq(obs, state0, episode_starts))
    }
}

/// Configuration of a [`RecurrentActorCritic`].
#[derive(Config, Debug)]
pub struct RecurrentActorCriticConfig {
    /// Width of one flat observation.
    pub obs_dim: usize,
    /// Number of discrete actions.
    pub n_actions: usize,
    /// The encoder (policy and value use the same configuration).
    pub encoder: EncoderConfig,
    /// One encoder shared by policy and value (`true`), or one each (`false`, sb3-contrib's
    /// default for recurrent policies: `shared_lstm = False`, `enable_critic_lstm = True`).
    #[config(default = false)]
    pub shared_encoder: bool,
    /// Seed of the initial weights (heads: orthogonal, gain 0.01 for the policy and 1 for the
    /// value, as SB3).
    #[config(default = 0)]
    pub seed: u64,
    /// Quantiles of a quantile critic (the value head outputs `N` quantiles of the return
    /// distribution, as [`ActorCritic`](crate::ActorCritic)'s); 0 (the default): a scalar
    /// critic.
    #[config(default = 0)]
    pub n_quantiles: usize,
    /// A second quantile head on the value encoder's features (needs `n_quantiles > 0`).
    #[config(default = false)]
    pub twin_critic: bool,
    /// How the twin critics combine into one distribution.
    #[config(default = "CriticReduction::MinOfMeans")]
    pub critic_reduction: CriticReduction,
    /// Normalize observations in front of the encoders with statistics the learner sets
    /// ([`ObsNormalizer`]); off by default.
    #[config(default = false)]
    pub normalize_obs: bool,
    /// Clip bound of the normalized observations (with `normalize_obs`).
    #[config(default = 10.0)]
    pub clip_obs: f32,
}

impl RecurrentActorCriticConfig {
    /// Check the sizes and the encoder configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.twin_critic && self.n_quantiles == 0 {
            return Err(ConfigError::Inconsistent(
                "twin_critic needs a quantile critic (n_quantiles > 0)".into(),
            ));
        }
        if self.n_actions == 0 {
            return Err(ConfigError::out_of_range(
                "n_actions",
                self.n_actions,
                ">= 1",
            ));
        }
        self.encoder.validate(self.obs_dim)
    }

    /// Build the network on `device`.
    ///
    /// # Panics
    /// When the config is invalid (see [`validate`](Self::validate)).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> RecurrentActorCritic<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RecurrentActorCriticConfig: {e}");
        }
        let policy_encoder = self
            .encoder
            .init(self.obs_dim, derive_seed(self.seed, 0), device);
        let value_encoder = (!self.shared_encoder).then(|| {
            self.encoder
                .init(self.obs_dim, derive_seed(self.seed, 1), device)
        });
        let d = policy_encoder.output_dim();
        let mut rng = Rng::seed_from_u64(derive_seed(self.seed, 2));
        let policy_head = CategoricalHead::new(d, self.n_actions, 0.01, &mut rng, device);
        let (value_head, twin_value_head) = if self.n_quantiles == 0 {
            (ValueHead::new(d, 1.0, &mut rng, device), None)
        } else {
            let head = ValueHead::quantiles(d, self.n_quantiles, 1.0, &mut rng, device);
            let twin = self
                .twin_critic
                .then(|| ValueHead::quantiles(d, self.n_quantiles, 1.0, &mut rng, device));
            (head, twin)
        };
        let n_policy_state = policy_encoder.initial_state(1, device).tensors.len();
        RecurrentActorCritic {
            policy_encoder,
            value_encoder,
            policy_head,
            value_head,
            twin_value_head,
            obs_norm: self
                .normalize_obs
                .then(|| ObsNormalizer::new(self.obs_dim, self.clip_obs, device)),
            n_policy_state,
            n_quantiles: self.n_quantiles,
            critic_reduction: self.critic_reduction,
        }
    }
}

/// What one step of a [`RecurrentActorCritic`] gives.
#[derive(Debug, Clone)]
pub struct RecurrentStepOutput<B: Backend> {
    /// Action logits, `[batch, n_actions]`.
    pub logits: Tensor<B, 2>,
    /// State values, `[batch]` (a quantile critic's: the mean of its distribution).
    pub values: Tensor<B, 1>,
    /// A quantile critic's quantiles, `[batch, n_critics, N]` (`None` for a scalar critic).
    pub quantiles: Option<Tensor<B, 3>>,
    /// The state after the step.
    pub state: EncoderState<B>,
}

/// What a sequence pass of a [`RecurrentActorCritic`] gives.
#[derive(Debug, Clone)]
pub struct RecurrentSeqOutput<B: Backend> {
    /// Action logits, `[batch, time, n_actions]`.
    pub logits: Tensor<B, 3>,
    /// State values, `[batch, time]`.
    pub values: Tensor<B, 2>,
    /// A quantile critic's quantiles, `[batch * time, n_critics, N]` (batch-major; `None` for
    /// a scalar critic).
    pub quantiles: Option<Tensor<B, 3>>,
    /// The state after the last step.
    pub state: EncoderState<B>,
}

/// A recurrent actor-critic for discrete actions: encoder(s), a categorical policy head and a
/// value head. Its state is the policy encoder's tensors followed by the value encoder's (one
/// [`EncoderState`], batch first, so a rollout stores and slices it like any other).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// use quantrl_nets::{EncoderConfig, EncoderKind, RecurrentActorCriticConfig};
///
/// let device = Default::default();
/// let net = RecurrentActorCriticConfig::new(4, 2, EncoderConfig::new(EncoderKind::Gru))
///     .init::<NdArray>(&device);
/// let state = net.initial_state(3, &device);
/// let out = net.step(Tensor::zeros([3, 4], &device), state, Tensor::ones([3], &device));
/// assert_eq!(out.logits.dims(), [3, 2]);
/// assert_eq!(out.values.dims(), [3]);
/// ```
#[derive(Module, Debug)]
pub struct RecurrentActorCritic<B: Backend> {
    policy_encoder: Encoder<B>,
    value_encoder: Option<Encoder<B>>,
    policy_head: CategoricalHead<B>,
    value_head: ValueHead<B>,
    /// The twin quantile critic's head (an `Option`: records written before it existed load
    /// with `None`).
    twin_value_head: Option<ValueHead<B>>,
    /// Observation normalization in front of the encoders (an `Option` for the same reason).
    obs_norm: Option<ObsNormalizer<B>>,
    n_policy_state: usize,
    #[module(skip)]
    n_quantiles: usize,
    #[module(skip)]
    critic_reduction: CriticReduction,
}

impl<B: Backend> RecurrentActorCritic<B> {
    /// The initial (zero) state for `batch` environments.
    pub fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        let s = self.policy_encoder.initial_state(batch, device);
        match &self.value_encoder {
            Some(v) => s.join(v.initial_state(batch, device)),
            None => s,
        }
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.policy_head.n_actions()
    }

    /// Whether policy and value share one encoder.
    pub fn shared_encoder(&self) -> bool {
        self.value_encoder.is_none()
    }

    /// Ids of the value head's parameters (for a value learning-rate group, as
    /// [`ActorCritic::value_head_param_ids`](crate::ActorCritic::value_head_param_ids)).
    pub fn value_head_param_ids(&self) -> Vec<burn::module::ParamId> {
        let mut ids = self.value_head.param_ids();
        if let Some(twin) = &self.twin_value_head {
            ids.extend(twin.param_ids());
        }
        ids
    }

    /// Quantiles of the critic's return distribution (0: a scalar critic).
    pub fn n_quantiles(&self) -> usize {
        self.n_quantiles
    }

    /// Number of critics (2 with a twin quantile critic).
    pub fn n_critics(&self) -> usize {
        1 + self.twin_value_head.is_some() as usize
    }

    /// The observation normalizer, when the network has one.
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer<B>> {
        self.obs_norm.as_ref()
    }

    /// The same network with new observation statistics (no-op without a normalizer).
    ///
    /// # Panics
    /// When the lengths differ from the observation width.
    pub fn with_obs_stats(mut self, mean: &[f32], var: &[f32]) -> Self {
        self.obs_norm = self.obs_norm.map(|n| n.with_stats(mean, var));
        self
    }

    /// Values `[n]` and, for a quantile critic, quantiles `[n, n_critics, N]` of value
    /// features `[n, d]`.
    fn critic(&self, hv: Tensor<B, 2>) -> (Tensor<B, 1>, Option<Tensor<B, 3>>) {
        if self.n_quantiles == 0 {
            return (self.value_head.forward(hv), None);
        }
        let mut critics = vec![self.value_head.forward_quantiles(hv.clone())];
        if let Some(twin) = &self.twin_value_head {
            critics.push(twin.forward_quantiles(hv));
        }
        let (values, quantiles) = combine_quantile_critics(critics, self.critic_reduction);
        (values, Some(quantiles))
    }

    /// One step (rollouts): reset where `episode_start` is 1, then logits and values.
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_dim]`, `episode_start`: `[batch]`
    /// - output: logits `[batch, n_actions]`, values `[batch]`
    pub fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> RecurrentStepOutput<B> {
        let obs = normalize_opt(self.obs_norm.as_ref(), obs);
        let (ps, vs) = state.split_at(self.n_policy_state);
        let (hp, ps) = self
            .policy_encoder
            .step(obs.clone(), ps, episode_start.clone());
        let (hv, state) = match &self.value_encoder {
            Some(enc) => {
                let (hv, vs) = enc.step(obs, vs, episode_start);
                (hv, ps.join(vs))
            }
            None => (hp.clone(), ps),
        };
        let (values, quantiles) = self.critic(hv);
        RecurrentStepOutput {
            logits: self.policy_head.forward(hp),
            values,
            quantiles,
            state,
        }
    }

    /// A whole sequence (training), resetting inside it where `episode_starts` is 1.
    ///
    /// # Shapes
    /// - `obs`: `[batch, time, obs_dim]`, `episode_starts`: `[batch, time]`
    /// - output: logits `[batch, time, n_actions]`, values `[batch, time]`
    pub fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> RecurrentSeqOutput<B> {
        let [b, t, _] = obs.dims();
        let obs = normalize_opt(self.obs_norm.as_ref(), obs);
        let (ps, vs) = state0.split_at(self.n_policy_state);
        let (hp, ps) = self
            .policy_encoder
            .forward_seq(obs.clone(), ps, episode_starts.clone());
        let (hv, state) = match &self.value_encoder {
            Some(enc) => {
                let (hv, vs) = enc.forward_seq(obs, vs, episode_starts);
                (hv, ps.join(vs))
            }
            None => (hp.clone(), ps),
        };
        let d = hp.dims()[2];
        let (values, quantiles) = self.critic(hv.reshape([b * t, d]));
        RecurrentSeqOutput {
            logits: self.policy_head.forward(hp),
            values: values.reshape([b, t]),
            quantiles,
            state,
        }
    }
}

/// The gradient of one parameter computed outside Burn's autodiff (see
/// [`RecurrentActorCritic::forward_seq_host_bptt`]).
#[derive(Debug, Clone)]
pub struct HostParamGrad {
    /// The parameter.
    pub id: ParamId,
    /// Its gradient, row-major.
    pub values: Vec<f32>,
    /// Its shape (`[n]` for a bias, `[rows, cols]` for a weight).
    pub shape: Vec<usize>,
}

/// One encoder whose backpropagation runs on the host.
struct HostPart<B: AutodiffBackend> {
    /// The encoder's outputs as an autodiff leaf, `[seqs, len, H]`.
    leaf: Tensor<B, 3>,
    layers: Vec<HostRnnLayer>,
    ids: Vec<[ParamId; 4]>,
    tape: RnnTape,
}

/// A training forward pass whose recurrent encoders were run on the host
/// ([`RecurrentActorCritic::forward_seq_host_bptt`]): the heads' part of the graph is in
/// Burn's autodiff, the encoders' gradients come from [`param_grads`](Self::param_grads).
pub struct HostBpttForward<B: AutodiffBackend> {
    /// Action logits, `[seqs, len, n_actions]`.
    pub logits: Tensor<B, 3>,
    /// State values, `[seqs, len]`.
    pub values: Tensor<B, 2>,
    /// A quantile critic's quantiles, `[seqs * len, n_critics, N]` (`None` for a scalar
    /// critic).
    pub quantiles: Option<Tensor<B, 3>>,
    parts: Vec<HostPart<B>>,
}

impl<B: AutodiffBackend> HostBpttForward<B> {
    /// After `loss.backward()`: the gradients of the encoders' parameters (to be added to the
    /// optimizer's gradients next to those Burn computed for the heads).
    pub fn param_grads(&self, grads: &B::Gradients) -> Vec<HostParamGrad> {
        let mut out = Vec::new();
        for part in &self.parts {
            let [s, l, h] = part.leaf.dims();
            let d_out: Vec<f32> = match part.leaf.grad(grads) {
                Some(g) => param_values(g),
                None => vec![0.0; s * l * h],
            };
            let layer_grads = part.tape.backward(&part.layers, &d_out);
            for (g, ids) in layer_grads.into_iter().zip(&part.ids) {
                let matrix = |m: ndarray::Array2<f32>| {
                    let shape = vec![m.nrows(), m.ncols()];
                    (m.into_raw_vec_and_offset().0, shape)
                };
                let vector = |v: Vec<f32>| {
                    let shape = vec![v.len()];
                    (v, shape)
                };
                let parts = [
                    matrix(g.w_ih),
                    matrix(g.w_hh),
                    vector(g.b_ih),
                    vector(g.b_hh),
                ];
                for (&id, (values, shape)) in ids.iter().zip(parts) {
                    out.push(HostParamGrad { id, values, shape });
                }
            }
        }
        out
    }
}

fn host_layers<B: Backend>(layers: &[RnnLayer<B>]) -> (Vec<HostRnnLayer>, Vec<[ParamId; 4]>) {
    let m = |t: Tensor<B, 2>| {
        let [r, c] = t.dims();
        ndarray::Array2::from_shape_vec((r, c), param_values(t)).expect("weight shape")
    };
    let v = |t: Tensor<B, 1>| -> Vec<f32> { param_values(t) };
    layers
        .iter()
        .map(|l| {
            (
                HostRnnLayer {
                    w_ih: m(l.w_ih.val()),
                    w_hh: m(l.w_hh.val()),
                    b_ih: v(l.b_ih.val()),
                    b_hh: v(l.b_hh.val()),
                },
                [l.w_ih.id, l.w_hh.id, l.b_ih.id, l.b_hh.id],
            )
        })
        .unzip()
}

impl<B: Backend> Encoder<B> {
    /// The cell and layers of a GRU or LSTM encoder (the ones with a host BPTT path).
    fn host_rnn(&self) -> Option<(HostCell, &[RnnLayer<B>])> {
        match self {
            Encoder::Gru(g) => Some((HostCell::Gru, g.layers())),
            Encoder::Lstm(l) => Some((HostCell::Lstm, l.layers())),
            _ => None,
        }
    }
}

impl<B: AutodiffBackend> RecurrentActorCritic<B> {
    /// Whether [`forward_seq_host_bptt`](Self::forward_seq_host_bptt) applies: every encoder
    /// is a GRU or an LSTM.
    pub fn supports_host_bptt(&self) -> bool {
        self.policy_encoder.host_rnn().is_some()
            && self
                .value_encoder
                .as_ref()
                .is_none_or(|v| v.host_rnn().is_some())
    }

    /// [`forward_seq`](Self::forward_seq) for training on a CPU: the GRU/LSTM encoders run on
    /// the host with hand-derived backpropagation through time ([`crate::host_bptt`]), the
    /// heads in Burn's autodiff on the encoders' outputs. After `loss.backward()`, add
    /// [`HostBpttForward::param_grads`] to the gradients. Outputs and gradients equal those of
    /// the all-Burn path up to float rounding (tested).
    ///
    /// `obs` is `[seqs, len, obs_dim]` row-major, `state0` the state tensors as host vectors
    /// (`[seqs, layers, H]` each, as [`EncoderState`] holds them), `episode_starts`
    /// `[seqs, len]`.
    ///
    /// # Panics
    /// When an encoder is not a GRU or LSTM (see
    /// [`supports_host_bptt`](Self::supports_host_bptt)) or the sizes disagree.
    pub fn forward_seq_host_bptt(
        &self,
        obs: &[f32],
        seqs: usize,
        len: usize,
        state0: &[Vec<f32>],
        episode_starts: &[f32],
        device: &Device<B>,
    ) -> HostBpttForward<B> {
        assert!(
            self.supports_host_bptt(),
            "host BPTT needs GRU or LSTM encoders"
        );
        let normalized;
        let obs = match &self.obs_norm {
            Some(norm) => {
                normalized = norm.normalize_host(obs);
                &normalized[..]
            }
            None => obs,
        };
        let mut parts = Vec::new();
        let mut run = |enc: &Encoder<B>, state: &[Vec<f32>]| -> Tensor<B, 3> {
            let (cell, layers) = enc.host_rnn().expect("checked");
            let (host, ids) = host_layers(layers);
            let n_layers = host.len();
            let hd = host[0].w_hh.nrows();
            // State tensors are [seqs, layers, H]; split per layer into [seqs, H].
            let per_layer = |t: &Vec<f32>| -> Vec<Vec<f32>> {
                (0..n_layers)
                    .map(|l| {
                        (0..seqs)
                            .flat_map(|s| {
                                t[(s * n_layers + l) * hd..(s * n_layers + l + 1) * hd]
                                    .iter()
                                    .copied()
                            })
                            .collect()
                    })
                    .collect()
            };
            let h0 = per_layer(&state[0]);
            let c0 = match cell {
                HostCell::Lstm => per_layer(&state[1]),
                HostCell::Gru => Vec::new(),
            };
            let (y, tape) = RnnTape::forward(cell, &host, obs, seqs, len, episode_starts, &h0, &c0);
            let leaf = Tensor::<B, 3>::from_data(TensorData::new(y, [seqs, len, hd]), device)
                .require_grad();
            parts.push(HostPart {
                leaf: leaf.clone(),
                layers: host,
                ids,
                tape,
            });
            leaf
        };
        let hp = run(&self.policy_encoder, &state0[..self.n_policy_state]);
        let hv = match &self.value_encoder {
            Some(enc) => run(enc, &state0[self.n_policy_state..]),
            None => hp.clone(),
        };
        let d = hp.dims()[2];
        let (values, quantiles) = self.critic(hv.reshape([seqs * len, d]));
        HostBpttForward {
            logits: self.policy_head.forward(hp),
            values: values.reshape([seqs, len]),
            quantiles,
            parts,
        }
    }
}

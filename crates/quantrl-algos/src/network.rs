//! The networks PPO trains, behind one interface: [`PolicyNetwork`].
//!
//! A policy network maps observations (and, for a recurrent one, a state carried from step to
//! step) to action logits and state values. The feed-forward [`ActorCritic`] is the special case
//! with an empty state; the [`RecurrentActorCritic`] carries its encoders' state. PPO is written
//! once against this trait: rollouts call [`step`](PolicyNetwork::step) with the state carried
//! across steps and reset where an episode starts; training calls
//! [`forward_sequences`](PolicyNetwork::forward_sequences) on whole training sequences, each
//! from the state stored at its first step. With a feed-forward network every sequence has
//! length 1, which is exactly the classic shuffled-sample minibatch.

use burn::module::{Module, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Device, Tensor, TensorData, backend::Backend};
use quantrl_core::ConfigError;
use quantrl_nets::{
    ActorCritic, EncoderState, HostActorCritic, HostBpttForward, RecurrentActorCritic,
};

use crate::TrainConfig;

/// What one step of a [`PolicyNetwork`] gives.
#[derive(Debug, Clone)]
pub struct PolicyStep<B: Backend> {
    /// Action logits, `[batch, n_actions]`.
    pub logits: Tensor<B, 2>,
    /// State values, `[batch]` (a quantile critic's: the mean of its distribution).
    pub values: Tensor<B, 1>,
    /// A quantile critic's quantiles, `[batch, n_critics, N]`; `None` for a scalar critic.
    pub quantiles: Option<Tensor<B, 3>>,
    /// The state after the step (empty for a feed-forward network).
    pub state: EncoderState<B>,
}

/// A training forward pass over a minibatch of sequences (see
/// [`PolicyNetwork::forward_sequences_train`]).
pub struct TrainForward<B: AutodiffBackend> {
    /// Logits `[seqs * len, n_actions]`, sequence-major.
    pub logits: Tensor<B, 2>,
    /// Values `[seqs * len]`.
    pub values: Tensor<B, 1>,
    /// A quantile critic's quantiles, `[seqs * len, n_critics, N]`; `None` for a scalar
    /// critic.
    pub quantiles: Option<Tensor<B, 3>>,
    /// Encoders run on the host: their parameter gradients are added after `backward()`.
    pub host: Option<HostBpttForward<B>>,
}

/// A minibatch of training sequences on the host.
#[derive(Debug, Clone, Copy)]
pub struct SequenceBatch<'a> {
    /// Observations, `[seqs, len, obs_dim]` row-major.
    pub obs: &'a [f32],
    /// Sequences.
    pub seqs: usize,
    /// Steps per sequence.
    pub len: usize,
    /// Observation width.
    pub obs_dim: usize,
    /// Starting state of each sequence: one vector per state tensor, `[seqs, a, b]`.
    pub state0: &'a [Vec<f32>],
    /// Per-environment shapes `[a, b]` of the state tensors.
    pub state_shapes: &'a [[usize; 2]],
    /// Episode starts, `[seqs, len]`.
    pub episode_starts: &'a [f32],
}

/// A categorical actor-critic that PPO can train (see the [module docs](self)). Its critic is a
/// state value or a quantile critic (distributional PPO: [`crate::distributional`]).
pub trait PolicyNetwork<B: Backend>: Module<B> + Clone {
    /// Build the network a training config describes, for `obs_dim` inputs and `n_actions`
    /// actions, weights drawn from the config's seed.
    fn from_config(
        config: &TrainConfig,
        obs_dim: usize,
        n_actions: usize,
        device: &Device<B>,
    ) -> Result<Self, ConfigError>
    where
        Self: Sized;

    /// Whether the network carries a state between steps.
    fn is_recurrent(&self) -> bool;

    /// The initial (all-zero) state for `batch` environments (empty when feed-forward).
    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B>;

    /// One step: reset the state of the rows whose `episode_start` is 1, then logits and
    /// values of `obs`.
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_dim]`; `episode_start`: `batch` flags, 0 or 1
    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: &[f32],
    ) -> PolicyStep<B>;

    /// Only the values of one step (cheaper where the network can skip the policy).
    fn step_values(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: &[f32],
    ) -> Tensor<B, 1> {
        self.step(obs, state, episode_start).values
    }

    /// Whole sequences (training), each from its `state0` row, resetting before step `t` of
    /// sequence `s` where `episode_starts[s * len + t]` is 1.
    ///
    /// # Shapes
    /// - `obs`: `[seqs, len, obs_dim]`; `episode_starts`: `seqs * len` flags, row-major
    /// - output: logits `[seqs * len, n_actions]`, values `[seqs * len]` and quantiles
    ///   `[seqs * len, n_critics, N]`, sequence-major; the state after the last steps
    fn forward_sequences(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: &[f32],
    ) -> PolicyStep<B>;

    /// Quantiles of the critic's return distribution (0: a scalar critic).
    fn n_quantiles(&self) -> usize;

    /// Parameters of the value head (the value learning-rate group).
    fn value_param_ids(&self) -> Vec<ParamId>;

    /// The observation normalizer's `(mean, var)`, when the network normalizes its inputs
    /// (see [`crate::normalize`]).
    fn obs_stats(&self) -> Option<(Vec<f32>, Vec<f32>)>;

    /// The same network with new observation statistics (unchanged when it has no
    /// normalizer).
    fn with_obs_stats(self, mean: &[f32], var: &[f32]) -> Self
    where
        Self: Sized;

    /// A host snapshot of the network for CPU rollouts and training steps
    /// (`quantrl_nets::host_mlp`), where the network is one it covers (a feed-forward MLP with
    /// a scalar critic); `None` otherwise (the default), and callers use Burn's graph.
    fn host_actor_critic(&self) -> Option<HostActorCritic> {
        None
    }

    /// [`forward_sequences`](Self::forward_sequences) for a training step. A network may run
    /// parts of it outside Burn's autodiff (`host_fast_path`, e.g. GRU/LSTM backpropagation
    /// through time on the CPU) and return their gradients in [`TrainForward::host`]; by
    /// default everything is in Burn's graph.
    fn forward_sequences_train(
        &self,
        batch: SequenceBatch<'_>,
        host_fast_path: bool,
        device: &Device<B>,
    ) -> TrainForward<B>
    where
        B: AutodiffBackend,
    {
        let _ = host_fast_path;
        autodiff_forward(self, &batch, device)
    }
}

/// [`PolicyNetwork::forward_sequences`] on a host [`SequenceBatch`], everything in Burn's
/// graph (the default training forward).
pub fn autodiff_forward<B: AutodiffBackend, M: PolicyNetwork<B>>(
    net: &M,
    batch: &SequenceBatch<'_>,
    device: &Device<B>,
) -> TrainForward<B> {
    let out = net.forward_sequences(
        sequence_obs(batch, device),
        sequence_state(batch, device),
        batch.episode_starts,
    );
    TrainForward {
        logits: out.logits,
        values: out.values,
        quantiles: out.quantiles,
        host: None,
    }
}

/// The observations of a [`SequenceBatch`] as a `[seqs, len, obs_dim]` tensor.
pub fn sequence_obs<B: Backend>(batch: &SequenceBatch<'_>, device: &Device<B>) -> Tensor<B, 3> {
    Tensor::from_data(
        TensorData::new(batch.obs.to_vec(), [batch.seqs, batch.len, batch.obs_dim]),
        device,
    )
}

/// The starting states of a [`SequenceBatch`] as an [`EncoderState`].
pub fn sequence_state<B: Backend>(
    batch: &SequenceBatch<'_>,
    device: &Device<B>,
) -> EncoderState<B> {
    state_from_host(batch.state0, batch.state_shapes, batch.seqs, device)
}

/// A state from host vectors (one per state tensor, `[batch, a, b]` row-major) and the
/// per-environment shapes `[a, b]`: the inverse of reading each tensor back to the host.
pub fn state_from_host<B: Backend>(
    tensors: &[Vec<f32>],
    shapes: &[[usize; 2]],
    batch: usize,
    device: &Device<B>,
) -> EncoderState<B> {
    EncoderState::new(
        tensors
            .iter()
            .zip(shapes)
            .map(|(v, &[a, b])| {
                Tensor::from_data(TensorData::new(v.clone(), [batch, a, b]), device)
            })
            .collect(),
    )
}

impl<B: Backend> PolicyNetwork<B> for ActorCritic<B> {
    fn from_config(
        config: &TrainConfig,
        obs_dim: usize,
        n_actions: usize,
        device: &Device<B>,
    ) -> Result<Self, ConfigError> {
        if config.policy.is_recurrent() {
            return Err(ConfigError::Inconsistent(
                "policy.encoder is set: this config describes a recurrent policy, which the \
                 feed-forward learner cannot train (use RecurrentPpo)"
                    .into(),
            ));
        }
        Ok(config.network(obs_dim, n_actions).init(device))
    }

    fn is_recurrent(&self) -> bool {
        false
    }

    fn initial_state(&self, _batch: usize, _device: &Device<B>) -> EncoderState<B> {
        EncoderState::empty()
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        _episode_start: &[f32],
    ) -> PolicyStep<B> {
        let out = self.forward(obs);
        PolicyStep {
            logits: out.logits,
            values: out.values,
            quantiles: out.quantiles,
            state,
        }
    }

    fn step_values(
        &self,
        obs: Tensor<B, 2>,
        _state: EncoderState<B>,
        _episode_start: &[f32],
    ) -> Tensor<B, 1> {
        self.values(obs)
    }

    fn forward_sequences(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        _episode_starts: &[f32],
    ) -> PolicyStep<B> {
        let [s, l, d] = obs.dims();
        let out = self.forward(obs.reshape([s * l, d]));
        PolicyStep {
            logits: out.logits,
            values: out.values,
            quantiles: out.quantiles,
            state: state0,
        }
    }

    fn n_quantiles(&self) -> usize {
        ActorCritic::n_quantiles(self)
    }

    fn value_param_ids(&self) -> Vec<ParamId> {
        self.value_head_param_ids()
    }

    fn obs_stats(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        self.obs_normalizer().map(|n| n.stats())
    }

    fn with_obs_stats(self, mean: &[f32], var: &[f32]) -> Self {
        Self::with_obs_stats(self, mean, var)
    }

    fn host_actor_critic(&self) -> Option<HostActorCritic> {
        HostActorCritic::from_actor_critic(self)
    }
}

impl<B: Backend> PolicyNetwork<B> for RecurrentActorCritic<B> {
    fn from_config(
        config: &TrainConfig,
        obs_dim: usize,
        n_actions: usize,
        device: &Device<B>,
    ) -> Result<Self, ConfigError> {
        let net = config
            .recurrent_network(obs_dim, n_actions)?
            .ok_or_else(|| {
                ConfigError::Inconsistent(
                    "a recurrent learner needs policy.encoder (e.g. kind = \"gru\")".into(),
                )
            })?;
        Ok(net.init(device))
    }

    fn is_recurrent(&self) -> bool {
        true
    }

    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B> {
        RecurrentActorCritic::initial_state(self, batch, device)
    }

    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: &[f32],
    ) -> PolicyStep<B> {
        let device = obs.device();
        let starts = Tensor::from_data(
            TensorData::new(episode_start.to_vec(), [episode_start.len()]),
            &device,
        );
        let out = RecurrentActorCritic::step(self, obs, state, starts);
        PolicyStep {
            logits: out.logits,
            values: out.values,
            quantiles: out.quantiles,
            state: out.state,
        }
    }

    fn forward_sequences(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: &[f32],
    ) -> PolicyStep<B> {
        let [s, l, _] = obs.dims();
        let device = obs.device();
        let starts = Tensor::from_data(TensorData::new(episode_starts.to_vec(), [s, l]), &device);
        let out = self.forward_seq(obs, state0, starts);
        let a = out.logits.dims()[2];
        PolicyStep {
            logits: out.logits.reshape([s * l, a]),
            values: out.values.reshape([s * l]),
            quantiles: out.quantiles,
            state: out.state,
        }
    }

    fn n_quantiles(&self) -> usize {
        RecurrentActorCritic::n_quantiles(self)
    }

    fn value_param_ids(&self) -> Vec<ParamId> {
        self.value_head_param_ids()
    }

    fn obs_stats(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        self.obs_normalizer().map(|n| n.stats())
    }

    fn with_obs_stats(self, mean: &[f32], var: &[f32]) -> Self {
        Self::with_obs_stats(self, mean, var)
    }

    fn forward_sequences_train(
        &self,
        batch: SequenceBatch<'_>,
        host_fast_path: bool,
        device: &Device<B>,
    ) -> TrainForward<B>
    where
        B: AutodiffBackend,
    {
        if !(host_fast_path && self.supports_host_bptt()) {
            return autodiff_forward(self, &batch, device);
        }
        let out = self.forward_seq_host_bptt(
            batch.obs,
            batch.seqs,
            batch.len,
            batch.state0,
            batch.episode_starts,
            device,
        );
        let n = batch.seqs * batch.len;
        let a = out.logits.dims()[2];
        TrainForward {
            logits: out.logits.clone().reshape([n, a]),
            values: out.values.clone().reshape([n]),
            quantiles: out.quantiles.clone(),
            host: Some(out),
        }
    }
}

/// The per-environment shapes `[a, b]` of a network's state tensors (empty when
/// feed-forward).
pub fn state_shapes<B: Backend, M: PolicyNetwork<B>>(
    net: &M,
    device: &Device<B>,
) -> Vec<[usize; 2]> {
    net.initial_state(1, device)
        .tensors
        .iter()
        .map(|t| {
            let [_, a, b] = t.dims();
            [a, b]
        })
        .collect()
}

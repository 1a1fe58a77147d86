//! The sequence-encoder interface shared by every encoder ([`SequenceEncoder`]) and its
//! explicit recurrent state ([`EncoderState`]).
//!
//! An encoder maps observations to features of width [`SequenceEncoder::output_dim`], either
//! one step at a time (rollouts: [`SequenceEncoder::step`]) or over a whole sequence (training
//! with backpropagation through time: [`SequenceEncoder::forward_seq`]). Both take episode-start
//! flags: a flag at step `t` resets the state to the initial state *before* step `t` is
//! processed (so a flag at `t = 0` discards the incoming state), exactly as sb3-contrib's
//! `RecurrentActorCriticPolicy._process_sequence`. For every encoder, `forward_seq` equals a
//! loop of `step` calls, resets included (a property test checks it).

use burn::tensor::{Device, Int, Tensor, TensorData, backend::AutodiffBackend, backend::Backend};

/// The recurrent state of an encoder for a batch of environments.
///
/// A list of tensors, each with the batch on dimension 0 (`[batch, a, b]`); what the other two
/// dimensions hold depends on the encoder:
///
/// | encoder | tensors |
/// | --- | --- |
/// | GRU | `h: [batch, layers, hidden]` |
/// | LSTM | `h: [batch, layers, hidden]`, `c: [batch, layers, hidden]` |
/// | CLSTM | `h: [batch, hidden_channels, window]`, `c: [batch, hidden_channels, window]` |
/// | GTrXL | `memory: [batch, (layers + 1) * memory_len, d_model]` |
/// | MLP, transformer | none (stateless) |
/// | recurrent actor-critic | the policy encoder's tensors, then the value encoder's |
///
/// **Invariant:** every encoder's initial state is all zeros, so a reset is a multiplication by
/// `1 - episode_start`. Because the batch is always dimension 0, a rollout can store one state
/// per environment and build minibatches with [`select`](Self::select) and
/// [`cat`](Self::cat) without knowing which encoder made it.
#[derive(Debug, Clone)]
pub struct EncoderState<B: Backend> {
    /// The state tensors, batch first.
    pub tensors: Vec<Tensor<B, 3>>,
}

impl<B: Backend> EncoderState<B> {
    /// A state made of `tensors` (each `[batch, _, _]`, the same batch for all).
    pub fn new(tensors: Vec<Tensor<B, 3>>) -> Self {
        Self { tensors }
    }

    /// The state of a stateless encoder.
    pub fn empty() -> Self {
        Self {
            tensors: Vec::new(),
        }
    }

    /// All-zero state tensors of the given per-tensor shapes `[a, b]` (the initial state).
    pub fn zeros(batch: usize, shapes: &[[usize; 2]], device: &Device<B>) -> Self {
        Self {
            tensors: shapes
                .iter()
                .map(|&[a, b]| Tensor::zeros([batch, a, b], device))
                .collect(),
        }
    }

    /// The batch size, or `None` for a stateless encoder.
    pub fn batch_size(&self) -> Option<usize> {
        self.tensors.first().map(|t| t.dims()[0])
    }

    /// The rows `indices` of the batch (for minibatches of environments).
    pub fn select(&self, indices: Tensor<B, 1, Int>) -> Self {
        Self {
            tensors: self
                .tensors
                .iter()
                .map(|t| t.clone().select(0, indices.clone()))
                .collect(),
        }
    }

    /// Concatenate states along the batch (all from the same encoder).
    ///
    /// # Panics
    /// When `states` is empty or the states hold different numbers of tensors.
    pub fn cat(states: Vec<Self>) -> Self {
        let n = states.first().expect("cat of no states").tensors.len();
        assert!(
            states.iter().all(|s| s.tensors.len() == n),
            "cat of states with different numbers of tensors"
        );
        let mut columns: Vec<Vec<Tensor<B, 3>>> = (0..n).map(|_| Vec::new()).collect();
        for s in states {
            for (col, t) in columns.iter_mut().zip(s.tensors) {
                col.push(t);
            }
        }
        Self {
            tensors: columns.into_iter().map(|c| Tensor::cat(c, 0)).collect(),
        }
    }

    /// The same values cut from the autodiff graph.
    pub fn detach(self) -> Self {
        Self {
            tensors: self.tensors.into_iter().map(|t| t.detach()).collect(),
        }
    }

    /// Reset the rows where `episode_start` (`[batch]`, 0 or 1) is 1 to the initial (zero) state.
    pub fn reset(self, episode_start: Tensor<B, 1>) -> Self {
        if self.tensors.is_empty() {
            return self;
        }
        let [b] = episode_start.dims();
        let keep: Tensor<B, 3> = episode_start.neg().add_scalar(1.0).reshape([b, 1, 1]);
        Self {
            tensors: self.tensors.into_iter().map(|t| t * keep.clone()).collect(),
        }
    }

    /// The tensors as host data (for storage outside the backend).
    pub fn to_data(&self) -> Vec<TensorData> {
        self.tensors.iter().map(|t| t.to_data()).collect()
    }

    /// Rebuild a state from host data on `device`.
    pub fn from_data(data: Vec<TensorData>, device: &Device<B>) -> Self {
        Self {
            tensors: data
                .into_iter()
                .map(|d| Tensor::from_data(d, device))
                .collect(),
        }
    }

    /// Split into `(first n tensors, the rest)` (the policy and value parts of an actor-critic
    /// state).
    pub fn split_at(mut self, n: usize) -> (Self, Self) {
        let rest = self.tensors.split_off(n);
        (self, Self { tensors: rest })
    }

    /// Append the tensors of `other`.
    pub fn join(mut self, other: Self) -> Self {
        self.tensors.extend(other.tensors);
        self
    }
}

impl<B: AutodiffBackend> EncoderState<B> {
    /// The state on the inner (non-autodiff) backend.
    pub fn inner(self) -> EncoderState<B::InnerBackend> {
        EncoderState {
            tensors: self.tensors.into_iter().map(|t| t.inner()).collect(),
        }
    }

    /// A state from the inner backend (for example one stored during a rollout on
    /// `model.valid()`) as a constant of the autodiff backend.
    pub fn from_inner(state: EncoderState<B::InnerBackend>) -> Self {
        Self {
            tensors: state.tensors.into_iter().map(Tensor::from_inner).collect(),
        }
    }
}

/// A sequence encoder with an explicit state (see the [module docs](self)).
pub trait SequenceEncoder<B: Backend> {
    /// Width of the features it outputs.
    fn output_dim(&self) -> usize;

    /// Width of one flat observation it takes.
    fn input_dim(&self) -> usize;

    /// The initial (all-zero) state for `batch` environments.
    fn initial_state(&self, batch: usize, device: &Device<B>) -> EncoderState<B>;

    /// One step: reset the rows whose `episode_start` is 1, then process `obs`.
    ///
    /// # Shapes
    /// - `obs`: `[batch, input_dim]`
    /// - `episode_start`: `[batch]`, 0 or 1
    /// - output: `[batch, output_dim]` and the next state
    fn step(
        &self,
        obs: Tensor<B, 2>,
        state: EncoderState<B>,
        episode_start: Tensor<B, 1>,
    ) -> (Tensor<B, 2>, EncoderState<B>);

    /// A whole sequence from `state0`, resetting before step `t` of environment `b` where
    /// `episode_starts[b, t]` is 1. Equal to a loop of [`step`](Self::step) calls.
    ///
    /// # Shapes
    /// - `obs`: `[batch, time, input_dim]`
    /// - `episode_starts`: `[batch, time]`, 0 or 1
    /// - output: `[batch, time, output_dim]` and the state after the last step
    fn forward_seq(
        &self,
        obs: Tensor<B, 3>,
        state0: EncoderState<B>,
        episode_starts: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, EncoderState<B>);
}

/// Per-step "keep" masks `1 - episode_starts[:, t]` as `[batch, 1]` tensors, `None` for steps
/// where no environment starts (read once from the host so that steps without a reset cost
/// nothing).
pub(crate) fn keep_masks<B: Backend>(episode_starts: &Tensor<B, 2>) -> Vec<Option<Tensor<B, 2>>> {
    let [b, t] = episode_starts.dims();
    let device = episode_starts.device();
    let starts: Vec<f64> = episode_starts
        .to_data()
        .convert::<f64>()
        .to_vec()
        .expect("episode_starts as numbers");
    (0..t)
        .map(|s| {
            let col: Vec<f64> = (0..b).map(|i| starts[i * t + s]).collect();
            col.iter().any(|&v| v != 0.0).then(|| {
                let keep: Vec<f32> = col.iter().map(|&v| 1.0 - v as f32).collect();
                Tensor::from_data(TensorData::new(keep, [b, 1]), &device)
            })
        })
        .collect()
}

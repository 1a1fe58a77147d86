//! # quantrl-nets
//!
//! Neural networks on Burn, generic over the backend:
//!
//! - MLPs: [`Mlp`], the batched dual trunk [`ParallelMlp`], the MLP [`ActorCritic`]
//!   (categorical policy head and value head, orthogonal initialization as SB3 and CleanRL do)
//!   and fast [activations](activation).
//! - Sequence encoders behind one trait, [`SequenceEncoder`], with an explicit, batch-first
//!   [`EncoderState`]: [`Gru`] and [`Lstm`] (PyTorch conventions), the convolutional LSTM
//!   [`Clstm`], the gated transformer-XL [`Gtrxl`] (Parisotto et al. 2020), the window
//!   [`TransformerEncoder`] and the stateless [`MlpEncoder`]; [`Encoder`] picks one at run time
//!   from an [`EncoderKind`]. `step` serves rollouts, `forward_seq` trains over whole sequences
//!   with resets at episode starts inside them, and both agree.
//! - Heads ([`heads`]): masked categorical, diagonal Gaussian, value; and the composition
//!   [`RecurrentActorCritic`] (shared or separate policy and value encoders).
//! - Observation normalization inside both actor-critics ([`ObsNormalizer`], statistics set
//!   by the learner and saved with the weights), so a saved network sees what it saw in
//!   training wherever it is loaded.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use quantrl_nets::{ActorCriticConfig, Activation};
//!
//! let device = Default::default();
//! let net = ActorCriticConfig::new(4, 2)
//!     .with_hidden(vec![64, 64])
//!     .with_activation(Activation::Tanh)
//!     .init::<NdArray>(&device);
//! let out = net.forward(Tensor::zeros([8, 4], &device));
//! assert_eq!(out.logits.dims(), [8, 2]);
//! ```
//!
//! A GRU over a batch of sequences, with an episode starting at step 2 of the first sequence:
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Tensor, TensorData};
//! use quantrl_nets::{RnnConfig, SequenceEncoder};
//!
//! let device = Default::default();
//! let gru = RnnConfig::new(3, 16).init_gru::<NdArray>(&device);
//! let obs = Tensor::<NdArray, 3>::ones([2, 4, 3], &device);
//! let starts = Tensor::from_data(
//!     TensorData::new(vec![0f32, 0., 1., 0., 0., 0., 0., 0.], [2, 4]),
//!     &device,
//! );
//! let (out, state) = gru.forward_seq(obs, gru.initial_state(2, &device), starts);
//! assert_eq!(out.dims(), [2, 4, 16]);
//! assert_eq!(state.tensors[0].dims(), [2, 1, 16]);
//! ```

pub mod activation;
mod actor_critic;
pub mod clstm;
pub mod encoder;
pub mod fastmath;
mod gemm;
pub mod gtrxl;
pub mod heads;
pub mod host;
pub mod host_bptt;
pub mod host_mlp;
pub mod init;
mod mlp;
pub mod obs_norm;
mod recurrent_ac;
pub mod rnn;
pub mod transformer;

pub use activation::Activation;
pub use actor_critic::{
    ActorCritic, ActorCriticConfig, ActorCriticOutput, CriticReduction, combine_quantile_critics,
    reduce_critics,
};
pub use clstm::{Clstm, ClstmConfig};
pub use encoder::{EncoderState, SequenceEncoder};
pub use gtrxl::{GruGate, Gtrxl, GtrxlConfig};
pub use heads::{
    CategoricalHead, DiagGaussian, DiagGaussianHead, MASKED_LOGIT, ValueHead, mask_logits,
};
pub use host::{HostGru, HostLinear};
pub use host_mlp::{HostActorCritic, HostMlpTape, load_host_params};
pub use mlp::{Mlp, ParallelMlp, linear_from_pytorch, linear_orthogonal, linear_uniform};
pub use obs_norm::ObsNormalizer;
pub use recurrent_ac::{
    Encoder, EncoderConfig, EncoderKind, HostBpttForward, HostParamGrad, MlpEncoder,
    RecurrentActorCritic, RecurrentActorCriticConfig, RecurrentSeqOutput, RecurrentStepOutput,
};
pub use rnn::{Gru, Lstm, PytorchRnnWeights, RnnConfig};
pub use transformer::{Pooling, TransformerEncoder, TransformerEncoderConfig};

//! # quantrl-nets
//!
//! Neural networks on Burn, generic over the backend: [`Mlp`], the batched dual trunk
//! [`ParallelMlp`], the MLP [`ActorCritic`] (categorical policy head and value head,
//! orthogonal initialization as SB3 and CleanRL do) and fast [activations](activation).
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

pub mod activation;
mod actor_critic;
pub mod clstm;
pub mod encoder;
pub mod gtrxl;
pub mod heads;
pub mod init;
mod mlp;
mod recurrent_ac;
pub mod rnn;
pub mod transformer;

pub use activation::Activation;
pub use actor_critic::{ActorCritic, ActorCriticConfig, ActorCriticOutput};
pub use clstm::{Clstm, ClstmConfig};
pub use encoder::{EncoderState, SequenceEncoder};
pub use gtrxl::{GruGate, Gtrxl, GtrxlConfig};
pub use heads::{
    CategoricalHead, DiagGaussian, DiagGaussianHead, MASKED_LOGIT, ValueHead, mask_logits,
};
pub use mlp::{Mlp, ParallelMlp, linear_from_pytorch, linear_orthogonal, linear_uniform};
pub use recurrent_ac::{
    Encoder, EncoderConfig, EncoderKind, MlpEncoder, RecurrentActorCritic,
    RecurrentActorCriticConfig, RecurrentSeqOutput, RecurrentStepOutput,
};
pub use rnn::{Gru, Lstm, PytorchRnnWeights, RnnConfig};
pub use transformer::{Pooling, TransformerEncoder, TransformerEncoderConfig};

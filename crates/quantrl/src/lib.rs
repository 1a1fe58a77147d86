//! # quantrl
//!
//! Risk-aware reinforcement learning for trading, on the [Burn](https://burn.dev)
//! deep-learning framework. This facade re-exports the workspace's crates and offers a
//! [`prelude`]; its features choose a backend for binaries and examples (`ndarray`, the
//! default CPU backend; `flex`, pure-Rust CPU; `cuda`, NVIDIA GPUs). Library code everywhere
//! else is generic over `B: Backend`.
//!
//! ```no_run
//! use quantrl::prelude::*;
//!
//! let config = TrainConfig { total_steps: 20_000, ..Default::default() };
//! let env = make_env("cartpole", config.ppo.n_envs).unwrap();
//! let device = Default::default();
//! let mut ppo = Ppo::<DefaultAutodiffBackend, _>::new(config, env, &device).unwrap();
//! ppo.learn::<CartPole>(None, &mut no_callback()).unwrap();
//! ```

pub mod backtest;

pub use burn;
pub use quantrl_algos as algos;
pub use quantrl_core as core;
pub use quantrl_data as data;
pub use quantrl_envs as envs;
pub use quantrl_eval as eval;
pub use quantrl_losses as losses;
pub use quantrl_nets as nets;
pub use quantrl_optim as optim;

/// The backend chosen by this crate's features, for binaries and examples: CUDA when the
/// `cuda` feature is on, else flex when `flex` is on, else ndarray.
#[cfg(feature = "cuda")]
pub type DefaultBackend = burn::backend::Cuda<f32, i32>;
/// The backend chosen by this crate's features, for binaries and examples: CUDA when the
/// `cuda` feature is on, else flex when `flex` is on, else ndarray.
#[cfg(all(feature = "flex", not(feature = "cuda")))]
pub type DefaultBackend = burn::backend::Flex;
/// The backend chosen by this crate's features, for binaries and examples: CUDA when the
/// `cuda` feature is on, else flex when `flex` is on, else ndarray.
#[cfg(all(feature = "ndarray", not(feature = "flex"), not(feature = "cuda")))]
pub type DefaultBackend = burn::backend::NdArray<f32>;

/// [`DefaultBackend`] with automatic differentiation, for training.
#[cfg(any(feature = "ndarray", feature = "flex", feature = "cuda"))]
pub type DefaultAutodiffBackend = burn::backend::Autodiff<DefaultBackend>;

/// Name of the backend chosen by the features (for logs and reports).
pub const BACKEND_NAME: &str = if cfg!(feature = "cuda") {
    "cuda"
} else if cfg!(feature = "flex") {
    "flex"
} else if cfg!(feature = "ndarray") {
    "ndarray"
} else {
    "none"
};

/// The types most programs need.
pub mod prelude {
    #[cfg(any(feature = "ndarray", feature = "flex", feature = "cuda"))]
    pub use crate::{DefaultAutodiffBackend, DefaultBackend};
    pub use quantrl_algos::{
        AlgoError, Callback, EvalConfig, EvalStats, MetricsWriter, PolicyConfig, Ppo, PpoConfig,
        TrainConfig, TrainEvent, UpdateStats, no_callback,
    };
    pub use quantrl_core::{
        Actions, ConfigError, EnvError, Rng, Schedule, Space, StepBatch, VecEnv,
    };
    pub use quantrl_envs::{CartPole, CartPoleConfig, check_vec_env, make_env};
    pub use quantrl_nets::{Activation, ActorCritic, ActorCriticConfig};
}

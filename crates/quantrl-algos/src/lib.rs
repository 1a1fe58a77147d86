//! # quantrl-algos
//!
//! Reinforcement-learning algorithms on Burn: the rollout buffer, [GAE](gae::compute_gae),
//! [PPO](Ppo) for feed-forward and recurrent ([`RecurrentPpo`]) policies with action masks,
//! minibatch epochs, advantage normalization, global gradient clipping,
//! learning-rate and clip schedules, the target-KL early stop, typed [events](TrainEvent) and
//! JSON-lines [metrics](MetricsWriter), and atomic [checkpoints](checkpoint) that resume the
//! same run. This is the only crate that calls `backward()` and steps optimizers.
//!
//! Options, each off by default: a [`distributional`] quantile critic with
//! twin critics and a CVaR objective, the [`optimizer`] (AdamW, UPGD, AdaUPGD, with
//! parameter groups), an [`irm`] penalty across the regimes an environment labels,
//! with sparse IRM's feature selection, and observation and reward [`normalize`]ation
//! (SB3's `VecNormalize`).
//!
//! ```no_run
//! use burn::backend::{Autodiff, NdArray};
//! use quantrl_algos::{Ppo, TrainConfig, no_callback};
//! use quantrl_envs::{CartPole, CartPoleConfig};
//!
//! let config = TrainConfig { total_steps: 50_000, ..Default::default() };
//! let env = CartPole::new(CartPoleConfig { num_envs: config.ppo.n_envs, ..Default::default() });
//! let mut eval_env = CartPole::new(CartPoleConfig { num_envs: 4, ..Default::default() });
//! let device = Default::default();
//! let mut ppo = Ppo::<Autodiff<NdArray>, _>::new(config, env, &device).unwrap();
//! let eval = ppo.learn(Some(&mut eval_env), &mut no_callback()).unwrap();
//! println!("mean return {:?}", eval.map(|e| e.mean_return));
//! ```

mod buffer;
pub mod checkpoint;
mod config;
pub mod distributional;
mod error;
mod events;
pub mod gae;
pub mod irm;
mod metrics;
pub mod network;
pub mod normalize;
pub mod optimizer;
pub mod policy;
mod ppo;

pub use buffer::RolloutBuffer;
pub use config::{EncoderSettings, EvalConfig, PolicyConfig, PpoConfig, TrainConfig};
pub use distributional::{
    CvarAdvantageScale, CvarEstimate, CvarGradient, CvarPolicyConfig, DistributionalConfig,
    distributional_critic_loss,
};
pub use error::{AlgoError, CheckpointError};
pub use events::{Callback, EpisodeTracker, EvalStats, TrainEvent, UpdateStats};
pub use irm::{
    IrmPenaltyConfig, IrmTarget, MaskedFeatures, ProbeScore, SparseIrmConfig, SparseIrmScore,
    sparse_irm,
};
pub use metrics::MetricsWriter;
pub use network::{PolicyNetwork, PolicyStep, SequenceBatch, TrainForward};
pub use normalize::{NormalizeConfig, NormalizerState, RunningMeanStd};
pub use optimizer::{AdaUpgdConfig, AnyOptimizer, OptimizerConfig, UpgdConfig};
pub use policy::Agent;
pub use ppo::{
    MASKED_LOGIT, Ppo, PpoOptimizer, RecurrentPpo, apply_mask, next_multiple_after, no_callback,
};

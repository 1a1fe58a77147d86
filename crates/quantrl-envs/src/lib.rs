//! # quantrl-envs
//!
//! Environments implementing [`quantrl_core::VecEnv`]: the trading environments of
//! [`trading`] (single asset and portfolio, with costs, masks and an adversary hook), the
//! CartPole family used to validate the algorithms ([`CartPole`], with `hide_velocity` for
//! CartPoleNoVel), a registry
//! ([`make_env`]) and the conformance checker [`check_vec_env`] that every environment runs in
//! its tests.
//!
//! ```
//! use quantrl_core::{Actions, StepBatch, VecEnv};
//! use quantrl_envs::{CartPole, CartPoleConfig};
//!
//! let mut env = CartPole::new(CartPoleConfig { num_envs: 2, ..Default::default() });
//! let mut batch = StepBatch::for_env(&env);
//! env.reset(Some(0), &mut batch);
//! let mut steps = 0;
//! while !batch.done(0) {
//!     env.step(Actions::Discrete(&[1, 1]), &mut batch).unwrap();
//!     steps += 1;
//! }
//! assert!(steps < 100, "always pushing right falls quickly");
//! ```

mod cartpole;
mod check;
mod identity;
mod registry;
pub mod trading;

pub use cartpole::{CartPole, CartPoleConfig, CartPolePhysics};
pub use check::{CheckReport, EnvCheckError, check_vec_env};
pub use identity::{MaskedIdentity, MaskedIdentityConfig};
pub use registry::{ENV_NAMES, SYNTHETIC_SIGNAL_SEED, make_env};

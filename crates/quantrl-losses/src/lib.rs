//! # quantrl-losses
//!
//! Pure tensor functions, generic over the Burn backend. They return structs of named terms for
//! logging where there is more than one term.
//!
//! * [`ppo`]: the clipped PPO surrogate, clipped value loss, entropy and approximate KL, with
//!   Stable-Baselines3's conventions (checked against `ppo_loss.json`);
//! * [`host`]: the same PPO loss on host arrays with hand-derived gradients, for the CPU
//!   training path of small networks;
//! * [`categorical`]: categorical distribution math over logits;
//! * [`kl`]: the KL-penalized surrogate and the adaptive KL coefficient (PPO paper);
//! * [`value`]: variance-scaled value loss and variance-adaptive value clipping;
//! * [`quantile`]: the quantile Huber loss of QR-DQN and TQC (sb3-contrib's, `quantile_huber.json`);
//! * [`cvar`]: CVaR of quantile distributions and of samples (`cvar.json`), and a CVaR
//!   objective as a penalty or as a constraint with a Lagrange multiplier;
//! * [`irm`]: the IRMv1 penalty across regimes (`irm.json`) and sparse IRM's iterative hard
//!   thresholding of input features.
//!
//! Configs validate themselves and report a `quantrl_core::ConfigError`.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use quantrl_losses::ppo::{clipped_surrogate};
//!
//! let d = Default::default();
//! let lp = Tensor::<NdArray, 1>::from_floats([0.0, -0.5], &d);
//! let old = Tensor::<NdArray, 1>::from_floats([0.0, 0.0], &d);
//! let adv = Tensor::<NdArray, 1>::from_floats([1.0, -1.0], &d);
//! let (loss, _ratio) = clipped_surrogate(lp, old, adv, 0.2);
//! // ratio 1 and exp(-0.5) < 0.8 (clipped to 0.8 for a negative advantage: min picks -0.8)
//! let v = loss.into_scalar();
//! assert!((v - (-(1.0 - 0.8) / 2.0)).abs() < 1e-6);
//! ```

pub mod categorical;
pub mod cvar;
pub mod host;
pub mod irm;
pub mod kl;
pub mod ppo;
pub mod quantile;
pub mod value;

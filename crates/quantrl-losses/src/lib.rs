//! # quantrl-losses
//!
//! Pure tensor functions, generic over the Burn backend: the clipped PPO surrogate, clipped
//! value loss, entropy and approximate KL ([`ppo`]), and categorical distribution math
//! ([`categorical`]). They return structs of named terms for logging. The conventions are
//! Stable-Baselines3's, checked number for number against `ppo_loss.json`.
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
pub mod ppo;

//! # quantrl-core
//!
//! The foundation every other quantrl crate plugs into: observation and action
//! [spaces](Space), the [`VecEnv`] trait that steps `N` environments over contiguous host
//! buffers ([`StepBatch`]), reproducible seeding ([`Rng`], [`derive_seed`]), serializable
//! [schedules](Schedule), the shared [errors](ConfigError) and [`multiversion!`], run-time
//! dispatch of vectorized loops to the CPU's widest vector unit.
//!
//! It knows nothing of trading, of data files or of neural networks.
//!
//! ```
//! use quantrl_core::{Schedule, Space, Rng};
//! let space = Space::Discrete { n: 3 };
//! let mut rng = Rng::seed_from_u64(0);
//! let mut a = [0u32];
//! space.sample_discrete(&mut rng, &mut a);
//! assert!(space.contains_discrete(&a));
//! let lr = Schedule::Linear { start: 1e-3, end: 0.0 };
//! assert!((lr.value(0.5) - 5e-4).abs() < 1e-12);
//! ```

mod error;
mod rng;
mod schedule;
mod simd;
mod space;
mod vec_env;

pub use error::{
    ConfigError, EnvError, check_closed, check_non_negative, check_open, check_positive,
};
pub use rng::{Rng, derive_seed, splitmix64};
pub use schedule::Schedule;
pub use space::Space;
pub use vec_env::{Actions, StepBatch, VecEnv};

//! Observation and action spaces.

use serde::{Deserialize, Serialize};

use crate::Rng;

/// The set of valid observations or actions of one environment.
///
/// Vectorized environments describe one environment; a batch is `num_envs` of them laid out
/// contiguously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Space {
    /// One integer action in `0..n`.
    Discrete {
        /// Number of choices.
        n: usize,
    },
    /// Several independent integer actions, the `i`-th in `0..nvec[i]`.
    MultiDiscrete {
        /// Number of choices of each component.
        nvec: Vec<usize>,
    },
    /// A box of `f32` values with per-component bounds (infinite bounds allowed).
    Box {
        /// Lower bounds, one per component.
        low: Vec<f32>,
        /// Upper bounds, one per component.
        high: Vec<f32>,
    },
}

impl Space {
    /// A box of `dim` components bounded by `[low, high]` each.
    pub fn uniform_box(dim: usize, low: f32, high: f32) -> Self {
        Space::Box {
            low: vec![low; dim],
            high: vec![high; dim],
        }
    }

    /// Number of `f32` (Box) or integer (Discrete: 1, MultiDiscrete: len) slots one element
    /// of this space takes in a flat buffer.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::MultiDiscrete { nvec } => nvec.len(),
            Space::Box { low, .. } => low.len(),
        }
    }

    /// Length of an action mask for this space: `n` for Discrete, `sum(nvec)` for
    /// MultiDiscrete (one block per component), `None` for Box (no masking).
    pub fn mask_len(&self) -> Option<usize> {
        match self {
            Space::Discrete { n } => Some(*n),
            Space::MultiDiscrete { nvec } => Some(nvec.iter().sum()),
            Space::Box { .. } => None,
        }
    }

    /// Whether a flat discrete action is inside the space.
    pub fn contains_discrete(&self, action: &[u32]) -> bool {
        match self {
            Space::Discrete { n } => action.len() == 1 && (action[0] as usize) < *n,
            Space::MultiDiscrete { nvec } => {
                action.len() == nvec.len()
                    && action.iter().zip(nvec).all(|(&a, &n)| (a as usize) < n)
            }
            Space::Box { .. } => false,
        }
    }

    /// Whether a flat `f32` value lies inside a Box space (NaN never does).
    pub fn contains_f32(&self, value: &[f32]) -> bool {
        match self {
            Space::Box { low, high } => {
                value.len() == low.len()
                    && value
                        .iter()
                        .zip(low.iter().zip(high))
                        .all(|(&v, (&l, &h))| !v.is_nan() && v >= l && v <= h)
            }
            _ => false,
        }
    }

    /// Draw a uniform discrete action into `out` (Discrete and MultiDiscrete only).
    pub fn sample_discrete(&self, rng: &mut Rng, out: &mut [u32]) {
        match self {
            Space::Discrete { n } => out[0] = rng.below(*n as u64) as u32,
            Space::MultiDiscrete { nvec } => {
                for (o, &n) in out.iter_mut().zip(nvec) {
                    *o = rng.below(n as u64) as u32;
                }
            }
            Space::Box { .. } => panic!("sample_discrete called on a Box space"),
        }
    }

    /// Draw a value of a Box space into `out`: uniform where both bounds are finite, a
    /// standard normal otherwise.
    pub fn sample_box(&self, rng: &mut Rng, out: &mut [f32]) {
        match self {
            Space::Box { low, high } => {
                for ((o, &l), &h) in out.iter_mut().zip(low).zip(high) {
                    *o = if l.is_finite() && h.is_finite() {
                        rng.uniform_range(l as f64, h as f64) as f32
                    } else {
                        rng.normal() as f32
                    };
                }
            }
            _ => panic!("sample_box called on a discrete space"),
        }
    }

    /// Number of discrete choices (Discrete only).
    pub fn n(&self) -> Option<usize> {
        match self {
            Space::Discrete { n } => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::Discrete { n } => write!(f, "Discrete({n})"),
            Space::MultiDiscrete { nvec } => write!(f, "MultiDiscrete({nvec:?})"),
            Space::Box { low, .. } => write!(f, "Box({})", low.len()),
        }
    }
}

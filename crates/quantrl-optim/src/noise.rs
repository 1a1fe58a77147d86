//! Where UPGD's perturbation noise comes from.
//!
//! UPGD adds `σ · n` with `n ~ N(0, 1)` drawn per element. The draws go through
//! [`NoiseSource`] so that tests can replay a reference implementation's draws exactly
//! ([`ReplayNoise`]), runs can be reproduced on every backend ([`RngNoise`], host draws from
//! `quantrl_core::Rng`), or the backend can draw on its own device ([`BackendNoise`], the
//! fastest).

use std::collections::{HashMap, VecDeque};

use burn::module::ParamId;
use burn::tensor::{Device, Distribution, ElementConversion, Tensor, TensorData, backend::Backend};
use quantrl_core::Rng;
use serde::{Deserialize, Serialize};

/// A source of standard normal draws for the UPGD perturbation.
pub trait NoiseSource<B: Backend>: Send + Clone {
    /// `shape.iter().product()` independent `N(0, 1)` draws for the parameter `param`, in the
    /// row-major order of its tensor. Called once per parameter and step, in the order the
    /// module visits its parameters, and only when `σ > 0`.
    fn standard_normal(
        &mut self,
        param: ParamId,
        shape: &[usize],
        device: &Device<B>,
    ) -> Tensor<B, 1>;
}

/// Draws on the device with the backend's own generator (`Tensor::random`); reproducible
/// through the backend's seed (`B::seed`), not across backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendNoise;

impl<B: Backend> NoiseSource<B> for BackendNoise {
    fn standard_normal(&mut self, _: ParamId, shape: &[usize], device: &Device<B>) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        Tensor::random([n], Distribution::Normal(0.0, 1.0), device)
    }
}

/// Draws on the host from a serializable `quantrl_core::Rng` (Box-Muller, both values of each
/// pair), then uploads: the same numbers on every backend (up to the float type), a checkpoint
/// can save the generator, and on the CPU it is the fastest source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngNoise {
    /// The generator.
    pub rng: Rng,
}

impl RngNoise {
    /// A source seeded with `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self {
            rng: Rng::seed_from_u64(seed),
        }
    }
}

impl<B: Backend> NoiseSource<B> for RngNoise {
    /// Box-Muller with both values of each pair used (`r cos θ`, `r sin θ`), written straight
    /// in the backend's float type: about half the cost of one draw per pair.
    fn standard_normal(&mut self, _: ParamId, shape: &[usize], device: &Device<B>) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        let mut draws: Vec<B::FloatElem> = Vec::with_capacity(n + 1);
        while draws.len() < n {
            // 1 - u is in (0, 1], so the log is finite.
            let r = (-2.0 * (1.0 - self.rng.uniform()).ln()).sqrt();
            let (sin, cos) = (std::f64::consts::TAU * self.rng.uniform()).sin_cos();
            draws.push((r * cos).elem());
            draws.push((r * sin).elem());
        }
        draws.truncate(n);
        Tensor::from_data(TensorData::new(draws, [n]), device)
    }
}

/// Replays recorded draws: for each parameter, a queue of draw vectors consumed one per step.
/// Used to reproduce a reference implementation's `torch.randn_like` draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayNoise {
    queues: HashMap<ParamId, VecDeque<Vec<f64>>>,
}

impl ReplayNoise {
    /// An empty replay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue the draws of one step for `param` (row-major, one per element).
    pub fn push(&mut self, param: ParamId, draws: Vec<f64>) {
        self.queues.entry(param).or_default().push_back(draws);
    }

    /// Draw vectors still queued, over all parameters.
    pub fn remaining(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

impl<B: Backend> NoiseSource<B> for ReplayNoise {
    /// Panics when no draws are queued for `param` or their count does not match `shape`.
    fn standard_normal(
        &mut self,
        param: ParamId,
        shape: &[usize],
        device: &Device<B>,
    ) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        let draws = self
            .queues
            .get_mut(&param)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("ReplayNoise: no draws queued for parameter {param}"));
        assert_eq!(
            draws.len(),
            n,
            "ReplayNoise: {} draws queued for parameter {param} of shape {shape:?}",
            draws.len()
        );
        Tensor::from_data(
            TensorData::new(draws, [n]).convert::<B::FloatElem>(),
            device,
        )
    }
}

//! Where UPGD's perturbation noise comes from.
//!
//! UPGD adds `σ · n` with `n ~ N(0, 1)` drawn per element; the optimizer asks for the
//! scaled draws `std · n` directly, so the scaling costs no tensor operation. The draws go through
//! [`NoiseSource`] so that tests can replay a reference implementation's draws exactly
//! ([`ReplayNoise`]), runs can be reproduced on every backend ([`RngNoise`], host draws from
//! `quantrl_core::Rng`), or the backend can draw on its own device ([`BackendNoise`], the
//! fastest).

use std::collections::{HashMap, VecDeque};

use burn::module::ParamId;
use burn::tensor::{Device, Distribution, ElementConversion, Tensor, TensorData, backend::Backend};
use quantrl_core::Rng;
use serde::{Deserialize, Serialize};

/// A source of normal draws for the UPGD perturbation.
pub trait NoiseSource<B: Backend>: Send + Clone {
    /// `shape.iter().product()` independent draws `std · n`, `n ~ N(0, 1)`, for the parameter
    /// `param`, in the row-major order of its tensor. Called once per parameter and step, in
    /// the order the module visits its parameters, and only when `σ > 0`.
    fn normal(
        &mut self,
        param: ParamId,
        shape: &[usize],
        std: f64,
        device: &Device<B>,
    ) -> Tensor<B, 1>;
}

/// Draws on the device with the backend's own generator (`Tensor::random`); reproducible
/// through the backend's seed (`B::seed`), not across backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendNoise;

impl<B: Backend> NoiseSource<B> for BackendNoise {
    fn normal(
        &mut self,
        _: ParamId,
        shape: &[usize],
        std: f64,
        device: &Device<B>,
    ) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        Tensor::random([n], Distribution::Normal(0.0, std), device)
    }
}

/// Draws on the host from a serializable `quantrl_core::Rng` with a ziggurat, then uploads:
/// the same numbers on every backend (up to the float type), a checkpoint can save the
/// generator, and on the CPU it is the fastest source.
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
    /// Ziggurat draws (see [`Ziggurat`]) written straight in the backend's float type.
    fn normal(
        &mut self,
        _: ParamId,
        shape: &[usize],
        std: f64,
        device: &Device<B>,
    ) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        let zig = Ziggurat::get();
        let draws: Vec<B::FloatElem> = (0..n)
            .map(|_| (std * zig.sample(&mut self.rng)).elem())
            .collect();
        Tensor::from_data(TensorData::new(draws, [n]), device)
    }
}

/// Marsaglia and Tsang's ziggurat for `N(0, 1)` with Doornik's 128-layer tables (ZIGNOR,
/// Doornik 2005): one uniform and no transcendental function for ~99% of the draws, several
/// times faster than Box-Muller, which made the UPGD noise the largest part of a step.
#[derive(Debug)]
pub struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    ratio: [f64; ZIG_LAYERS],
}

const ZIG_LAYERS: usize = 128;
const ZIG_R: f64 = 3.442619855899;
const ZIG_V: f64 = 9.91256303526217e-3;

impl Ziggurat {
    /// The tables, computed once per process.
    pub fn get() -> &'static Ziggurat {
        static TABLES: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
        TABLES.get_or_init(|| {
            let mut x = [0.0; ZIG_LAYERS + 1];
            let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
            x[0] = ZIG_V / f;
            x[1] = ZIG_R;
            for i in 2..ZIG_LAYERS {
                x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
                f = (-0.5 * x[i] * x[i]).exp();
            }
            let mut ratio = [0.0; ZIG_LAYERS];
            for i in 0..ZIG_LAYERS {
                ratio[i] = x[i + 1] / x[i];
            }
            Ziggurat { x, ratio }
        })
    }

    /// One `N(0, 1)` draw.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        loop {
            let bits = rng.next_u64();
            let i = (bits & (ZIG_LAYERS as u64 - 1)) as usize;
            // u uniform in [-1, 1) from the top 53 bits.
            let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            if u.abs() < self.ratio[i] {
                return u * self.x[i];
            }
            if i == 0 {
                // The tail beyond R (Marsaglia 1964); 1 - uniform is in (0, 1].
                let t = loop {
                    let t = (1.0 - rng.uniform()).ln() / ZIG_R;
                    let y = (1.0 - rng.uniform()).ln();
                    if -2.0 * y >= t * t {
                        break t;
                    }
                };
                return if u < 0.0 { t - ZIG_R } else { ZIG_R - t };
            }
            let x = u * self.x[i];
            let f0 = (-0.5 * (self.x[i] * self.x[i] - x * x)).exp();
            let f1 = (-0.5 * (self.x[i + 1] * self.x[i + 1] - x * x)).exp();
            if f1 + rng.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziggurat_draws_are_standard_normal() {
        let zig = Ziggurat::get();
        let mut rng = Rng::seed_from_u64(11);
        let n = 400_000;
        let draws: Vec<f64> = (0..n).map(|_| zig.sample(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = draws.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        let frac = |c: f64| draws.iter().filter(|x| x.abs() > c).count() as f64 / n as f64;
        // Standard errors: mean 0.0016, variance 0.0022, kurtosis ~0.008.
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((var - 1.0).abs() < 0.011, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        // P(|x| > 1) = 0.3173, P(|x| > 2) = 0.0455, P(|x| > 3.5) = 4.65e-4 (beyond the base layer).
        assert!((frac(1.0) - 0.3173).abs() < 0.004, "{}", frac(1.0));
        assert!((frac(2.0) - 0.0455).abs() < 0.0017, "{}", frac(2.0));
        assert!((frac(3.5) - 4.65e-4).abs() < 1.5e-4, "{}", frac(3.5));
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

    /// Queue the standard normal draws of one step for `param` (row-major, one per element);
    /// they are multiplied by the requested `std` when replayed.
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
    fn normal(
        &mut self,
        param: ParamId,
        shape: &[usize],
        std: f64,
        device: &Device<B>,
    ) -> Tensor<B, 1> {
        let n = shape.iter().product::<usize>();
        let mut draws = self
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
        draws.iter_mut().for_each(|x| *x *= std);
        Tensor::from_data(
            TensorData::new(draws, [n]).convert::<B::FloatElem>(),
            device,
        )
    }
}

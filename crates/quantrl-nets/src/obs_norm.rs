//! Observation normalization inside a network: `clip((x - mean) / sqrt(var + ε), ±clip)`,
//! feature by feature, as Stable-Baselines3's `VecNormalize` does it in front of the policy.
//!
//! The statistics are not trained: a learner estimates them from the observations it collects
//! (e.g. `quantrl_algos`' running mean and variance) and writes them in with
//! [`ObsNormalizer::with_stats`]. They are part of the network's record, so a saved network
//! normalizes exactly as it did in training wherever it is loaded (evaluation, backtests,
//! prediction), and they receive no gradient.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// `ε` under the square root, as SB3's `VecNormalize` (`epsilon = 1e-8`).
pub const OBS_NORM_EPSILON: f64 = 1e-8;

/// A fixed per-feature affine map with clipping (see the [module docs](self)). A fresh one is
/// the identity (mean 0, variance 1) up to the clip.
#[derive(Module, Debug)]
pub struct ObsNormalizer<B: Backend> {
    /// Per-feature mean, `[obs_dim]`.
    mean: Param<Tensor<B, 1>>,
    /// Per-feature variance, `[obs_dim]`.
    var: Param<Tensor<B, 1>>,
    /// Normalized values are clipped to `[-clip, clip]`.
    #[module(skip)]
    clip: f32,
}

impl<B: Backend> ObsNormalizer<B> {
    /// The identity normalizer for `obs_dim` features (mean 0, variance 1), clipping at `clip`.
    pub fn new(obs_dim: usize, clip: f32, device: &B::Device) -> Self {
        Self {
            mean: Param::from_tensor(Tensor::zeros([obs_dim], device)).set_require_grad(false),
            var: Param::from_tensor(Tensor::ones([obs_dim], device)).set_require_grad(false),
            clip,
        }
    }

    /// Width of the observations it normalizes.
    pub fn obs_dim(&self) -> usize {
        self.mean.dims()[0]
    }

    /// The clip bound.
    pub fn clip(&self) -> f32 {
        self.clip
    }

    /// The same normalizer with new statistics (`mean` and `var` of length `obs_dim`; the
    /// parameter ids are kept).
    ///
    /// # Panics
    /// When the lengths differ from `obs_dim`.
    pub fn with_stats(self, mean: &[f32], var: &[f32]) -> Self {
        let d = self.obs_dim();
        assert!(
            mean.len() == d && var.len() == d,
            "ObsNormalizer::with_stats: {} means and {} variances for {d} features",
            mean.len(),
            var.len()
        );
        let device = self.mean.device();
        let set = |p: Param<Tensor<B, 1>>, v: &[f32]| {
            let id = p.id;
            Param::initialized(
                id,
                Tensor::from_data(TensorData::new(v.to_vec(), [d]), &device),
            )
            .set_require_grad(false)
        };
        Self {
            mean: set(self.mean, mean),
            var: set(self.var, var),
            clip: self.clip,
        }
    }

    /// The statistics on the host: `(mean, var)`.
    pub fn stats(&self) -> (Vec<f32>, Vec<f32>) {
        let host = |t: Tensor<B, 1>| t.into_data().convert::<f32>().to_vec().expect("floats");
        (host(self.mean.val()), host(self.var.val()))
    }

    /// Normalize observations whose last dimension is the feature (no gradient reaches the
    /// statistics).
    ///
    /// # Shapes
    /// - `x`: `[..., obs_dim]` → same
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let mean = self.mean.val().detach().unsqueeze::<D>();
        let inv_std = self
            .var
            .val()
            .detach()
            .add_scalar(OBS_NORM_EPSILON)
            .sqrt()
            .recip()
            .unsqueeze::<D>();
        x.sub(mean)
            .mul(inv_std)
            .clamp(-self.clip as f64, self.clip as f64)
    }

    /// [`forward`](Self::forward) on host rows `[n, obs_dim]` (the CPU training paths), in
    /// the same f32 arithmetic.
    pub fn normalize_host(&self, x: &[f32]) -> Vec<f32> {
        let (mean, var) = self.stats();
        let inv: Vec<f32> = var
            .iter()
            .map(|&v| (v + OBS_NORM_EPSILON as f32).sqrt().recip())
            .collect();
        let d = mean.len();
        x.chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .zip(&inv)
                    .map(|((&v, &m), &s)| ((v - m) * s).clamp(-self.clip, self.clip))
            })
            .collect()
    }
}

/// `x` through `norm` when there is one (the networks' optional normalizer), else `x`.
pub(crate) fn normalize_opt<B: Backend, const D: usize>(
    norm: Option<&ObsNormalizer<B>>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    match norm {
        Some(norm) => norm.forward(x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    #[test]
    fn normalizes_clips_and_matches_the_host_path() {
        let device = Default::default();
        let norm = ObsNormalizer::<B>::new(2, 5.0, &device).with_stats(&[1.0, -2.0], &[4.0, 0.25]);
        let x = [3.0f32, -2.0, 1.0, 10.0];
        let y = norm.forward(Tensor::<B, 2>::from_data(
            TensorData::new(x.to_vec(), [2, 2]),
            &device,
        ));
        let y: Vec<f32> = y.into_data().to_vec().unwrap();
        // (3-1)/2 = 1, 0, 0, (10+2)/0.5 = 24 -> clipped to 5.
        let want = [1.0f32, 0.0, 0.0, 5.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
        for (a, b) in norm.normalize_host(&x).iter().zip(&y) {
            assert!((a - b).abs() < 1e-6);
        }
        // The identity up to the clip when fresh.
        let fresh = ObsNormalizer::<B>::new(2, 10.0, &device);
        assert_eq!(fresh.normalize_host(&[0.5, -20.0]), vec![0.5, -10.0]);
    }

    #[test]
    fn new_stats_keep_the_parameter_ids() {
        let device = Default::default();
        let norm = ObsNormalizer::<B>::new(3, 10.0, &device);
        let ids = (norm.mean.id, norm.var.id);
        let norm = norm.with_stats(&[1.0; 3], &[2.0; 3]);
        assert_eq!((norm.mean.id, norm.var.id), ids);
        assert_eq!(norm.stats(), (vec![1.0; 3], vec![2.0; 3]));
    }
}

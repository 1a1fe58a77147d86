//! Policy and value heads: a masked categorical head, a diagonal Gaussian head with a
//! state-independent log standard deviation, and a value head.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Bool, Device, Int, Tensor, activation::log_softmax, backend::Backend};
use quantrl_core::Rng;

use crate::mlp::linear_orthogonal;

/// The logit given to invalid actions: large and negative but finite, so that a softmax gives
/// them probability exactly 0 in float32 and float64 and no `-inf - -inf = NaN` can appear even
/// when every action but one is masked.
pub const MASKED_LOGIT: f64 = -1e8;

/// `logits` with the entries where `valid` is false set to [`MASKED_LOGIT`].
///
/// # Shapes
/// - `logits`, `valid`: `[batch, n_actions]`
/// - output: `[batch, n_actions]`
pub fn mask_logits<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    valid: Tensor<B, D, Bool>,
) -> Tensor<B, D> {
    logits.mask_fill(valid.bool_not(), MASKED_LOGIT)
}

/// A linear categorical policy head (orthogonal init, gain 0.01 by default as SB3 does).
#[derive(Module, Debug)]
pub struct CategoricalHead<B: Backend> {
    linear: Linear<B>,
}

impl<B: Backend> CategoricalHead<B> {
    /// A head `d_in -> n_actions` with orthogonal weights of `gain` and zero bias.
    pub fn new(
        d_in: usize,
        n_actions: usize,
        gain: f64,
        rng: &mut Rng,
        device: &Device<B>,
    ) -> Self {
        Self {
            linear: linear_orthogonal(d_in, n_actions, gain, rng, device),
        }
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.linear.weight.dims()[1]
    }

    /// Unmasked logits.
    ///
    /// # Shapes
    /// - `h`: `[..., d_in]` (rank 2 or 3)
    /// - output: `[..., n_actions]`
    pub fn forward<const D: usize>(&self, h: Tensor<B, D>) -> Tensor<B, D> {
        self.linear.forward(h)
    }

    /// Logits with invalid actions (`valid` false) set to [`MASKED_LOGIT`].
    ///
    /// # Shapes
    /// - `h`: `[..., d_in]`, `valid`: `[..., n_actions]`
    /// - output: `[..., n_actions]`
    pub fn forward_masked<const D: usize>(
        &self,
        h: Tensor<B, D>,
        valid: Tensor<B, D, Bool>,
    ) -> Tensor<B, D> {
        mask_logits(self.forward(h), valid)
    }

    /// Log-probabilities of `actions` under `logits` (masked or not).
    ///
    /// # Shapes
    /// - `logits`: `[batch, n_actions]`, `actions`: `[batch]`
    /// - output: `[batch]`
    pub fn log_prob(logits: Tensor<B, 2>, actions: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let [n, _] = logits.dims();
        log_softmax(logits, 1)
            .gather(1, actions.reshape([n, 1]))
            .reshape([n])
    }

    /// Entropy of the categorical distribution of `logits`; masked actions (probability 0)
    /// contribute exactly 0.
    ///
    /// # Shapes
    /// - `logits`: `[batch, n_actions]`
    /// - output: `[batch]`
    pub fn entropy(logits: Tensor<B, 2>) -> Tensor<B, 1> {
        let [n, _] = logits.dims();
        let logp = log_softmax(logits, 1);
        (logp.clone().exp() * logp).sum_dim(1).neg().reshape([n])
    }
}

/// A diagonal Gaussian policy head: a linear mean and a state-independent log standard
/// deviation parameter (SB3's `DiagGaussianDistribution`).
#[derive(Module, Debug)]
pub struct DiagGaussianHead<B: Backend> {
    mean: Linear<B>,
    /// Log standard deviation per action dimension, `[action_dim]`.
    pub log_std: Param<Tensor<B, 1>>,
}

/// The distribution a [`DiagGaussianHead`] gives for a batch.
#[derive(Debug, Clone)]
pub struct DiagGaussian<B: Backend> {
    /// Means, `[batch, action_dim]`.
    pub mean: Tensor<B, 2>,
    /// Log standard deviations, `[1, action_dim]` (broadcast over the batch).
    pub log_std: Tensor<B, 2>,
}

const LN_2PI: f64 = 1.837_877_066_409_345_3;

impl<B: Backend> DiagGaussianHead<B> {
    /// A head `d_in -> action_dim` (orthogonal mean weights with `gain`, zero bias) with every
    /// log standard deviation set to `log_std_init` (SB3's default: 0).
    pub fn new(
        d_in: usize,
        action_dim: usize,
        gain: f64,
        log_std_init: f64,
        rng: &mut Rng,
        device: &Device<B>,
    ) -> Self {
        Self {
            mean: linear_orthogonal(d_in, action_dim, gain, rng, device),
            log_std: Param::from_tensor(Tensor::full([action_dim], log_std_init, device)),
        }
    }

    /// The distribution for features `h`.
    ///
    /// # Shapes
    /// - `h`: `[batch, d_in]`
    pub fn forward(&self, h: Tensor<B, 2>) -> DiagGaussian<B> {
        DiagGaussian {
            mean: self.mean.forward(h),
            log_std: self.log_std.val().unsqueeze(),
        }
    }
}

impl<B: Backend> DiagGaussian<B> {
    /// Log-density of `actions`, summed over action dimensions.
    ///
    /// # Shapes
    /// - `actions`: `[batch, action_dim]`
    /// - output: `[batch]`
    pub fn log_prob(&self, actions: Tensor<B, 2>) -> Tensor<B, 1> {
        let [n, d] = actions.dims();
        let z = (actions - self.mean.clone()) * self.log_std.clone().neg().exp();
        let per_dim = z.powi_scalar(2).mul_scalar(-0.5) - self.log_std.clone();
        per_dim
            .sum_dim(1)
            .reshape([n])
            .sub_scalar(0.5 * LN_2PI * d as f64)
    }

    /// Entropy, summed over action dimensions.
    ///
    /// # Shapes
    /// - output: `[batch]`
    pub fn entropy(&self) -> Tensor<B, 1> {
        let [n, d] = self.mean.dims();
        let per_row = self
            .log_std
            .clone()
            .sum_dim(1)
            .add_scalar(0.5 * (1.0 + LN_2PI) * d as f64);
        per_row.expand([n, 1]).reshape([n])
    }

    /// A sample `mean + exp(log_std) * noise` from external standard-normal `noise` (so the
    /// caller owns the random stream).
    ///
    /// # Shapes
    /// - `noise`: `[batch, action_dim]`
    /// - output: `[batch, action_dim]`
    pub fn sample(&self, noise: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mean.clone() + noise * self.log_std.clone().exp()
    }

    /// The most likely action (the mean).
    pub fn mode(&self) -> Tensor<B, 2> {
        self.mean.clone()
    }
}

/// A linear state-value head (orthogonal init, gain 1 by default as SB3 does).
#[derive(Module, Debug)]
pub struct ValueHead<B: Backend> {
    linear: Linear<B>,
}

impl<B: Backend> ValueHead<B> {
    /// A head `d_in -> 1` with orthogonal weights of `gain` and zero bias.
    pub fn new(d_in: usize, gain: f64, rng: &mut Rng, device: &Device<B>) -> Self {
        Self {
            linear: linear_orthogonal(d_in, 1, gain, rng, device),
        }
    }

    /// A quantile critic's head `d_in -> n_quantiles` (orthogonal weights of `gain`, zero
    /// bias): each output is one quantile of the return distribution.
    pub fn quantiles(
        d_in: usize,
        n_quantiles: usize,
        gain: f64,
        rng: &mut Rng,
        device: &Device<B>,
    ) -> Self {
        Self {
            linear: linear_orthogonal(d_in, n_quantiles, gain, rng, device),
        }
    }

    /// Outputs per row: 1 for a state-value head, `N` for a quantile head.
    pub fn width(&self) -> usize {
        self.linear.weight.dims()[1]
    }

    /// A state-value head's values.
    ///
    /// # Shapes
    /// - `h`: `[batch, d_in]`
    /// - output: `[batch]`
    ///
    /// # Panics
    /// On a quantile head (use [`forward_quantiles`](Self::forward_quantiles)).
    pub fn forward(&self, h: Tensor<B, 2>) -> Tensor<B, 1> {
        let [n, _] = h.dims();
        assert_eq!(self.width(), 1, "ValueHead::forward on a quantile head");
        self.linear.forward(h).reshape([n])
    }

    /// All outputs: the quantiles of a quantile head.
    ///
    /// # Shapes
    /// - `h`: `[batch, d_in]`
    /// - output: `[batch, width]`
    pub fn forward_quantiles(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        self.linear.forward(h)
    }

    /// Ids of the head's parameters (for a value learning-rate group).
    pub fn param_ids(&self) -> Vec<burn::module::ParamId> {
        let mut ids = vec![self.linear.weight.id];
        if let Some(b) = &self.linear.bias {
            ids.push(b.id);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    // float32: the unit tests share one process with other float32 tests (see ARCHITECTURE.md).
    type B = NdArray<f32>;

    fn v<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data().convert::<f64>().to_vec().unwrap()
    }

    #[test]
    fn all_but_one_masked_gives_certainty_and_no_nan() {
        let dev = Default::default();
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.3, -2.0, 5.0, 1.0, 1.0, 1.0], [2, 3]),
            &dev,
        );
        let valid = Tensor::<B, 2, Bool>::from_data(
            TensorData::new(vec![false, true, false, true, true, false], [2, 3]),
            &dev,
        );
        let masked = mask_logits(logits, valid);
        let lp = v(CategoricalHead::log_prob(
            masked.clone(),
            Tensor::from_data(TensorData::new(vec![1i64, 0], [2]), &dev),
        ));
        let ent = v(CategoricalHead::entropy(masked));
        assert!(lp[0].abs() < 1e-5, "{lp:?}");
        assert!((lp[1] - 0.5f64.ln()).abs() < 1e-5, "{lp:?}");
        assert!(ent[0].abs() < 1e-5, "{ent:?}");
        assert!((ent[1] - 2f64.ln()).abs() < 1e-5, "{ent:?}");
        // Gradients through fully masked rows stay finite.
        type A = Autodiff<B>;
        let x = Tensor::<A, 2>::from_data(TensorData::new(vec![0.1, 0.2, 0.3], [1, 3]), &dev)
            .require_grad();
        let valid = Tensor::<A, 2, Bool>::from_data(
            TensorData::new(vec![false, false, true], [1, 3]),
            &dev,
        );
        let m = mask_logits(x.clone(), valid);
        let g = CategoricalHead::entropy(m).sum().backward();
        let gx: Vec<f32> = x.grad(&g).unwrap().into_data().to_vec().unwrap();
        assert!(gx.iter().all(|g| g.is_finite()), "{gx:?}");
    }

    #[test]
    fn gaussian_matches_closed_forms() {
        let dev = Default::default();
        let mut rng = Rng::seed_from_u64(0);
        let head = DiagGaussianHead::<B>::new(3, 2, 1.0, -0.5, &mut rng, &dev);
        let h = Tensor::<B, 2>::from_data(TensorData::new(vec![0.2, -0.1, 0.4], [1, 3]), &dev);
        let d = head.forward(h);
        let mean = v(d.mean.clone());
        let noise = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0, -2.0], [1, 2]), &dev);
        let a = d.sample(noise);
        let av = v(a.clone());
        let s = (-0.5f64).exp();
        assert!((av[0] - (mean[0] + s)).abs() < 1e-5);
        assert!((av[1] - (mean[1] - 2.0 * s)).abs() < 1e-5);
        // log N(a; mean, s) summed: z = noise.
        let want: f64 = [1.0f64, -2.0]
            .iter()
            .map(|z| -0.5 * z * z - (-0.5) - 0.5 * LN_2PI)
            .sum();
        assert!((v(d.log_prob(a))[0] - want).abs() < 1e-5);
        let ent_want = 2.0 * (0.5 + 0.5 * LN_2PI - 0.5);
        assert!((v(d.entropy())[0] - ent_want).abs() < 1e-5);
    }
}

//! # quantrl-optim
//!
//! Optimizers for quantrl on Burn, knowing nothing of reinforcement learning: Burn's AdamW
//! configured as PPO implementations use it ([`AdamWSettings`]), [parameter
//! groups](GroupedOptimizer) with their own learning-rate multipliers, and global
//! gradient-norm clipping ([`clip_grad_norm`]), and UPGD / AdaUPGD ([`Upgd`], Elsayed & Mahmood
//! 2024) with a two-pass module-level step for the global maximum utility, pluggable noise
//! ([`NoiseSource`]), parameter groups and utility statistics. [`HostAdamW`] steps AdamW on
//! host buffers with Burn's arithmetic, bit for bit, taking the state out of Burn's optimizer
//! and putting it back, for loops whose gradients are computed outside Burn.
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::module::Module;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::{GradientsParams, Optimizer};
//! use burn::tensor::Tensor;
//! use quantrl_optim::{AdamWSettings, GroupedOptimizer, ParamGroup, clip_grad_norm};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let mut model: Linear<B> = LinearConfig::new(3, 1).init(&device);
//! let group = ParamGroup { name: "bias".into(), lr_multiplier: 2.0, params: vec![model.bias.as_ref().unwrap().id] };
//! let mut optim = GroupedOptimizer::new(AdamWSettings::default().init::<B, Linear<B>>(), vec![group]);
//! let loss = model.forward(Tensor::<B, 2>::ones([4, 3], &device)).sum();
//! let mut grads = GradientsParams::from_grads(loss.backward(), &model);
//! let norm = clip_grad_norm(&model, &mut grads, 0.5);
//! assert!(norm > 0.0);
//! model = optim.step(1e-3, model, grads);
//! ```
//!
//! AdaUPGD (the paper's PPO optimizer) with device-side noise, and its utility statistics:
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::{GradientsParams, Optimizer};
//! use burn::tensor::Tensor;
//! use quantrl_optim::{BackendNoise, UpgdSettings};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let mut model: Linear<B> = LinearConfig::new(3, 2).init(&device);
//! let settings = UpgdSettings::adaupgd();
//! settings.validate().unwrap();
//! let mut optim = settings.init::<B, _>(BackendNoise);
//! let loss = model.forward(Tensor::<B, 2>::ones([4, 3], &device)).sum();
//! let grads = GradientsParams::from_grads(loss.backward(), &model);
//! model = optim.step(3e-4, model, grads);
//! let stats = optim.utility_stats().unwrap();
//! assert_eq!(stats.n_elements, 3 * 2 + 2);
//! assert!((0.0..=1.0).contains(&stats.fraction_protected));
//! ```

mod clip;
mod groups;
pub mod host_adamw;
pub mod noise;
pub mod upgd;

pub use clip::{clip_factor, clip_grad_norm, grad_norm};
pub use groups::{GroupedOptimizer, ParamGroup};
pub use host_adamw::{GroupedAdamW, HostAdamState, HostAdamW};
pub use noise::{BackendNoise, NoiseSource, ReplayNoise, RngNoise, Ziggurat};
pub use upgd::{
    AdamMoments, Perturbation, Upgd, UpgdParamState, UpgdSettings, UtilityOrder, UtilityScope,
    UtilityStats,
};

use burn::module::AutodiffModule;
use burn::optim::{AdamW, AdamWConfig, adaptor::OptimizerAdaptor};
use burn::tensor::backend::AutodiffBackend;
use quantrl_core::{ConfigError, check_non_negative, check_open, check_positive};
use serde::{Deserialize, Serialize};

/// AdamW hyperparameters, serializable for configs. The defaults are those of SB3's PPO
/// (PyTorch Adam with `eps = 1e-5`, no weight decay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWSettings {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (0 makes this Adam).
    pub weight_decay: f64,
}

impl Default for AdamWSettings {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
            weight_decay: 0.0,
        }
    }
}

impl AdamWSettings {
    /// Check the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_open("optimizer.beta1", self.beta1, -1e-300, 1.0)?;
        check_open("optimizer.beta2", self.beta2, -1e-300, 1.0)?;
        check_positive("optimizer.eps", self.eps)?;
        check_non_negative("optimizer.weight_decay", self.weight_decay)
    }

    /// Burn's AdamW with these settings.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> OptimizerAdaptor<AdamW, M, B> {
        AdamWConfig::new()
            .with_beta_1(self.beta1 as f32)
            .with_beta_2(self.beta2 as f32)
            .with_epsilon(self.eps as f32)
            .with_weight_decay(self.weight_decay as f32)
            .init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, Optimizer};
    use burn::tensor::{Tensor, TensorData};

    type B = Autodiff<NdArray<f32>>;

    fn model() -> Linear<B> {
        let d = Default::default();
        let mut m: Linear<B> = LinearConfig::new(2, 1).init(&d);
        m.weight = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.5f32, -0.25], [2, 1]),
            &d,
        ));
        m.bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.1f32], [1]),
            &d,
        )));
        m
    }

    fn grads_of(m: &Linear<B>) -> GradientsParams {
        let d = Default::default();
        // loss = sum(x W + b) with x = [[3, 4]]: dW = [3, 4], db = 1, global norm = sqrt(26).
        let x = Tensor::<B, 2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &d);
        GradientsParams::from_grads(m.forward(x).sum().backward(), m)
    }

    fn vals(t: Tensor<<B as AutodiffBackend>::InnerBackend, 2>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    #[test]
    fn clip_grad_norm_scales_to_max_norm_globally() {
        let m = model();
        let mut g = grads_of(&m);
        let norm = clip_grad_norm(&m, &mut g, 1.0);
        assert!((norm - 26f64.sqrt()).abs() < 1e-5);
        let after = grad_norm::<B, _>(&m, &g);
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        let w = vals(
            g.get::<<B as AutodiffBackend>::InnerBackend, 2>(m.weight.id)
                .unwrap(),
        );
        let s = 1.0 / (26f32.sqrt() + 1e-6);
        assert!((w[0] - 3.0 * s).abs() < 1e-6 && (w[1] - 4.0 * s).abs() < 1e-6);
        // Under the limit nothing changes.
        let mut g2 = grads_of(&m);
        clip_grad_norm(&m, &mut g2, 100.0);
        assert_eq!(
            vals(
                g2.get::<<B as AutodiffBackend>::InnerBackend, 2>(m.weight.id)
                    .unwrap()
            ),
            vec![3.0, 4.0]
        );
    }

    #[test]
    fn groups_scale_the_learning_rate_of_their_params_only() {
        let plain_model = model();
        let grouped_model = model();
        let bias_id = grouped_model.bias.as_ref().unwrap().id;
        let mut plain = AdamWSettings::default().init::<B, Linear<B>>();
        let mut grouped = GroupedOptimizer::new(
            AdamWSettings::default().init::<B, Linear<B>>(),
            vec![ParamGroup {
                name: "bias".into(),
                lr_multiplier: 2.0,
                params: vec![bias_id],
            }],
        );
        let gp = grads_of(&plain_model);
        let gg = grads_of(&grouped_model);
        let a = plain.step(1e-2, plain_model, gp);
        let b = grouped.step(1e-2, grouped_model, gg);
        let bias = |m: &Linear<B>| {
            m.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .to_vec::<f32>()
                .unwrap()[0]
        };
        let w = |m: &Linear<B>| m.weight.val().into_data().to_vec::<f32>().unwrap();
        let (da, db) = (bias(&a) - 0.1, bias(&b) - 0.1);
        assert!(
            da < 0.0 && (db / da - 2.0).abs() < 1e-3,
            "bias moved {da} vs {db}"
        );
        assert_eq!(w(&a), w(&b));
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let s = AdamWSettings {
            eps: -1.0,
            ..Default::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("optimizer.eps")
        );
    }
}

//! Utility-based perturbed gradient descent: UPGD and AdaUPGD (Elsayed & Mahmood, "Addressing
//! Loss of Plasticity and Catastrophic Forgetting in Continual Learning", ICLR 2024), matching
//! the reference code (`mohmdelsayed/upgd`) number for number (`upgd.json`).
//!
//! # The update
//!
//! Per element, with `p` the parameter before the update, `g` its gradient, `t` the parameter's
//! step count (from 1) and `n ~ N(0, 1)` from a [`NoiseSource`]:
//!
//! ```text
//! u      <- β_u u + (1 - β_u) ũ,        ũ = -g p                      (first order)
//!                                       ũ = -g p + ½ g² p²            (UtilityOrder::SquaredGradient)
//! û      =  u / (1 - β_u^t)
//! s      =  sigmoid(û / max_all u)                         (UtilityScope::Global)
//!        =  sigmoid(û / max(‖û_row‖₂, 1e-12))              (UtilityScope::Local, last axis)
//! d      =  (g + σ n)(1 - s)                               (Perturbation::Protected)
//!        =  g + σ n (1 - s)                                (Perturbation::NonProtected)
//!        =  (m̂ / (√v̂ + ε) + σ n)(1 - s)                    (adaptive: AdaUPGD, Adam moments)
//! p      <- p (1 - lr λ) - c · lr · d                      (c = step_size_factor)
//! ```
//!
//! The reference's README class and its `AdaptiveUPGD` (the paper's PPO experiments) step with
//! `2 lr` (`step_size_factor = 2`); the `FirstOrder*` classes with `lr`.
//!
//! # Two passes for the global maximum
//!
//! The global variants divide by the maximum utility over **all** elements of **all**
//! parameters, after every trace has been updated. A Burn `SimpleOptimizer` sees one tensor at
//! a time, so [`Upgd`] is an [`Optimizer`] of its own whose [`step`](Optimizer::step) is
//! explicitly two-pass at the module level:
//!
//! 1. a visit of the module updates the utility trace of every parameter that has a gradient
//!    and takes each trace's maximum; the maxima are reduced to the global maximum, read from
//!    the device once per step (one number, as `clip_grad_norm` does);
//! 2. a map of the module updates every parameter with that maximum: the scaling is then one
//!    scalar multiplication per parameter, `û / max = u · (1 / ((1 - β_u^t) max))`.
//!
//! **Guard.** The maximum is clamped below at `1e-30` (representable in float32). When no
//! weight has a positive utility (maximum `<= 0`), the reference would divide by zero (NaN) or by
//! a negative number (inverting the protection); here every weight with a negative utility gets
//! `û / 1e-30 → -∞`, `s → 0`: nothing is protected, which is what a non-positive utility means.
//! Above `1e-30` the result is the reference's exactly.
//!
//! # Second-order utility
//!
//! Burn has no second-order autodiff, and the paper's second-order utility needs the diagonal
//! of the Hessian (the reference uses HesScale). [`UtilityOrder::SquaredGradient`] replaces
//! `H_ii` by `g_i²`, the squared minibatch gradient (the one-sample empirical-Fisher /
//! Gauss-Newton diagonal), giving `ũ = -g p + ½ g² p²`. This is an approximation (it is never
//! negative where the true curvature may be) and is not checked against the reference.
//!
//! # Parameter groups
//!
//! [`Upgd::with_groups`] gives parameters learning-rate multipliers (weight decay uses the
//! group's rate too, as in PyTorch). Do not wrap `Upgd` in
//! [`GroupedOptimizer`](crate::GroupedOptimizer): it steps each group separately, and the
//! global maximum would then be taken per group.

use std::collections::HashMap;

use hashbrown::HashMap as RecordMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::record::Record;
use burn::tensor::{ElementConversion, Tensor, backend::AutodiffBackend, backend::Backend};
use quantrl_core::{ConfigError, check_closed, check_non_negative, check_positive};
use serde::{Deserialize, Serialize};

use crate::ParamGroup;
use crate::noise::NoiseSource;

/// Lower clamp of the global maximum utility (see the [module docs](self)).
pub const MIN_GLOBAL_MAX_UTILITY: f64 = 1e-30;

/// Over which elements the utility is normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UtilityScope {
    /// Divide by the maximum utility over all parameters (a module-level reduction).
    Global,
    /// L2-normalize along the last axis of each parameter tensor, as the reference's
    /// `F.normalize(dim=-1)`: per row of a PyTorch-layout weight `[out, in]`; for Burn's
    /// `Linear` (`[in, out]`) that is per input unit.
    Local,
}

/// What the utility gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Perturbation {
    /// Gradient and noise are both scaled by `1 - s` ("utility controls gradient").
    Protected,
    /// Only the noise is scaled by `1 - s` (the reference's `Nonprotecting` classes).
    NonProtected,
}

/// Which instantaneous utility is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UtilityOrder {
    /// `-g p` (the reference's first-order utility).
    FirstOrder,
    /// `-g p + ½ g² p²`: second order with the Hessian diagonal approximated by `g²` (see the
    /// [module docs](self)).
    SquaredGradient,
}

/// Adam moments of AdaUPGD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamMoments {
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Denominator epsilon, `> 0`.
    pub eps: f64,
}

impl Default for AdamMoments {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
        }
    }
}

/// UPGD hyperparameters (the learning rate is given to each step). Serializable for configs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgdSettings {
    /// Decoupled weight decay `λ >= 0`: `p <- p (1 - lr λ)`.
    pub weight_decay: f64,
    /// Decay `β_u` of the utility trace, in `[0, 1)`.
    pub beta_utility: f64,
    /// Noise scale `σ >= 0` (0: no noise is drawn).
    pub sigma: f64,
    /// Global or local utility normalization.
    pub scope: UtilityScope,
    /// What the utility gates.
    pub perturbation: Perturbation,
    /// First-order or approximate second-order utility.
    pub utility_order: UtilityOrder,
    /// Adam moments (AdaUPGD) or none (plain UPGD).
    pub adaptive: Option<AdamMoments>,
    /// Multiplier `c > 0` of the step `c · lr · d` (not of the weight decay).
    pub step_size_factor: f64,
}

impl Default for UpgdSettings {
    /// [`UpgdSettings::adaupgd`], the variant the paper uses for PPO.
    fn default() -> Self {
        Self::adaupgd()
    }
}

impl UpgdSettings {
    /// The reference's `FirstOrderGlobalUPGD` with the README's hyperparameters
    /// (`λ = 1e-3`, `β_u = 0.999`, `σ = 1e-3`), step `lr`.
    pub fn first_order_global() -> Self {
        Self {
            weight_decay: 1e-3,
            beta_utility: 0.999,
            sigma: 1e-3,
            scope: UtilityScope::Global,
            perturbation: Perturbation::Protected,
            utility_order: UtilityOrder::FirstOrder,
            adaptive: None,
            step_size_factor: 1.0,
        }
    }

    /// The reference's `FirstOrderLocalUPGD` with the README's hyperparameters.
    pub fn first_order_local() -> Self {
        Self {
            scope: UtilityScope::Local,
            ..Self::first_order_global()
        }
    }

    /// The reference's README `UPGD` class: global, protected, step `2 lr`.
    pub fn readme() -> Self {
        Self {
            step_size_factor: 2.0,
            ..Self::first_order_global()
        }
    }

    /// AdaUPGD, the reference's `AdaptiveUPGD` (`core/run/rl/adaupgd.py`) with its defaults:
    /// global, protected, Adam moments (`0.9, 0.999, 1e-5`), step `2 lr`.
    pub fn adaupgd() -> Self {
        Self {
            adaptive: Some(AdamMoments::default()),
            step_size_factor: 2.0,
            ..Self::first_order_global()
        }
    }

    /// Check the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("upgd.weight_decay", self.weight_decay)?;
        check_unit("upgd.beta_utility", self.beta_utility)?;
        check_non_negative("upgd.sigma", self.sigma)?;
        check_positive("upgd.step_size_factor", self.step_size_factor)?;
        if let Some(m) = &self.adaptive {
            check_unit("upgd.beta1", m.beta1)?;
            check_unit("upgd.beta2", m.beta2)?;
            check_positive("upgd.eps", m.eps)?;
        }
        Ok(())
    }

    /// The optimizer with these settings and a noise source (validate first).
    pub fn init<B: AutodiffBackend, N: NoiseSource<B::InnerBackend>>(
        &self,
        noise: N,
    ) -> Upgd<B, N> {
        Upgd {
            settings: *self,
            noise,
            states: HashMap::new(),
            lr_multipliers: HashMap::new(),
            last_global_max: None,
        }
    }
}

/// `[0, 1)`.
fn check_unit(field: &str, value: f64) -> Result<(), ConfigError> {
    check_closed(field, value, 0.0, 1.0)?;
    if value == 1.0 {
        return Err(ConfigError::out_of_range(field, value, "in [0, 1)"));
    }
    Ok(())
}

/// The optimizer state of one parameter, flattened (row-major). A Burn [`Record`], so
/// checkpoints save it; [`Upgd`]'s record is a map from parameter id to this.
#[derive(Record, Clone, Debug)]
pub struct UpgdParamState<B: Backend> {
    /// Utility trace `u` (not bias-corrected).
    pub utility: Tensor<B, 1>,
    /// Adam first moment (AdaUPGD only).
    pub first_moment: Option<Tensor<B, 1>>,
    /// Adam second moment (AdaUPGD only).
    pub second_moment: Option<Tensor<B, 1>>,
    /// Steps taken by this parameter.
    pub step: usize,
    /// Length of the parameter's last axis (for local normalization in statistics).
    pub last_dim: usize,
}

/// The state on the autodiff backend, for a record.
fn to_autodiff<B: AutodiffBackend>(s: &UpgdParamState<B::InnerBackend>) -> UpgdParamState<B> {
    UpgdParamState {
        utility: Tensor::from_inner(s.utility.clone()),
        first_moment: s.first_moment.clone().map(Tensor::from_inner),
        second_moment: s.second_moment.clone().map(Tensor::from_inner),
        step: s.step,
        last_dim: s.last_dim,
    }
}

/// The state from a record, on the inner backend.
fn from_autodiff<B: AutodiffBackend>(s: UpgdParamState<B>) -> UpgdParamState<B::InnerBackend> {
    UpgdParamState {
        utility: s.utility.inner(),
        first_moment: s.first_moment.map(|t| t.inner()),
        second_moment: s.second_moment.map(|t| t.inner()),
        step: s.step,
        last_dim: s.last_dim,
    }
}

/// UPGD / AdaUPGD as a Burn [`Optimizer`] with a two-pass module-level step (see the
/// [module docs](self)). Build it with [`UpgdSettings::init`].
#[derive(Clone)]
pub struct Upgd<B: AutodiffBackend, N> {
    settings: UpgdSettings,
    noise: N,
    states: HashMap<ParamId, UpgdParamState<B::InnerBackend>>,
    lr_multipliers: HashMap<ParamId, f64>,
    last_global_max: Option<f64>,
}

impl<B: AutodiffBackend, N> Upgd<B, N> {
    /// Give the parameters of `groups` their learning-rate multipliers (a parameter in two
    /// groups takes the first); others use the base rate.
    pub fn with_groups(mut self, groups: &[ParamGroup]) -> Self {
        for g in groups {
            for id in &g.params {
                self.lr_multipliers.entry(*id).or_insert(g.lr_multiplier);
            }
        }
        self
    }

    /// The settings.
    pub fn settings(&self) -> &UpgdSettings {
        &self.settings
    }

    /// The noise source.
    pub fn noise(&self) -> &N {
        &self.noise
    }

    /// The state of one parameter, if it has stepped.
    pub fn param_state(&self, id: ParamId) -> Option<&UpgdParamState<B::InnerBackend>> {
        self.states.get(&id)
    }

    /// The global maximum utility of the last step, before the guard's clamp (global scope
    /// only).
    pub fn last_global_max(&self) -> Option<f64> {
        self.last_global_max
    }

    /// Utility statistics over every element of every parameter, for logging. Reads all
    /// utility traces from the device: call it at the logging cadence, not every step.
    /// `None` before the first step.
    pub fn utility_stats(&self) -> Option<UtilityStats> {
        if self.states.is_empty() {
            return None;
        }
        let global_max = match self.settings.scope {
            UtilityScope::Global => Some(self.last_global_max()?.max(MIN_GLOBAL_MAX_UTILITY)),
            UtilityScope::Local => None,
        };
        let beta = self.settings.beta_utility;
        let mut utilities = Vec::new();
        let mut scaled = Vec::new();
        for state in self.states.values() {
            let bc = 1.0 - beta.powi(state.step as i32);
            let u: Vec<f64> = state
                .utility
                .clone()
                .into_data()
                .convert::<f64>()
                .to_vec()
                .expect("utility as f64");
            let u_hat: Vec<f64> = u.iter().map(|x| x / bc).collect();
            match global_max {
                Some(m) => scaled.extend(u_hat.iter().map(|x| x / m)),
                None => {
                    for row in u_hat.chunks(state.last_dim.max(1)) {
                        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                        scaled.extend(row.iter().map(|x| x / norm));
                    }
                }
            }
            utilities.extend(u_hat);
        }
        let mut s: Vec<f64> = scaled.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let quantile = |q: f64| {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
        };
        Some(UtilityStats {
            n_elements: n,
            mean_utility: utilities.iter().sum::<f64>() / n as f64,
            max_utility: utilities.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            global_max,
            scaled_quantiles: SCALED_QUANTILE_LEVELS.map(quantile),
            fraction_protected: s.iter().filter(|&&x| x > 0.5).count() as f64 / n as f64,
        })
    }
}

/// Levels of [`UtilityStats::scaled_quantiles`].
pub const SCALED_QUANTILE_LEVELS: [f64; 5] = [0.1, 0.25, 0.5, 0.75, 0.9];

/// A summary of the utilities after a step, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UtilityStats {
    /// Number of parameter elements.
    pub n_elements: usize,
    /// Mean bias-corrected utility `û`.
    pub mean_utility: f64,
    /// Largest bias-corrected utility `û`.
    pub max_utility: f64,
    /// The (clamped) global maximum the last step divided by; `None` for local scope.
    pub global_max: Option<f64>,
    /// Quantiles of the scaled utility `s` at [`SCALED_QUANTILE_LEVELS`] (linear
    /// interpolation).
    pub scaled_quantiles: [f64; 5],
    /// Fraction of elements with `s > 0.5`, whose gradient and noise (protected variants)
    /// are damped by more than half: the weights UPGD protects.
    pub fraction_protected: f64,
}

/// A parameter's gradient and updated utility trace between the two passes.
struct Pending<B: Backend> {
    grad: Tensor<B, 1>,
    utility: Tensor<B, 1>,
}

/// Pass 1: update every utility trace and reduce the global maximum.
struct UtilityPass<'a, B: AutodiffBackend> {
    settings: &'a UpgdSettings,
    grads: &'a GradientsParams,
    states: &'a HashMap<ParamId, UpgdParamState<B::InnerBackend>>,
    pending: HashMap<ParamId, Pending<B::InnerBackend>>,
    /// Each parameter's maximum utility, `[1]` each (global scope).
    maxima: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for UtilityPass<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let n = grad.shape().num_elements();
        let grad = grad.reshape([n]);
        let value = param.val().inner().reshape([n]);
        let beta = self.settings.beta_utility;
        let gp = grad.clone() * value;
        // (1 - β) ũ, with ũ = -g p or -g p + ½ (g p)² = g p (½ g p - 1).
        let fresh = match self.settings.utility_order {
            UtilityOrder::FirstOrder => gp.mul_scalar(-(1.0 - beta)),
            UtilityOrder::SquaredGradient => {
                (gp.clone().mul_scalar(0.5).sub_scalar(1.0) * gp).mul_scalar(1.0 - beta)
            }
        };
        let utility = match self.states.get(&param.id) {
            Some(s) if beta != 0.0 => s.utility.clone().mul_scalar(beta) + fresh,
            _ => fresh,
        };
        if self.settings.scope == UtilityScope::Global {
            self.maxima.push(utility.clone().max());
        }
        self.pending.insert(param.id, Pending { grad, utility });
    }
}

/// Pass 2: update every parameter that has a pending utility.
struct UpdatePass<'a, B: AutodiffBackend, N> {
    settings: &'a UpgdSettings,
    noise: &'a mut N,
    lr: f64,
    lr_multipliers: &'a HashMap<ParamId, f64>,
    states: &'a mut HashMap<ParamId, UpgdParamState<B::InnerBackend>>,
    pending: HashMap<ParamId, Pending<B::InnerBackend>>,
    /// `max(global max, 1e-30)` (global scope).
    global_max: Option<f64>,
}

impl<B: AutodiffBackend, N: NoiseSource<B::InnerBackend>> ModuleMapper<B> for UpdatePass<'_, B, N> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(Pending { grad, utility }) = self.pending.remove(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let value = tensor.inner();
        let dims = value.dims();
        let n = grad.dims()[0];
        let last_dim = dims.last().copied().unwrap_or(1).max(1);
        let device = grad.device();
        let st = &self.settings;
        let old = self.states.remove(&id);
        let step = old.as_ref().map_or(0, |s| s.step) + 1;
        let bias_correction = 1.0 - st.beta_utility.powi(step as i32);

        // 1 - s = 1 - sigmoid(x) = 1 / (1 + exp(x)): one exp, no sigmoid kernel.
        let scaled = match self.global_max {
            Some(max) => utility.clone().mul_scalar(1.0 / (bias_correction * max)),
            None => {
                let rows = utility
                    .clone()
                    .div_scalar(bias_correction)
                    .reshape([n / last_dim, last_dim]);
                let norm = rows.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
                (rows / norm).reshape([n])
            }
        };
        let one_minus_s = scaled.exp().add_scalar(1.0).recip();

        // Plain UPGD: d = (g + σ n)(1 - s) (or g + σ n (1 - s)), step c lr d.
        // AdaUPGD: m̂ / (√v̂ + ε) = k q with q = m / (√v + ε √bc2) and k = √bc2 / bc1, so
        // d = k (q + (σ / k) n)(1 - s): the bias corrections fold into the step's scalar and
        // the noise's scale, two tensor operations fewer per parameter.
        let (base, noise_std, scale, first_moment, second_moment) = match &st.adaptive {
            None => (grad, st.sigma, 1.0, None, None),
            Some(a) => {
                let (m_old, v_old) = old
                    .map(|s| (s.first_moment, s.second_moment))
                    .unwrap_or((None, None));
                let m = match m_old {
                    Some(m) => m.mul_scalar(a.beta1) + grad.clone().mul_scalar(1.0 - a.beta1),
                    None => grad.clone().mul_scalar(1.0 - a.beta1),
                };
                let g2 = grad.square().mul_scalar(1.0 - a.beta2);
                let v = match v_old {
                    Some(v) => v.mul_scalar(a.beta2) + g2,
                    None => g2,
                };
                let bc1 = 1.0 - a.beta1.powi(step as i32);
                let sqrt_bc2 = (1.0 - a.beta2.powi(step as i32)).sqrt();
                let q = m.clone() / v.clone().sqrt().add_scalar(a.eps * sqrt_bc2);
                let k = sqrt_bc2 / bc1;
                (q, st.sigma / k, k, Some(m), Some(v))
            }
        };
        let noise = (st.sigma > 0.0).then(|| self.noise.normal(id, &dims, noise_std, &device));
        let direction = match (st.perturbation, noise) {
            (Perturbation::Protected, Some(noise)) => (base + noise) * one_minus_s,
            (Perturbation::Protected, None) => base * one_minus_s,
            (Perturbation::NonProtected, Some(noise)) => base + noise * one_minus_s,
            (Perturbation::NonProtected, None) => base,
        };
        let lr = self.lr * self.lr_multipliers.get(&id).copied().unwrap_or(1.0);
        let decayed = if st.weight_decay != 0.0 {
            value.reshape([n]).mul_scalar(1.0 - lr * st.weight_decay)
        } else {
            value.reshape([n])
        };
        let updated = decayed - direction.mul_scalar(st.step_size_factor * lr * scale);

        self.states.insert(
            id,
            UpgdParamState {
                utility,
                first_moment,
                second_moment,
                step,
                last_dim,
            },
        );
        let mut tensor = Tensor::from_inner(updated.reshape(dims));
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Moves multi-device gradients into one [`GradientsParams`] on each parameter's device.
struct GatherMulti<'a> {
    source: &'a mut MultiGradientsParams,
    target: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GatherMulti<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some((g, _)) = self.source.remove::<B::InnerBackend, D>(param.id) {
            let device = param.val().device();
            self.target.register(param.id, g.to_device(&device));
        }
    }
}

impl<B, M, N> Optimizer<M, B> for Upgd<B, N>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    N: NoiseSource<B::InnerBackend>,
{
    type Record = RecordMap<ParamId, UpgdParamState<B>>;

    /// The two-pass step (see the [module docs](self)).
    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        // Pass 1: every utility trace, and the global maximum read once from the device.
        let mut pass = UtilityPass::<B> {
            settings: &self.settings,
            grads: &grads,
            states: &self.states,
            pending: HashMap::new(),
            maxima: Vec::new(),
        };
        module.visit(&mut pass);
        let UtilityPass {
            pending, maxima, ..
        } = pass;
        let global_max = (!maxima.is_empty()).then(|| {
            let max: f64 = Tensor::cat(maxima, 0).max().into_scalar().elem();
            self.last_global_max = Some(max);
            max.max(MIN_GLOBAL_MAX_UTILITY)
        });
        // Pass 2: every parameter, with that maximum.
        module.map(&mut UpdatePass::<B, N> {
            settings: &self.settings,
            noise: &mut self.noise,
            lr,
            lr_multipliers: &self.lr_multipliers,
            states: &mut self.states,
            pending,
            global_max,
        })
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, mut grads: MultiGradientsParams) -> M {
        let mut gather = GatherMulti {
            source: &mut grads,
            target: GradientsParams::new(),
        };
        module.visit(&mut gather);
        let single = gather.target;
        Optimizer::<M, B>::step(self, lr, module, single)
    }

    fn to_record(&self) -> Self::Record {
        self.states
            .iter()
            .map(|(id, s)| (*id, to_autodiff::<B>(s)))
            .collect()
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.states = record
            .into_iter()
            .map(|(id, s)| (id, from_autodiff::<B>(s)))
            .collect();
        self
    }
}

//! Invariant risk minimization (IRMv1, Arjovsky et al. 2019) across environments given by
//! regime labels, and sparse IRM's feature selection by iterative hard thresholding.
//!
//! # IRMv1 without double backpropagation
//!
//! IRMv1 penalizes, per environment `e`, the squared gradient of the environment's risk with
//! respect to a dummy scale `w` on the outputs, at `w = 1`: `penalty_e = (dR_e/dw)²`. PyTorch
//! computes it by double backpropagation; Burn has no second-order autodiff. For the two risks
//! of the reference code the dummy gradient has a closed form that is itself an ordinary
//! (first-order differentiable) tensor expression, so the penalty and its gradient with respect
//! to the network are exact:
//!
//! * [`IrmLoss::Bce`] (`R = mean BCE-with-logits(w z, y)`): `dR/dw = mean(z (σ(z) - y))`;
//! * [`IrmLoss::Mse`] (`R = mean (w z - y)²`, not halved): `dR/dw = mean(2 z (z - y))`;
//! * the vector dummy of the synthetic experiment ([`irm_penalty_linear`]):
//!   `R = mean(Φ w - y)²` with `w = 1_d`, `dR/dw = (2/n) Φᵀ (Φ 1 - y)`, penalty = mean over the
//!   `d` components of its square.
//!
//! Environments are the distinct values of an integer label per sample (e.g. the volatility
//! regime of `quantrl-data`), taken in ascending order. Per-environment means are one matmul
//! with a `[n_envs, n]` averaging matrix built on the host.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use quantrl_core::{ConfigError, check_non_negative};
use serde::{Deserialize, Serialize};

/// The per-sample risk of [`irm_penalty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IrmLoss {
    /// Binary cross-entropy with logits; targets in `{0, 1}`.
    Bce,
    /// Squared error, not halved.
    Mse,
}

/// IRMv1 settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrmConfig {
    /// The risk.
    pub loss: IrmLoss,
    /// Weight `λ >= 0` of the mean penalty in `objective = nll_mean + λ penalty_mean`.
    pub penalty_weight: f64,
}

impl IrmConfig {
    /// Check `penalty_weight >= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("irm.penalty_weight", self.penalty_weight)
    }
}

/// Everything [`irm_penalty`] computed, by name.
#[derive(Debug, Clone)]
pub struct IrmTerms<B: Backend> {
    /// The environment labels in the order of the per-environment tensors.
    pub env_labels: Vec<usize>,
    /// Risk of each environment, `[n_envs]`.
    pub nll_per_env: Tensor<B, 1>,
    /// Dummy-scale gradient `dR_e/dw` of each environment, `[n_envs]`.
    pub grad_w_per_env: Tensor<B, 1>,
    /// `(dR_e/dw)²` of each environment, `[n_envs]`.
    pub penalty_per_env: Tensor<B, 1>,
    /// Mean risk over environments, `[1]`.
    pub nll_mean: Tensor<B, 1>,
    /// Mean penalty over environments (what the reference's colored-MNIST code uses), `[1]`.
    pub penalty_mean: Tensor<B, 1>,
    /// Sum of the penalties over environments, `[1]`.
    pub penalty_sum: Tensor<B, 1>,
    /// `nll_mean + penalty_weight · penalty_mean`, the tensor to differentiate, `[1]`.
    pub objective: Tensor<B, 1>,
}

/// The distinct labels (ascending) and the `[n_envs, n]` matrix whose row `e` averages the
/// samples of environment `e`.
fn env_averaging<B: Backend>(env: &[usize], device: &B::Device) -> (Vec<usize>, Tensor<B, 2>) {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &e in env {
        *counts.entry(e).or_default() += 1;
    }
    let labels: Vec<usize> = counts.keys().copied().collect();
    let row: BTreeMap<usize, usize> = labels.iter().enumerate().map(|(i, &l)| (l, i)).collect();
    let n = env.len();
    let mut m = vec![0.0f64; labels.len() * n];
    for (j, e) in env.iter().enumerate() {
        m[row[e] * n + j] = 1.0 / counts[e] as f64;
    }
    let t = Tensor::from_data(
        TensorData::new(m, [labels.len(), n]).convert::<B::FloatElem>(),
        device,
    );
    (labels, t)
}

/// Per-environment means of a per-sample quantity `x` `[n]` → `[n_envs]`.
fn env_means<B: Backend>(avg: &Tensor<B, 2>, x: Tensor<B, 1>) -> Tensor<B, 1> {
    let [e, _] = avg.dims();
    avg.clone().matmul(x.unsqueeze_dim(1)).reshape([e])
}

/// The IRMv1 penalty of outputs `z` (logits or predictions) against `targets` across the
/// environments named by `env` (one label per sample), with the scalar dummy of the
/// reference's colored-MNIST code (see the [module docs](self)).
///
/// Panics when the lengths differ or the batch is empty.
///
/// # Shapes
/// - `outputs`, `targets`: `[n]`; `env`: `n` labels
pub fn irm_penalty<B: Backend>(
    outputs: Tensor<B, 1>,
    targets: Tensor<B, 1>,
    env: &[usize],
    config: &IrmConfig,
) -> IrmTerms<B> {
    let [n] = outputs.dims();
    assert!(n > 0, "irm_penalty: empty batch");
    assert_eq!(
        targets.dims(),
        [n],
        "irm_penalty: targets and outputs differ"
    );
    assert_eq!(
        env.len(),
        n,
        "irm_penalty: {} labels for {n} samples",
        env.len()
    );
    let z = outputs;
    let (risk, dummy_grad) = match config.loss {
        IrmLoss::Bce => {
            // BCE with logits, stable: max(z, 0) - z y + log(1 + exp(-|z|)).
            let risk = z.clone().clamp_min(0.0) - z.clone() * targets.clone()
                + z.clone().abs().neg().exp().log1p();
            // σ(z) through one exp: Burn's own `sigmoid` is computed in float32 precision on
            // some backends (and is slower on the CPU).
            let sigmoid = z.clone().neg().exp().add_scalar(1.0).recip();
            (risk, z * (sigmoid - targets))
        }
        IrmLoss::Mse => {
            let err = z.clone() - targets;
            (err.clone().square(), z * err.mul_scalar(2.0))
        }
    };
    irm_penalty_from_parts(risk, dummy_grad, env, config.penalty_weight)
}

/// IRMv1 from per-sample parts, for any risk whose derivative in the dummy scale has a closed
/// form: `risk[i]` is sample `i`'s risk and `dummy_grad[i]` its derivative `dR_i/dw` at
/// `w = 1`. Per environment the means are taken, the penalty is the squared mean derivative
/// and `objective = nll_mean + penalty_weight · penalty_mean` ([`irm_penalty`] is this with
/// the BCE or MSE parts).
///
/// Panics when the lengths differ or the batch is empty.
///
/// # Shapes
/// - `risk`, `dummy_grad`: `[n]`; `env`: `n` labels
pub fn irm_penalty_from_parts<B: Backend>(
    risk: Tensor<B, 1>,
    dummy_grad: Tensor<B, 1>,
    env: &[usize],
    penalty_weight: f64,
) -> IrmTerms<B> {
    let [n] = risk.dims();
    assert!(n > 0, "irm_penalty_from_parts: empty batch");
    assert_eq!(
        dummy_grad.dims(),
        [n],
        "irm_penalty_from_parts: lengths differ"
    );
    assert_eq!(
        env.len(),
        n,
        "irm_penalty_from_parts: {} labels for {n} samples",
        env.len()
    );
    let (env_labels, avg) = env_averaging::<B>(env, &risk.device());
    let nll_per_env = env_means(&avg, risk);
    let grad_w_per_env = env_means(&avg, dummy_grad);
    let penalty_per_env = grad_w_per_env.clone().square();
    let nll_mean = nll_per_env.clone().mean();
    let penalty_mean = penalty_per_env.clone().mean();
    let penalty_sum = penalty_per_env.clone().sum();
    let objective = nll_mean.clone() + penalty_mean.clone().mul_scalar(penalty_weight);
    IrmTerms {
        env_labels,
        nll_per_env,
        grad_w_per_env,
        penalty_per_env,
        nll_mean,
        penalty_mean,
        penalty_sum,
        objective,
    }
}

/// What [`irm_penalty_linear`] computed, by name.
#[derive(Debug, Clone)]
pub struct IrmLinearTerms<B: Backend> {
    /// The environment labels in the order of the per-environment tensors.
    pub env_labels: Vec<usize>,
    /// `mean((Φ_e 1 - y_e)²)` of each environment, `[n_envs]`.
    pub error_per_env: Tensor<B, 1>,
    /// `d error_e / d w` at `w = 1`, `[n_envs, d]`.
    pub grad_w_per_env: Tensor<B, 2>,
    /// Mean over the `d` components of `grad_w²`, `[n_envs]`.
    pub penalty_per_env: Tensor<B, 1>,
    /// Sum of the penalties over environments (as the reference's loop), `[1]`.
    pub penalty_sum: Tensor<B, 1>,
}

/// The IRMv1 penalty with the vector dummy of the reference's synthetic experiment: for
/// features `Φ` `[n, d]` (the representation, e.g. `x @ phi`) and targets `[n]`, per
/// environment `error_e = mean((Φ_e 1 - y_e)²)`, `grad_w_e = (2/n_e) Φ_eᵀ (Φ_e 1 - y_e)` and
/// `penalty_e = mean_k grad_w_e[k]²`.
///
/// # Shapes
/// - `features`: `[n, d]`, `targets`: `[n]`, `env`: `n` labels
pub fn irm_penalty_linear<B: Backend>(
    features: Tensor<B, 2>,
    targets: Tensor<B, 1>,
    env: &[usize],
) -> IrmLinearTerms<B> {
    let [n, _] = features.dims();
    assert!(n > 0, "irm_penalty_linear: empty batch");
    assert_eq!(
        targets.dims(),
        [n],
        "irm_penalty_linear: targets and features differ"
    );
    assert_eq!(
        env.len(),
        n,
        "irm_penalty_linear: {} labels for {n} samples",
        env.len()
    );
    let (env_labels, avg) = env_averaging::<B>(env, &features.device());
    let residual = features.clone().sum_dim(1).reshape([n]) - targets;
    let error_per_env = env_means(&avg, residual.clone().square());
    // grad_w[e, k] = mean over env e of 2 features[:, k] residual
    let weighted = features * residual.unsqueeze_dim(1).mul_scalar(2.0);
    let grad_w_per_env = avg.matmul(weighted);
    let penalty_per_env = grad_w_per_env
        .clone()
        .square()
        .mean_dim(1)
        .reshape([env_labels.len()]);
    let penalty_sum = penalty_per_env.clone().sum();
    IrmLinearTerms {
        env_labels,
        error_per_env,
        grad_w_per_env,
        penalty_per_env,
        penalty_sum,
    }
}

/// One selection of input features: which are kept, as indices and as a 0/1 mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSelection {
    /// Kept feature indices, ascending.
    pub selected: Vec<usize>,
    /// `1.0` for a kept feature, `0.0` otherwise, `n_features` long.
    pub mask: Vec<f32>,
}

impl FeatureSelection {
    /// All `n_features` features kept.
    pub fn all(n_features: usize) -> Self {
        Self {
            selected: (0..n_features).collect(),
            mask: vec![1.0; n_features],
        }
    }

    /// Multiply the feature columns of `x` by the mask (dropped features become zero).
    ///
    /// # Shapes
    /// - `x`: `[batch, n_features]` → same
    pub fn apply<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [_, f] = x.dims();
        assert_eq!(
            f,
            self.mask.len(),
            "FeatureSelection::apply: feature count differs"
        );
        let mask = Tensor::<B, 2>::from_data(
            TensorData::new(self.mask.clone(), [1, f]).convert::<B::FloatElem>(),
            &x.device(),
        );
        x * mask
    }
}

/// Keep the `k` features with the largest scores among `candidates` (ties: lower index first).
///
/// Panics when a score is NaN or `k` exceeds the candidates.
pub fn hard_threshold(scores: &[f64], candidates: &[usize], k: usize) -> FeatureSelection {
    assert!(
        k <= candidates.len(),
        "hard_threshold: k = {k} > {} candidates",
        candidates.len()
    );
    let mut order: Vec<usize> = candidates.to_vec();
    for &i in &order {
        assert!(
            !scores[i].is_nan(),
            "hard_threshold: score of feature {i} is NaN"
        );
    }
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut selected = order[..k].to_vec();
    selected.sort_unstable();
    let mut mask = vec![0.0; scores.len()];
    for &i in &selected {
        mask[i] = 1.0;
    }
    FeatureSelection { selected, mask }
}

/// Feature scores from a first linear layer in Burn's layout (`[n_features, hidden]`, `y = x W`):
/// the L2 norm of each feature's outgoing weights.
pub fn first_layer_scores<B: Backend>(weight: Tensor<B, 2>) -> Vec<f64> {
    let [f, _] = weight.dims();
    weight
        .square()
        .sum_dim(1)
        .sqrt()
        .reshape([f])
        .into_data()
        .convert::<f64>()
        .to_vec()
        .expect("scores as f64")
}

/// Sparse IRM by iterative hard thresholding (IHT) of an input-feature mask: train with the
/// current mask, score the kept features, keep the top `k_r`, retrain, repeat, with `k_r`
/// going geometrically from `n_features` to `target_k` over `rounds` rounds. The training loop
/// lives in `quantrl-algos`; this is the bookkeeping, serializable for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IterativeHardThresholding {
    /// Number of input features.
    pub n_features: usize,
    /// Features kept at the end, `1..=n_features`.
    pub target_k: usize,
    /// Number of thresholding rounds, `>= 1`.
    pub rounds: usize,
    /// Rounds done.
    pub round: usize,
    /// The current selection.
    pub selection: FeatureSelection,
}

impl IterativeHardThresholding {
    /// Start with every feature kept.
    pub fn new(n_features: usize, target_k: usize, rounds: usize) -> Result<Self, ConfigError> {
        let s = Self {
            n_features,
            target_k,
            rounds,
            round: 0,
            selection: FeatureSelection::all(n_features),
        };
        s.validate()?;
        Ok(s)
    }

    /// Check `1 <= target_k <= n_features` and `rounds >= 1`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n_features == 0 {
            return Err(ConfigError::out_of_range("iht.n_features", 0, ">= 1"));
        }
        if self.target_k == 0 || self.target_k > self.n_features {
            return Err(ConfigError::out_of_range(
                "iht.target_k",
                self.target_k,
                format!("in [1, n_features = {}]", self.n_features),
            ));
        }
        if self.rounds == 0 {
            return Err(ConfigError::out_of_range("iht.rounds", 0, ">= 1"));
        }
        Ok(())
    }

    /// Features kept after round `r` (1-based): `round(n · (target_k / n)^(r / rounds))`,
    /// never below `target_k`; the last round gives exactly `target_k`.
    pub fn k_after_round(&self, r: usize) -> usize {
        let n = self.n_features as f64;
        let frac = (self.target_k as f64 / n).powf(r.min(self.rounds) as f64 / self.rounds as f64);
        ((n * frac).round() as usize).clamp(self.target_k, self.n_features)
    }

    /// Whether every round is done.
    pub fn finished(&self) -> bool {
        self.round >= self.rounds
    }

    /// One thresholding round from scores of all `n_features` features (only the kept ones
    /// compete). Returns the new selection; after the last round it stays put.
    pub fn next_round(&mut self, scores: &[f64]) -> &FeatureSelection {
        assert_eq!(scores.len(), self.n_features, "IHT: one score per feature");
        if !self.finished() {
            self.round += 1;
            let k = self.k_after_round(self.round);
            self.selection = hard_threshold(scores, &self.selection.selected, k);
        }
        &self.selection
    }
}

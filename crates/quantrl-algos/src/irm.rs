//! Invariant risk minimization across regimes for PPO (IRMv1: Arjovsky et al. 2019), and
//! sparse IRM's feature selection by iterative hard thresholding.
//!
//! # The hook
//!
//! An environment labels the state each of its copies is in with
//! [`VecEnv::regime_label`] (the trading environment
//! reads the labels of its market's rows, e.g. `quantrl-data`'s volatility regimes). PPO
//! records the label of every observation it acts on next to the sample; the labels split
//! each minibatch into IRM's *environments*.
//!
//! # The penalty
//!
//! IRMv1 asks that a dummy scale `w` on the network's output be optimal (`dR_e/dw = 0` at
//! `w = 1`) in every environment `e` at once, and penalizes `mean_e (dR_e/dw)²`. For the
//! policy, the risk of a sample is PPO's unclipped surrogate, `R = -Â · ρ` with
//! `ρ = π_w(a|s) / π_old(a|s)` and `π_w = softmax(w z)` over the (masked) logits `z`; its
//! dummy derivative has the closed form
//!
//! ```text
//! dR/dw |_{w=1} = -Â · ρ · (z_a - Σ_b π(b|s) z_b)
//! ```
//!
//! (masked actions have `π = 0` and drop out), an ordinary first-order tensor expression, so
//! the penalty's gradient is exact although Burn has no double backpropagation. For the
//! critic, the risk is the squared error of the value against the return,
//! [`quantrl_losses::irm::irm_penalty`] with [`IrmLoss::Mse`]. The penalty is added with
//! weight `λ` to PPO's loss for every minibatch that holds **at least two** regimes; with one
//! regime there is nothing to be invariant across, and the penalty is zero (IRMv1's formula
//! would then be a penalty on the temperature of the policy, not an invariance).
//!
//! # Sparse IRM
//!
//! [`sparse_irm`] trains an agent, scores each candidate input by the policy's sensitivity to
//! it ([`policy_input_saliency`]), keeps the top `k_r` ([`IterativeHardThresholding`],
//! `k_r` going geometrically to the target), retrains from scratch on the masked inputs
//! ([`MaskedFeatures`]) and repeats; the last agent is trained on the final selection.

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, activation::softmax, backend::AutodiffBackend};
use quantrl_core::{Actions, ConfigError, EnvError, Space, StepBatch, VecEnv, check_non_negative};
use quantrl_losses::irm::{
    FeatureSelection, IrmConfig, IrmLoss, IrmTerms, IterativeHardThresholding, irm_penalty,
    irm_penalty_from_parts,
};
use quantrl_nets::ActorCritic;
use serde::{Deserialize, Serialize};

use crate::policy::{host_to_tensor, tensor_to_host};
use crate::{AlgoError, Ppo, TrainConfig};

/// Which part of PPO's loss the IRM penalty applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IrmTarget {
    /// The policy's surrogate (the default: the policy is what must not rely on a regime's
    /// spurious feature).
    #[default]
    Policy,
    /// The value regression.
    Value,
    /// Both, each with the same weight.
    Both,
}

/// The IRM penalty's settings (`[ppo.irm]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IrmPenaltyConfig {
    /// Weight `λ >= 0` of the penalty.
    pub penalty_weight: f64,
    /// What it applies to.
    pub target: IrmTarget,
}

impl Default for IrmPenaltyConfig {
    fn default() -> Self {
        Self {
            penalty_weight: 1.0,
            target: IrmTarget::Policy,
        }
    }
}

impl IrmPenaltyConfig {
    /// Check `penalty_weight >= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("ppo.irm.penalty_weight", self.penalty_weight)
    }
}

/// The number of distinct labels.
fn distinct(labels: &[usize]) -> usize {
    let mut v = labels.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// The IRMv1 penalty of the policy's surrogate across the regimes in `labels` (see the
/// [module docs](self)); `None` when fewer than two regimes are present.
///
/// # Shapes
/// - `logits`: `[batch, n_actions]` (masked), `log_prob`, `old_log_prob`, `advantages`:
///   `[batch]`, `actions_one_hot`: `[batch, n_actions]`, `labels`: `batch` labels
pub fn policy_irm_penalty<B: Backend>(
    logits: Tensor<B, 2>,
    actions_one_hot: Tensor<B, 2>,
    log_prob: Tensor<B, 1>,
    old_log_prob: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    labels: &[usize],
) -> Option<IrmTerms<B>> {
    if distinct(labels) < 2 {
        return None;
    }
    let [n, _] = logits.dims();
    let probs = softmax(logits.clone(), 1);
    let expected = (probs * logits.clone()).sum_dim(1).reshape([n]);
    let taken = (logits * actions_one_hot).sum_dim(1).reshape([n]);
    let ratio = (log_prob - old_log_prob).exp();
    let risk = (ratio * advantages).neg();
    let dummy_grad = risk.clone() * (taken - expected);
    Some(irm_penalty_from_parts(risk, dummy_grad, labels, 1.0))
}

/// The IRMv1 penalty of the value regression (squared error) across the regimes in
/// `labels`; `None` when fewer than two regimes are present.
///
/// # Shapes
/// - `values`, `returns`: `[batch]`, `labels`: `batch` labels
pub fn value_irm_penalty<B: Backend>(
    values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    labels: &[usize],
) -> Option<IrmTerms<B>> {
    (distinct(labels) >= 2).then(|| {
        irm_penalty(
            values,
            returns,
            labels,
            &IrmConfig {
                loss: IrmLoss::Mse,
                penalty_weight: 1.0,
            },
        )
    })
}

/// An environment whose observations keep only the selected entries (the others read 0),
/// for training on a feature selection. Everything else passes through.
#[derive(Debug, Clone)]
pub struct MaskedFeatures<E> {
    inner: E,
    keep: Vec<bool>,
}

impl<E: VecEnv> MaskedFeatures<E> {
    /// Keep the observation entries where `keep` is true (one flag per observation entry).
    pub fn new(inner: E, keep: Vec<bool>) -> Result<Self, AlgoError> {
        let d = inner.observation_space().flat_dim();
        if keep.len() != d {
            return Err(ConfigError::Inconsistent(format!(
                "feature mask has {} entries for observations of {d}",
                keep.len()
            ))
            .into());
        }
        Ok(Self { inner, keep })
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Which observation entries are kept.
    pub fn keep(&self) -> &[bool] {
        &self.keep
    }

    fn mask(&self, obs: &mut [f32]) {
        for row in obs.chunks_exact_mut(self.keep.len()) {
            for (x, &k) in row.iter_mut().zip(&self.keep) {
                if !k {
                    *x = 0.0;
                }
            }
        }
    }
}

impl<E: VecEnv> VecEnv for MaskedFeatures<E> {
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn has_action_masks(&self) -> bool {
        self.inner.has_action_masks()
    }
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        self.inner.reset(seed, batch);
        self.mask(&mut batch.obs);
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        self.inner.step(actions, batch)?;
        self.mask(&mut batch.obs);
        self.mask(&mut batch.final_obs);
        Ok(())
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn save_state(&self) -> Option<String> {
        self.inner.save_state()
    }
    fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
        self.inner.load_state(state)
    }
    fn regime_label(&self, env: usize) -> Option<usize> {
        self.inner.regime_label(env)
    }
}

/// How much the policy depends on each observation entry over a batch of observations:
/// `score_i = sqrt(mean_{s, j} (∂ z̃_j(s) / ∂ x_i)²) · std_s(x_i)`, with `z̃` the logits
/// centered over actions (a shift of all logits changes no probability). An entry that is
/// constant over the batch (e.g. masked out) scores 0.
///
/// # Shapes
/// - `obs`: `[batch, obs_dim]` host, row-major
pub fn policy_input_saliency<B: AutodiffBackend>(
    model: &ActorCritic<B>,
    obs: &[f32],
    obs_dim: usize,
    device: &B::Device,
) -> Vec<f64> {
    let m = obs.len() / obs_dim;
    let model = model.clone().no_grad();
    let mut sum_sq = vec![0f64; obs_dim];
    let n_actions = model
        .valid()
        .forward(host_to_tensor::<B::InnerBackend>(
            &obs[..obs_dim],
            1,
            obs_dim,
            device,
        ))
        .logits
        .dims()[1];
    for j in 0..n_actions {
        let x: Tensor<B, 2> = host_to_tensor::<B>(obs, m, obs_dim, device).require_grad();
        let logits = model.forward(x.clone()).logits;
        let centered = logits.clone() - logits.mean_dim(1);
        let target = centered.slice([0..m, j..j + 1]).sum();
        let grads = target.backward();
        let g = tensor_to_host(x.grad(&grads).expect("input gradient"));
        for row in g.chunks_exact(obs_dim) {
            for (s, &v) in sum_sq.iter_mut().zip(row) {
                *s += (v as f64) * (v as f64);
            }
        }
    }
    (0..obs_dim)
        .map(|i| {
            let col = obs.iter().skip(i).step_by(obs_dim).map(|&v| v as f64);
            let mean = col.clone().sum::<f64>() / m as f64;
            let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / m as f64;
            (sum_sq[i] / (m * n_actions) as f64).sqrt() * var.sqrt()
        })
        .collect()
}

/// Sparse IRM's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseIrmConfig {
    /// Observation entries that compete for selection (`None`: all); the others are always
    /// kept (e.g. the account state of a trading observation).
    pub candidates: Option<Vec<usize>>,
    /// Candidates kept at the end, `1..=candidates`.
    pub target_k: usize,
    /// Thresholding rounds, `>= 1`.
    pub rounds: usize,
}

/// What [`sparse_irm`] found.
pub struct SparseIrmOutcome<B: AutodiffBackend, E: VecEnv> {
    /// The agent trained on the final selection.
    pub agent: Ppo<B, MaskedFeatures<E>>,
    /// Observation entries kept at the end, ascending (candidates and always-kept ones).
    pub selected: Vec<usize>,
    /// Selected candidates after each round (observation indices).
    pub rounds: Vec<Vec<usize>>,
    /// The saliency scores of every observation entry in each round.
    pub scores: Vec<Vec<f64>>,
}

/// Sparse IRM by iterative hard thresholding (see the [module docs](self)): `rounds + 1`
/// trainings of `config` (usually with an IRM penalty), each on a fresh environment from
/// `make_env` masked to the current selection, scored on the observations of its last
/// rollout.
pub fn sparse_irm<B, E, F>(
    config: &TrainConfig,
    sparse: &SparseIrmConfig,
    mut make_env: F,
    device: &B::Device,
) -> Result<SparseIrmOutcome<B, E>, AlgoError>
where
    B: AutodiffBackend,
    E: VecEnv,
    F: FnMut() -> E,
{
    let probe = make_env();
    let obs_dim = probe.observation_space().flat_dim();
    drop(probe);
    let candidates: Vec<usize> = sparse
        .candidates
        .clone()
        .unwrap_or_else(|| (0..obs_dim).collect());
    if let Some(&bad) = candidates.iter().find(|&&c| c >= obs_dim) {
        return Err(ConfigError::out_of_range(
            "sparse_irm.candidates",
            bad,
            format!("observation indices below {obs_dim}"),
        )
        .into());
    }
    let mut iht = IterativeHardThresholding::new(candidates.len(), sparse.target_k, sparse.rounds)?;
    let keep_of = |sel: &FeatureSelection| {
        let mut keep = vec![true; obs_dim];
        for (c, &i) in candidates.iter().enumerate() {
            keep[i] = sel.mask[c] > 0.5;
        }
        keep
    };
    let (mut rounds, mut scores) = (Vec::new(), Vec::new());
    loop {
        let env = MaskedFeatures::new(make_env(), keep_of(&iht.selection))?;
        let mut agent = Ppo::<B, _>::new(config.clone(), env, device)?;
        agent.learn::<MaskedFeatures<E>>(None, &mut crate::no_callback())?;
        if iht.finished() {
            let keep = agent.env().keep().to_vec();
            let selected = (0..obs_dim).filter(|&i| keep[i]).collect();
            return Ok(SparseIrmOutcome {
                agent,
                selected,
                rounds,
                scores,
            });
        }
        let s = policy_input_saliency(agent.model(), &agent.buffer.obs, obs_dim, agent.device());
        let candidate_scores: Vec<f64> = candidates.iter().map(|&i| s[i]).collect();
        let sel = iht.next_round(&candidate_scores);
        rounds.push(sel.selected.iter().map(|&c| candidates[c]).collect());
        scores.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    fn tensor1<B: Backend>(v: &[f32], device: &B::Device) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    #[test]
    fn penalty_is_zero_with_one_regime_and_positive_with_two() {
        let dev = Default::default();
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.2f32, -0.1, 1.0, 0.3, 0.0, -0.5, 0.7, 0.1], [4, 2]),
            &dev,
        );
        let onehot = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1f32, 0., 0., 1., 1., 0., 0., 1.], [4, 2]),
            &dev,
        );
        let lp = burn::tensor::activation::log_softmax(logits.clone(), 1);
        let log_prob = (lp * onehot.clone()).sum_dim(1).reshape([4]);
        let old = log_prob.clone().sub_scalar(0.1);
        let adv = tensor1::<B>(&[1.0, -2.0, 0.5, 3.0], &dev);
        let one = [7, 7, 7, 7];
        assert!(
            policy_irm_penalty(
                logits.clone(),
                onehot.clone(),
                log_prob.clone(),
                old.clone(),
                adv.clone(),
                &one
            )
            .is_none()
        );
        let values = tensor1::<B>(&[0.1, 0.2, 0.3, 0.4], &dev);
        let returns = tensor1::<B>(&[1.0, 0.0, 1.0, 0.0], &dev);
        assert!(value_irm_penalty(values.clone(), returns.clone(), &one).is_none());
        let two = [0, 1, 0, 1];
        let p = policy_irm_penalty(logits, onehot, log_prob, old, adv, &two).unwrap();
        let v: f32 = p.penalty_mean.into_scalar();
        assert!(v > 0.0, "{v}");
        let q = value_irm_penalty(values, returns, &two).unwrap();
        assert!(q.penalty_mean.into_scalar() > 0.0);
    }

    /// The closed-form dummy derivative equals a finite difference of the per-regime risk in
    /// the logit scale `w`.
    #[test]
    fn policy_dummy_gradient_matches_a_finite_difference() {
        let dev = Default::default();
        let z = vec![0.4f32, -0.3, 0.9, 0.2, -0.6, 0.5];
        let onehot = vec![0f32, 1., 0., 1., 0., 0.];
        let adv = [1.5f32, -0.7];
        let old = [-1.2f32, -0.9];
        let risk = |w: f64| -> f64 {
            (0..2)
                .map(|i| {
                    let row: Vec<f64> = z[i * 3..i * 3 + 3].iter().map(|&v| w * v as f64).collect();
                    let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
                    let a = onehot[i * 3..i * 3 + 3]
                        .iter()
                        .position(|&o| o > 0.5)
                        .unwrap();
                    -(adv[i] as f64) * (row[a] - lse - old[i] as f64).exp()
                })
                .sum::<f64>()
                / 2.0
        };
        let h = 1e-4;
        let fd = (risk(1.0 + h) - risk(1.0 - h)) / (2.0 * h);
        let logits = Tensor::<B, 2>::from_data(TensorData::new(z, [2, 3]), &dev);
        let oh = Tensor::<B, 2>::from_data(TensorData::new(onehot, [2, 3]), &dev);
        let lp = (burn::tensor::activation::log_softmax(logits.clone(), 1) * oh.clone())
            .sum_dim(1)
            .reshape([2]);
        // Both samples in one regime of a two-regime batch: regime 0 holds both, regime 1 a
        // copy with zero advantage (so its derivative is 0).
        let four = |t: Tensor<B, 2>| Tensor::cat(vec![t.clone(), t], 0);
        let lp4 = Tensor::cat(vec![lp.clone(), lp], 0);
        let old4 = tensor1::<B>(&[old[0], old[1], old[0], old[1]], &dev);
        let adv4 = tensor1::<B>(&[adv[0], adv[1], 0.0, 0.0], &dev);
        let p = policy_irm_penalty(four(logits), four(oh), lp4, old4, adv4, &[0, 0, 1, 1]).unwrap();
        let g: Vec<f32> = p.grad_w_per_env.into_data().to_vec().unwrap();
        assert!((g[0] as f64 - fd).abs() < 1e-3, "{} vs {fd}", g[0]);
        assert_eq!(g[1], 0.0);
    }
}

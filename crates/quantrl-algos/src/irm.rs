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
//! [`sparse_irm`] trains an agent, scores each candidate input, keeps the top `k_r`
//! ([`IterativeHardThresholding`], `k_r` going geometrically to the target), retrains from
//! scratch on the masked inputs ([`MaskedFeatures`]) and repeats; the last agent is trained on
//! the final selection. The score ([`SparseIrmScore`]) is by default IRM's own criterion at
//! the input: [`invariance_probe`] puts one dummy scale on each input's contribution to a
//! linear probe of the returns and asks whether every regime is content with the pooled
//! scale. The alternative, the policy's sensitivity to each input
//! ([`policy_input_saliency`]), is blind to invariance: with a penalty weak enough for the
//! policy to learn, the policy still follows the spurious input and saliency keeps it; with a
//! strong one (λ = 1000 on `examples/exp_spurious.rs`) the policy depends on no input at all
//! (saliency ≈ 0.002 against ≈ 2 unpenalized) and the ranking is noise.

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

/// How [`sparse_irm`] scores the candidates after each round's training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum SparseIrmScore {
    /// [`invariance_probe`] on `rollouts` further rollouts of the round's agent (collected
    /// without updates): usefulness for predicting the return minus `weight` × the
    /// noise-corrected regret of re-tuning the input per regime. The default, with
    /// `weight = 20` and `rollouts = 32`.
    InvariantProbe {
        /// Weight of the regime regret, `>= 0` (0: usefulness alone).
        weight: f64,
        /// Scoring rollouts, `>= 1`.
        rollouts: usize,
    },
    /// [`policy_input_saliency`] on the round's last rollout: how much the policy uses each
    /// input. Blind to invariance except through the training's IRM penalty.
    Saliency,
}

impl Default for SparseIrmScore {
    fn default() -> Self {
        Self::InvariantProbe {
            weight: 20.0,
            rollouts: 32,
        }
    }
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
    /// How candidates are scored.
    #[serde(default)]
    pub score: SparseIrmScore,
}

impl SparseIrmConfig {
    /// Check the score's settings (`weight` finite and `>= 0`, `rollouts >= 1`); the counts
    /// are checked against the observation by [`sparse_irm`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let SparseIrmScore::InvariantProbe { weight, rollouts } = self.score {
            check_non_negative("sparse_irm.score.weight", weight)?;
            if rollouts == 0 {
                return Err(ConfigError::out_of_range(
                    "sparse_irm.score.rollouts",
                    0,
                    ">= 1",
                ));
            }
        }
        Ok(())
    }
}

/// What [`sparse_irm`] found.
pub struct SparseIrmOutcome<B: AutodiffBackend, E: VecEnv> {
    /// The agent trained on the final selection.
    pub agent: Ppo<B, MaskedFeatures<E>>,
    /// Observation entries kept at the end, ascending (candidates and always-kept ones).
    pub selected: Vec<usize>,
    /// Selected candidates after each round (observation indices).
    pub rounds: Vec<Vec<usize>>,
    /// The score of every observation entry in each round (with the probe, entries that are
    /// not candidates read 0; they never compete).
    pub scores: Vec<Vec<f64>>,
    /// The probe's findings for each candidate (in `candidates` order) in each round; empty
    /// when scoring by saliency.
    pub probes: Vec<Vec<ProbeScore>>,
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
    sparse.validate()?;
    let probe = make_env();
    let obs_dim = probe.observation_space().flat_dim();
    if matches!(sparse.score, SparseIrmScore::InvariantProbe { .. }) {
        crate::ppo::check_regime_labels(&probe, "sparse_irm's invariance probe")?;
    }
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
    let (mut rounds, mut scores, mut probes) = (Vec::new(), Vec::new(), Vec::new());
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
                probes,
            });
        }
        let s = match sparse.score {
            SparseIrmScore::Saliency => {
                policy_input_saliency(agent.model(), &agent.buffer.obs, obs_dim, agent.device())
            }
            SparseIrmScore::InvariantProbe { weight, rollouts } => {
                agent.record_regimes()?;
                let (mut obs, mut actions, mut returns, mut labels) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for _ in 0..rollouts {
                    agent.collect_rollout()?;
                    let b = &agent.buffer;
                    obs.extend_from_slice(&b.obs);
                    actions.extend_from_slice(&b.actions);
                    returns.extend_from_slice(&b.returns);
                    let regimes = agent.regimes.as_ref().expect("recording regimes");
                    labels.extend(regimes.iter().map(|&r| r as usize));
                }
                let found = invariance_probe(
                    &obs,
                    obs_dim,
                    &actions,
                    agent.n_actions_(),
                    &returns,
                    &labels,
                    &candidates,
                    weight,
                );
                let mut s = vec![0.0; obs_dim];
                for (&i, f) in candidates.iter().zip(&found) {
                    s[i] = f.score;
                }
                probes.push(found);
                s
            }
        };
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

/// How much one candidate input helps predict the return, and how much of that help depends
/// on the regime (see [`invariance_probe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeScore {
    /// `U_k = mean_n Φ_k(n)²`: the risk the pooled probe loses when the candidate's
    /// contribution is removed (at the least-squares fit the cross term vanishes), as a
    /// fraction of the return's variance.
    pub usefulness: f64,
    /// The risk each regime would gain, on average, by re-scaling the candidate's
    /// contribution to its own best scale (a Newton-normalized IRMv1 penalty), less what
    /// sampling noise alone would give; at least 0.
    pub regime_regret: f64,
    /// The part of the raw regret sampling noise alone would give (subtracted above).
    pub noise_regret: f64,
    /// Each regime's best scale of the contribution (1 = the pooled fit's), in label order.
    pub best_scale: Vec<f64>,
    /// `usefulness - weight · regime_regret`, the sparse-IRM score.
    pub score: f64,
}

/// The Cholesky factor (lower triangle, row-major) of the symmetric positive (semi)definite
/// `p × p` matrix `a`, with a ridge of `1e-9` of the mean diagonal for columns that are
/// (nearly) collinear; solve with [`cholesky_solve`].
fn cholesky(mut a: Vec<f64>, p: usize) -> Vec<f64> {
    let ridge = 1e-9 * (0..p).map(|i| a[i * p + i]).sum::<f64>() / p.max(1) as f64 + 1e-12;
    for i in 0..p {
        a[i * p + i] += ridge;
    }
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        let d = d.max(ridge).sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut v = a[i * p + j];
            for k in 0..j {
                v -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = v / d;
        }
    }
    a
}

/// Solve `a x = b` given `a`'s [`cholesky`] factor `l`.
fn cholesky_solve(l: &[f64], mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for i in 0..p {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i * p + k] * b[k];
        }
        b[i] = v / l[i * p + i];
    }
    for i in (0..p).rev() {
        let mut v = b[i];
        for k in i + 1..p {
            v -= l[k * p + i] * b[k];
        }
        b[i] = v / l[i * p + i];
    }
    b
}

/// Sparse IRM's invariance score of each candidate input: IRMv1 on a linear probe of the
/// returns, with one dummy scale per input instead of one on the output.
///
/// The probe regresses the standardized return `y` of every sample (the TD(λ) return of the
/// rollout, not the advantage: a critic that partly infers the regime, e.g. from the
/// account's recent profit, subtracts part of a spurious input's regime-dependent effect and
/// hides it) on the action taken crossed with the inputs: one column `1[a = b] · x_k` per
/// candidate `k` and action `b` (centered within each action's samples), one column per other
/// non-constant input, one intercept per action; least squares over all regimes pooled.
/// Candidate `k`'s contribution to the prediction is `Φ_k(n) = β_{a_n, k} (x_k(n) - x̄_{a_n, k})`.
///
/// Put a dummy scale `w_k` on each contribution. Each regime's risk
/// `R_e(w) = mean_{n ∈ e} (ŷ_n + Σ_k (w_k - 1) Φ_k(n) - y_n)²` is a quadratic with gradient
/// `g_e` at `w = 1` (IRMv1's dummy gradient) and Hessian `H_e = 2 mean_e Φ Φᵀ`. An invariant
/// input has `g_e[k] = 0` in every regime (each regime's best scale is the pooled one); a
/// spurious one, predictive with a different strength in each regime, does not. Every regime
/// re-tunes all scales together, plus (as nuisance) the scales of the other inputs and one
/// overall intercept, so a candidate is not blamed for a correlated one or for a regime's
/// level: `δ_e = -H_e⁻¹ g_e`, best scale `1 + δ_e[k]`, and candidate `k`'s regret in regime
/// `e` is `½ H_e[k, k] δ_e[k]²`, less its expectation under pure sampling noise
/// (`½ H_e[k, k] Var δ_e[k]` with the regime's residual variance). The score trades
/// usefulness against invariance, both in units of risk:
///
/// ```text
/// score_k = U_k - weight · max(0, mean_e regret_e[k]),     U_k = mean_n Φ_k(n)²
/// ```
///
/// With `weight · regret / U > 1` a candidate scores below zero, below a useless invariant
/// one. Regimes count equally (IRM's mean over environments). A candidate that reads
/// constant (masked out) scores 0.
///
/// # Shapes
/// - `obs`: `[n, obs_dim]` row-major; `actions`, `returns`, `labels`: `n`
///
/// Cost `O(n p²)` with `p = |candidates| · n_actions + obs_dim + n_actions` columns.
#[allow(clippy::too_many_arguments)]
pub fn invariance_probe(
    obs: &[f32],
    obs_dim: usize,
    actions: &[u32],
    n_actions: usize,
    returns: &[f32],
    labels: &[usize],
    candidates: &[usize],
    weight: f64,
) -> Vec<ProbeScore> {
    let n = actions.len();
    assert_eq!(obs.len(), n * obs_dim, "invariance_probe: obs length");
    assert_eq!(returns.len(), n, "invariance_probe: returns length");
    assert_eq!(labels.len(), n, "invariance_probe: labels length");
    assert!(n > 0, "invariance_probe: no samples");
    let col = |i: usize| obs.iter().skip(i).step_by(obs_dim).map(|&v| v as f64);
    let varies = |i: usize| {
        let first = obs[i] as f64;
        col(i).any(|v| v != first)
    };
    let live: Vec<usize> = candidates.iter().copied().filter(|&k| varies(k)).collect();
    let others: Vec<usize> = (0..obs_dim)
        .filter(|i| !candidates.contains(i) && varies(*i))
        .collect();
    let (m, o) = (live.len(), others.len());
    let p = m * n_actions + o + n_actions;
    // Candidates are centered within each action's samples, the other inputs over all: a
    // contribution then has mean zero in each action group, and re-scaling it does not move
    // that action's mean return, which the intercepts carry.
    let mut center = vec![0f64; m * n_actions];
    let mut taken = vec![0f64; n_actions];
    for r in 0..n {
        let a = actions[r] as usize;
        taken[a] += 1.0;
        for (c, &k) in live.iter().enumerate() {
            center[c * n_actions + a] += obs[r * obs_dim + k] as f64;
        }
    }
    for (i, v) in center.iter_mut().enumerate() {
        *v /= taken[i % n_actions].max(1.0);
    }
    let other_mean: Vec<f64> = others
        .iter()
        .map(|&j| col(j).sum::<f64>() / n as f64)
        .collect();
    let fill = |r: usize, row: &mut [f64]| {
        row.fill(0.0);
        let a = actions[r] as usize;
        let x = &obs[r * obs_dim..(r + 1) * obs_dim];
        for (c, &k) in live.iter().enumerate() {
            row[c * n_actions + a] = x[k] as f64 - center[c * n_actions + a];
        }
        for (c, &j) in others.iter().enumerate() {
            row[m * n_actions + c] = x[j] as f64 - other_mean[c];
        }
        row[m * n_actions + o + a] = 1.0;
    };
    let mean_y = returns.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let sd_y = (returns
        .iter()
        .map(|&v| (v as f64 - mean_y).powi(2))
        .sum::<f64>()
        / n as f64)
        .sqrt()
        .max(1e-12);
    let y: Vec<f64> = returns
        .iter()
        .map(|&v| (v as f64 - mean_y) / sd_y)
        .collect();
    let (mut xtx, mut xty, mut row) = (vec![0f64; p * p], vec![0f64; p], vec![0f64; p]);
    for r in 0..n {
        fill(r, &mut row);
        for i in 0..p {
            if row[i] != 0.0 {
                xty[i] += row[i] * y[r];
                for j in 0..p {
                    xtx[i * p + j] += row[i] * row[j];
                }
            }
        }
    }
    let beta = cholesky_solve(&cholesky(xtx, p), xty);
    let mut envs: Vec<usize> = labels.to_vec();
    envs.sort_unstable();
    envs.dedup();
    // Per regime, over the re-tuned directions φ = (Φ_1..Φ_m, other contributions, 1):
    // count, c = Σ φ (ŷ - y), M = Σ φ φᵀ, Σ (ŷ - y)²; pooled Σ Φ_k².
    let q = m + o + 1;
    let ne = envs.len();
    let mut count = vec![0f64; ne];
    let mut cross = vec![0f64; ne * q];
    let mut gram = vec![0f64; ne * q * q];
    let mut sse = vec![0f64; ne];
    let mut pooled = vec![0f64; m];
    let mut phi = vec![0f64; q];
    for r in 0..n {
        fill(r, &mut row);
        let res: f64 = row.iter().zip(&beta).map(|(x, b)| x * b).sum::<f64>() - y[r];
        let e = envs.binary_search(&labels[r]).expect("label listed");
        count[e] += 1.0;
        sse[e] += res * res;
        let a = actions[r] as usize;
        for c in 0..m {
            phi[c] = row[c * n_actions + a] * beta[c * n_actions + a];
            pooled[c] += phi[c] * phi[c];
        }
        for c in 0..o {
            phi[m + c] = row[m * n_actions + c] * beta[m * n_actions + c];
        }
        phi[m + o] = 1.0;
        for c in 0..q {
            if phi[c] != 0.0 {
                cross[e * q + c] += phi[c] * res;
                for c2 in 0..q {
                    gram[(e * q + c) * q + c2] += phi[c] * phi[c2];
                }
            }
        }
    }
    // Per regime: δ = -M⁻¹ c (the Newton step of R_e in the scales), regret of candidate k
    // (M_kk / n_e) δ_k², noise part (M_kk / n_e) σ_e² (M⁻¹)_kk.
    let mut raw = vec![vec![0f64; ne]; m];
    let mut noise = vec![vec![0f64; ne]; m];
    let mut shift = vec![vec![0f64; ne]; m];
    for e in 0..ne {
        if count[e] < 2.0 {
            continue;
        }
        let g = &gram[e * q * q..(e + 1) * q * q];
        let c: Vec<f64> = cross[e * q..(e + 1) * q].iter().map(|v| -v).collect();
        let l = cholesky(g.to_vec(), q);
        let delta = cholesky_solve(&l, c);
        let sigma2 = sse[e] / count[e];
        for k in 0..m {
            let mkk = g[k * q + k];
            if mkk <= 0.0 {
                continue;
            }
            let mut unit = vec![0f64; q];
            unit[k] = 1.0;
            let inv_kk = cholesky_solve(&l, unit)[k];
            shift[k][e] = delta[k];
            raw[k][e] = mkk / count[e] * delta[k] * delta[k];
            noise[k][e] = mkk / count[e] * sigma2 * inv_kk;
        }
    }
    candidates
        .iter()
        .map(|k| match live.iter().position(|l| l == k) {
            None => ProbeScore {
                usefulness: 0.0,
                regime_regret: 0.0,
                noise_regret: 0.0,
                best_scale: vec![1.0; ne],
                score: 0.0,
            },
            Some(c) => {
                let usefulness = pooled[c] / n as f64;
                let raw_mean = raw[c].iter().sum::<f64>() / ne as f64;
                let noise_mean = noise[c].iter().sum::<f64>() / ne as f64;
                let regime_regret = (raw_mean - noise_mean).max(0.0);
                ProbeScore {
                    usefulness,
                    regime_regret,
                    noise_regret: noise_mean,
                    best_scale: shift[c].iter().map(|d| 1.0 + d).collect(),
                    score: usefulness - weight * regime_regret,
                }
            }
        })
        .collect()
}

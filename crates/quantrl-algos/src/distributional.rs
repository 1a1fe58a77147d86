//! Distributional PPO: a quantile critic trained with the quantile Huber loss against n-step
//! distributional targets, optional twin critics, and a CVaR objective for the policy.
//!
//! # The critic
//!
//! The critic outputs `N` quantiles `θ_i(s)` of the return distribution `Z^π(s)` at the levels
//! `τ_i = (2i + 1) / 2N` (QR-DQN's parameterization: Dabney et al. 2018, "Distributional
//! Reinforcement Learning with Quantile Regression"), for the state value rather than an
//! action value. Advantages for the policy come from its mean (GAE on
//! `V(s) = mean_i θ_i(s)`), exactly as with a scalar critic.
//!
//! # The target: n-step distributional Bellman targets
//!
//! For a sample at step `t` of one environment, with `k <= n` the number of steps until the
//! n-step horizon, the rollout's end or the episode's end, whichever comes first:
//!
//! ```text
//! target_j(t) = Σ_{i<k} γ^i r_{t+i}  +  γ^k θ_j^old(s_{t+k})      j = 0..N-1
//! ```
//!
//! where `θ^old` are the quantiles recorded at rollout time (fixed during the update, as PPO's
//! returns are), combined over twin critics by their [`CriticReduction`]; the bootstrap is the
//! next rollout state, the last observation after the rollout, the final observation of an
//! episode cut by a time limit (its quantiles are computed when it is cut), and nothing after a
//! terminal state (then every `target_j` is the reward sum). This is the multi-step
//! distributional target of Rainbow (Hessel et al. 2018) with QR-DQN's quantile regression:
//! because the quantile Huber loss is linear in the target distribution, one sampled
//! transition gives an unbiased gradient of the loss against the mixture over next states,
//! so the critic learns the distribution of the return under `π` (Rowland et al. 2018), not
//! only its mean.
//!
//! The construction `target_j = R^λ_t + (θ_j^old(s_t) - mean θ^old(s_t))` (the TD(λ) return
//! shifted by the old quantiles' deviations) was considered and rejected: its targets are the
//! old quantiles translated, so the spread of the learned distribution never moves from its
//! initialization and its CVaR carries no information.
//!
//! Every critic is regressed on the same targets ([`distributional_critic_loss`]); the targets
//! come from the reduced (pessimistic) distribution of the old critics.
//!
//! # The CVaR objective
//!
//! The policy is made to care about `CVaR_α(Z(s))`, the mean of the worst `α` fraction of
//! returns from a state, with the CVaR policy gradient of Tamar, Glassner & Mannor (2015,
//! "Optimizing the CVaR via Sampling"): for a return sample `R` from `s`,
//!
//! ```text
//! ∇ CVaR_α(Z(s)) = E[ min(R - VaR_α(s), 0) / α · ∇ log π(a|s) ]
//! ```
//!
//! Tamar et al. estimate `VaR_α` from a batch of whole-episode returns; here the quantile
//! critic gives it per state: `VaR_α(s) = θ_(⌈αN⌉)(s)`, the lowest sorted atom whose
//! cumulative mass reaches `α`. For the return sample, the sample's own n-step target
//! distribution is used (the atoms `target_j(t)` above): given the rewards and the state
//! `s_{t+k}` the sample reached, the rest of its return is distributed as `Z(s_{t+k})`, so
//! averaging the shortfall over the atoms replaces the one sampled tail by its conditional
//! expectation (a Rao-Blackwellization: the same expected gradient, less variance), and the
//! blame stays with the actions of the first `k` steps:
//!
//! ```text
//! A^C_t = mean_j min(target_j(t) - VaR_α(s_t), 0) / α
//! ```
//!
//! `A^C` is non-zero only where the sample's outcome reaches into the tail of its own state's
//! distribution. The policy loss adds a second clipped surrogate
//! on `A^C` (normalized like the mean advantage) through [`CvarObjective::loss`]:
//!
//! ```text
//! L = L^clip(A) - w · S^clip(A^C)              (penalty, weight w)
//! L = L^clip(A) - λ · (S^clip(A^C) - c)        (constraint CVaR_α >= c, λ by dual ascent)
//! ```
//!
//! with `S^clip = -L^clip` the clipped surrogate's improvement estimate. The multiplier moves
//! after each update by `λ <- max(0, λ + lr (c - Ĉ))`, where `Ĉ` is chosen by
//! [`CvarEstimate`]: by default the critic's CVaR at the episode starts of the rollout (no
//! move when the rollout has none), or the empirical CVaR of the last finished training
//! episodes' returns, or (moving once per evaluation) that of the greedy evaluation
//! episodes. The critic's lower tail can be far off where the losses are rare (a
//! quantile critic with few atoms and short bootstrapped targets underweights events rarer
//! than its lowest level; `examples/exp_tail_risk.rs` found it nearly blind to crashes), and
//! then only the episode estimate measures the tail the constraint is about.
//!
//! With advantage normalization, `A^C` is centred and divided either by its own standard
//! deviation ([`CvarAdvantageScale::Own`], the default: the weight is relative to the
//! mean-return term) or by the mean advantages' ([`CvarAdvantageScale::MeanAdvantage`]: both
//! terms keep their raw ratio). `A^C` is mostly zero with rare large shortfalls, so its own
//! standard deviation falls as the policy stops taking the tail risk, which then magnifies
//! whatever small shortfalls remain; `examples/exp_tail_risk.rs` found the weights that
//! avoid the tail without giving up the whole position much more consistent across seeds
//! with `MeanAdvantage` (see `docs/EXPERIMENTS.md`).
//!
//! # The CVaR objective as an episode shortfall ([`CvarGradient::EpisodeShortfall`])
//!
//! The alternative gradient optimizes the CVaR of the *episode* return `G` (the quantity
//! an evaluation reports) through the Rockafellar–Uryasev form
//! `CVaR_α(G) = max_b { b - E[(b - G)^+] / α }`, whose maximizing `b` is `VaR_α(G)`
//! (Rockafellar & Uryasev 2000; the policy-gradient use is Tamar et al. 2015's episodic
//! estimator and Ying et al. 2022's CVaR-constrained PPO). With `b` held at the empirical
//! `VaR_α` of the last finished training episodes (up to 100, as for
//! [`CvarEstimate::EpisodeReturns`]; nothing is shaped before [`MIN_EPISODES_FOR_CVAR`] have
//! finished), maximizing `E[G] + w CVaR_α(G)` is maximizing the expected return of a shaped
//! reward: the last reward of every finished episode gets
//!
//! ```text
//! r_T  <-  r_T - w (b - G)^+ / α          (G the episode's undiscounted raw return)
//! ```
//!
//! ([`shortfall_penalty`]), before reward normalization, in the rewards both the GAE and the
//! quantile targets see; `w` is the penalty weight or the constraint's multiplier `λ`, and
//! no CVaR surrogate term is added to the loss. Credit for a tail outcome then reaches the
//! actions that caused it through the critic, like any reward, instead of through a
//! per-state `VaR` the critic may not resolve; and the weight is on the return's own scale
//! (`w = 1`: one unit of CVaR is worth one unit of mean return), not relative to the
//! normalized mean advantage. The penalty depends on the return so far, so the observation
//! should carry it (the trading environments' account does, as `log_nav`).

use burn::tensor::{Tensor, backend::Backend};
use quantrl_core::ConfigError;
use quantrl_losses::cvar::{CvarObjective, QuantileCvar, check_alpha, cvar_weights};
use quantrl_losses::host::advantage_normalization;
use quantrl_losses::quantile::{QuantileHuberConfig, check_n_quantiles, quantile_huber_loss};
use quantrl_nets::{ActorCriticConfig, CriticReduction, RecurrentActorCriticConfig};
use serde::{Deserialize, Serialize};

/// The distributional critic's settings (`[ppo.distributional]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributionalConfig {
    /// Quantiles of the return distribution, `>= 1`.
    pub n_quantiles: usize,
    /// Two quantile critics, combined by `twin_reduction`.
    pub twin_critics: bool,
    /// How twin critics combine (targets, values, CVaR).
    pub twin_reduction: CriticReduction,
    /// Steps of real rewards before the bootstrap in the targets, `>= 1`.
    pub n_step: usize,
    /// Huber threshold of the quantile loss, `> 0`.
    pub kappa: f64,
    /// The CVaR objective for the policy; `None` is risk-neutral.
    pub cvar: Option<CvarPolicyConfig>,
}

impl Default for DistributionalConfig {
    fn default() -> Self {
        Self {
            n_quantiles: 32,
            twin_critics: false,
            twin_reduction: CriticReduction::MinOfMeans,
            n_step: 8,
            kappa: 1.0,
            cvar: None,
        }
    }
}

/// The CVaR objective's settings (`[ppo.distributional.cvar]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CvarPolicyConfig {
    /// Tail fraction `α` in `(0, 1)`.
    pub alpha: f64,
    /// A penalty weight or a constraint with its Lagrange multiplier.
    pub objective: CvarObjective,
    /// How the CVaR of a quantile distribution is computed.
    pub convention: QuantileCvar,
    /// Which CVaR estimate a constraint's multiplier is moved with (no effect on a penalty).
    pub estimate: CvarEstimate,
    /// How the policy's gradient reaches the CVaR: per state through the quantile critic
    /// (the default) or through the episode shortfall (see the [module docs](self)).
    pub gradient: CvarGradient,
    /// How the state-quantile gradient's CVaR advantages are scaled when
    /// `ppo.normalize_advantage` is on: by their own standard deviation (the default) or by
    /// the mean advantages' (see [`CvarAdvantageScale`]).
    pub scale: CvarAdvantageScale,
}

/// How [`CvarGradient::StateQuantiles`] scales its CVaR advantages `A^C` when advantages
/// are normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CvarAdvantageScale {
    /// Centred and divided by their own standard deviation, like the mean advantages (the
    /// default): the weight is relative to the mean term whatever the tail's size, so the
    /// effective weight on the raw CVaR grows as the tail events become rarer in the batch.
    #[default]
    Own,
    /// Centred and divided by the *mean* advantages' standard deviation: both terms keep
    /// their raw ratio, so `w` weighs one unit of CVaR advantage against one unit of
    /// mean advantage however rare the tail outcomes in a minibatch are.
    MeanAdvantage,
}

/// How the CVaR objective reaches the policy (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CvarGradient {
    /// Tamar et al.'s CVaR gradient per state, with the quantile critic's `VaR_α(s)` and the
    /// sample's n-step target atoms, as a second clipped surrogate (the default).
    #[default]
    StateQuantiles,
    /// The Rockafellar–Uryasev shortfall of the episode return below the empirical
    /// `VaR_α` of the recent training episodes, subtracted from each episode's last reward
    /// with weight `w / α`; no surrogate term.
    EpisodeShortfall,
}

/// [`CvarAdvantageScale::MeanAdvantage`]: centre the CVaR advantages `adv_c` and divide them
/// by the (unbiased) standard deviation of the minibatch's mean advantages `adv`, the scale
/// [`normalize_advantages`](quantrl_losses::ppo::normalize_advantages) gives those, so that
/// the objective's weight is on the raw return scale of both.
pub fn scale_like_mean_advantages(adv_c: &mut [f32], adv: &[f32]) {
    if adv.len() <= 1 {
        return;
    }
    let (_, scale) = advantage_normalization(adv);
    let mean_c = adv_c.iter().map(|&v| v as f64).sum::<f64>() / adv_c.len() as f64;
    for v in adv_c.iter_mut() {
        *v = ((*v as f64 - mean_c) * scale) as f32;
    }
}

/// The reward shaping of [`CvarGradient::EpisodeShortfall`]: `weight · (var - G)^+ / alpha`,
/// subtracted from the last reward of an episode whose undiscounted return is `G`.
pub fn shortfall_penalty(episode_return: f64, var: f64, weight: f64, alpha: f64) -> f64 {
    weight * (var - episode_return).max(0.0) / alpha
}

impl Default for CvarPolicyConfig {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            objective: CvarObjective::Penalty { weight: 1.0 },
            convention: QuantileCvar::Fractional,
            estimate: CvarEstimate::CriticAtStarts,
            gradient: CvarGradient::StateQuantiles,
            scale: CvarAdvantageScale::Own,
        }
    }
}

/// The CVaR estimate `Ĉ` a constraint's multiplier is moved with after each update,
/// `λ <- max(0, λ + lr (c - Ĉ))`; the threshold `c` is on the scale of the estimate chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CvarEstimate {
    /// The critic's `CVaR_α` at the rollout's episode starts, averaged (the default): the
    /// discounted return of the critic's horizon (time-limit cuts are bootstrapped), only as
    /// good as the critic's lower tail.
    #[default]
    CriticAtStarts,
    /// The empirical `CVaR_α` ([`empirical_cvar`]) of the undiscounted returns of the last
    /// finished training episodes (up to 100; no move before [`MIN_EPISODES_FOR_CVAR`] have
    /// finished): the scale of an evaluation's episode returns, from the sampling policy.
    EpisodeReturns,
    /// The empirical `CVaR_α` of the returns of the periodic greedy evaluation
    /// ([`Ppo::learn`](crate::Ppo::learn) with an evaluation environment, every
    /// `eval.every` steps): the multiplier moves once after each evaluation instead of after
    /// each update, with the tail of the policy that will be deployed rather than of the
    /// sampling one. Without an evaluation environment it never moves.
    GreedyEvaluation,
}

/// Finished training episodes needed before [`CvarEstimate::EpisodeReturns`] moves the
/// multiplier.
pub const MIN_EPISODES_FOR_CVAR: usize = 20;

/// Empirical lower VaR and `CVaR_alpha` of a sample of returns, `(var, cvar)`, on the host:
/// `k = floor((n - 1) alpha)`, `var = sorted[k]`, `cvar` the mean of every return at or below
/// `var` (the convention of `quantrl_eval::expected_shortfall` and of
/// [`quantrl_losses::cvar::cvar_empirical`] with
/// [`TailConvention::Lower`](quantrl_losses::cvar::TailConvention::Lower)). `None` for an
/// empty sample.
pub fn empirical_cvar(returns: &[f64], alpha: f64) -> Option<(f64, f64)> {
    if returns.is_empty() {
        return None;
    }
    let mut sorted = returns.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = ((sorted.len() - 1) as f64 * alpha).floor() as usize;
    let var = sorted[k];
    let tail: Vec<f64> = sorted.iter().copied().take_while(|&r| r <= var).collect();
    Some((var, tail.iter().sum::<f64>() / tail.len() as f64))
}

impl DistributionalConfig {
    /// Check every field; errors name the field under `ppo.distributional`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_n_quantiles("ppo.distributional.n_quantiles", self.n_quantiles)?;
        if self.n_step == 0 {
            return Err(ConfigError::out_of_range(
                "ppo.distributional.n_step",
                0,
                ">= 1",
            ));
        }
        QuantileHuberConfig {
            kappa: self.kappa,
            sum_over_quantiles: true,
        }
        .validate()
        .map_err(|_| {
            ConfigError::out_of_range("ppo.distributional.kappa", self.kappa, "finite and > 0")
        })?;
        if let Some(c) = &self.cvar {
            check_alpha("ppo.distributional.cvar.alpha", c.alpha)?;
            c.objective.validate()?;
        }
        Ok(())
    }

    /// The network with this critic.
    pub fn network(&self, base: ActorCriticConfig) -> ActorCriticConfig {
        base.with_n_quantiles(self.n_quantiles)
            .with_twin_critic(self.twin_critics)
            .with_critic_reduction(self.twin_reduction)
    }

    /// The same critic on a recurrent network (the twin head shares the value encoder).
    pub fn recurrent_network(
        &self,
        base: RecurrentActorCriticConfig,
    ) -> RecurrentActorCriticConfig {
        base.with_n_quantiles(self.n_quantiles)
            .with_twin_critic(self.twin_critics)
            .with_critic_reduction(self.twin_reduction)
    }
}

/// The quantile Huber loss of every critic against shared targets (sb3-contrib's TQC form:
/// summed over the current quantiles, averaged over targets, critics and batch).
///
/// # Shapes
/// - `current`: `[batch, n_critics, N]` (with gradient)
/// - `targets`: `[batch, M]` (no gradient)
/// - output: `[1]`
pub fn distributional_critic_loss<B: Backend>(
    current: Tensor<B, 3>,
    targets: Tensor<B, 2>,
    kappa: f64,
) -> Tensor<B, 1> {
    quantile_huber_loss(
        current,
        targets.unsqueeze_dim(1),
        None,
        &QuantileHuberConfig {
            kappa,
            sum_over_quantiles: true,
        },
    )
}

/// The host-side rollout data a distributional update needs, laid out `[step][env]` like
/// [`RolloutBuffer`](crate::RolloutBuffer), with `N` quantiles per entry.
#[derive(Debug, Clone)]
pub struct DistributionalBuffer {
    /// Quantiles per distribution.
    pub n_quantiles: usize,
    /// Old (rollout-time) quantiles of each observation, critics reduced, `[T * E * N]`.
    pub quantiles: Vec<f32>,
    /// Rewards without the scalar truncation bootstrap, `[T * E]`.
    pub rewards: Vec<f32>,
    /// Whether the episode was cut by a time limit after the step (then `final_quantiles`
    /// holds the bootstrap distribution), `[T * E]`.
    pub truncated: Vec<bool>,
    /// Quantiles of the final observation where `truncated`, `[T * E * N]`.
    pub final_quantiles: Vec<f32>,
    /// Quantiles of the observation after the rollout, `[E * N]`.
    pub last_quantiles: Vec<f32>,
    /// Targets, `[T * E * N]`.
    pub targets: Vec<f32>,
    /// CVaR advantages (empty without a CVaR objective), `[T * E]`.
    pub cvar_advantages: Vec<f32>,
    /// Critic's CVaR of each observation (empty without a CVaR objective), `[T * E]`.
    pub cvar_values: Vec<f32>,
}

impl DistributionalBuffer {
    /// Zeroed buffers for `n_steps * n_envs` samples.
    pub fn new(n_steps: usize, n_envs: usize, n_quantiles: usize) -> Self {
        let n = n_steps * n_envs;
        Self {
            n_quantiles,
            quantiles: vec![0.0; n * n_quantiles],
            rewards: vec![0.0; n],
            truncated: vec![false; n],
            final_quantiles: vec![0.0; n * n_quantiles],
            last_quantiles: vec![0.0; n_envs * n_quantiles],
            targets: vec![0.0; n * n_quantiles],
            cvar_advantages: Vec::new(),
            cvar_values: Vec::new(),
        }
    }
}

/// n-step distributional targets (see the [module docs](self)), written into
/// `buffer.targets`.
///
/// `episode_starts[t * E + e]` is 1 where the observation at `t` starts an episode (so step
/// `t - 1` ended one) and `next_episode_starts[e]` the same for the observation after the
/// rollout, as for [`compute_gae`](crate::gae::compute_gae).
pub fn nstep_quantile_targets(
    buffer: &mut DistributionalBuffer,
    episode_starts: &[f32],
    next_episode_starts: &[f32],
    n_envs: usize,
    gamma: f64,
    n_step: usize,
) {
    let q = buffer.n_quantiles;
    let total = buffer.rewards.len();
    let n_steps = total / n_envs;
    let done = |s: usize, e: usize| -> bool {
        if s + 1 < n_steps {
            episode_starts[(s + 1) * n_envs + e] > 0.5
        } else {
            next_episode_starts[e] > 0.5
        }
    };
    for t in 0..n_steps {
        for e in 0..n_envs {
            let mut g = 0.0f64;
            let mut discount = 1.0f64;
            let mut k = 0;
            let bootstrap: Option<&[f32]> = loop {
                let s = t + k;
                let i = s * n_envs + e;
                g += discount * buffer.rewards[i] as f64;
                discount *= gamma;
                if done(s, e) {
                    break buffer.truncated[i].then(|| &buffer.final_quantiles[i * q..(i + 1) * q]);
                }
                k += 1;
                if k == n_step || s + 1 == n_steps {
                    break Some(if s + 1 < n_steps {
                        let j = (s + 1) * n_envs + e;
                        &buffer.quantiles[j * q..(j + 1) * q]
                    } else {
                        &buffer.last_quantiles[e * q..(e + 1) * q]
                    });
                }
            };
            let out = &mut buffer.targets[(t * n_envs + e) * q..(t * n_envs + e + 1) * q];
            match bootstrap {
                Some(theta) => {
                    for (o, &th) in out.iter_mut().zip(theta) {
                        *o = (g + discount * th as f64) as f32;
                    }
                }
                None => out.fill(g as f32),
            }
        }
    }
}

/// `CVaR_alpha` of each row of host quantiles `[n * N]` (rows sorted first).
pub fn cvar_of_rows(
    quantiles: &[f32],
    n_quantiles: usize,
    alpha: f64,
    convention: QuantileCvar,
) -> Vec<f32> {
    let w = cvar_weights(n_quantiles, alpha, convention);
    let mut row = vec![0f32; n_quantiles];
    quantiles
        .chunks_exact(n_quantiles)
        .map(|r| {
            row.copy_from_slice(r);
            row.sort_by(f32::total_cmp);
            row.iter().zip(&w).map(|(&x, &w)| x as f64 * w).sum::<f64>() as f32
        })
        .collect()
}

/// `VaR_alpha` of each row of host quantiles `[n * N]`: the `⌈αN⌉`-th smallest atom.
pub fn var_of_rows(quantiles: &[f32], n_quantiles: usize, alpha: f64) -> Vec<f32> {
    let k = ((alpha * n_quantiles as f64).ceil() as usize).clamp(1, n_quantiles) - 1;
    let mut row = vec![0f32; n_quantiles];
    quantiles
        .chunks_exact(n_quantiles)
        .map(|r| {
            row.copy_from_slice(r);
            row.sort_by(f32::total_cmp);
            row[k]
        })
        .collect()
}

/// CVaR advantages `mean_j min(target_j(t) - VaR_α(s_t), 0) / α` (see the
/// [module docs](self)) into `buffer.cvar_advantages`, from the targets of
/// [`nstep_quantile_targets`] (compute them first), and the critic's CVaR of every
/// observation into `buffer.cvar_values`.
pub fn cvar_advantages(buffer: &mut DistributionalBuffer, config: &CvarPolicyConfig) {
    let q = buffer.n_quantiles;
    let var = var_of_rows(&buffer.quantiles, q, config.alpha);
    buffer.cvar_values = cvar_of_rows(&buffer.quantiles, q, config.alpha, config.convention);
    buffer.cvar_advantages = buffer
        .targets
        .chunks_exact(q)
        .zip(&var)
        .map(|(atoms, &v)| {
            let shortfall: f64 = atoms.iter().map(|&a| (a as f64 - v as f64).min(0.0)).sum();
            (shortfall / (q as f64 * config.alpha)) as f32
        })
        .collect();
}

/// The critic's CVaR at the rollout's episode starts, averaged (`None` when the rollout has
/// no episode start): the estimate a CVaR constraint's multiplier is moved with.
pub fn cvar_at_episode_starts(cvar_values: &[f32], episode_starts: &[f32]) -> Option<f64> {
    let (sum, count) = cvar_values
        .iter()
        .zip(episode_starts)
        .filter(|(_, s)| **s > 0.5)
        .fold((0.0, 0usize), |(s, c), (&v, _)| (s + v as f64, c + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empirical_cvar_matches_the_lower_tail_convention() {
        assert_eq!(empirical_cvar(&[], 0.1), None);
        // n = 11, α = 0.2: k = floor(10 * 0.2) = 2, VaR = the third smallest (-1, tied).
        let r = [5.0, -1.0, 3.0, -4.0, 0.0, -1.0, 2.0, 1.0, 4.0, -1.0, 6.0];
        let (var, cvar) = empirical_cvar(&r, 0.2).unwrap();
        assert_eq!(var, -1.0);
        // Every return <= VaR, ties included: -4, -1, -1, -1.
        assert_eq!(cvar, -7.0 / 4.0);
        // A single sample is its own VaR and CVaR.
        assert_eq!(empirical_cvar(&[0.5], 0.05), Some((0.5, 0.5)));
        // The estimate defaults to the critic's, so configs without the field keep their meaning.
        let c: CvarPolicyConfig = serde_json::from_str(r#"{"alpha": 0.1}"#).unwrap();
        assert_eq!(c.estimate, CvarEstimate::CriticAtStarts);
        let c: CvarPolicyConfig =
            serde_json::from_str(r#"{"estimate": "episode_returns"}"#).unwrap();
        assert_eq!(c.estimate, CvarEstimate::EpisodeReturns);
        let c: CvarPolicyConfig =
            serde_json::from_str(r#"{"estimate": "greedy_evaluation"}"#).unwrap();
        assert_eq!(c.estimate, CvarEstimate::GreedyEvaluation);
        let c: CvarPolicyConfig =
            serde_json::from_str(r#"{"gradient": "episode_shortfall", "scale": "mean_advantage"}"#)
                .unwrap();
        assert_eq!(c.gradient, CvarGradient::EpisodeShortfall);
        assert_eq!(c.scale, CvarAdvantageScale::MeanAdvantage);
        // Absent, both keep the defaults (configs written before the options existed).
        let c: CvarPolicyConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.gradient, CvarGradient::StateQuantiles);
        assert_eq!(c.scale, CvarAdvantageScale::Own);
    }

    #[test]
    fn mean_advantage_scaling_centres_and_divides_by_the_mean_advantages_spread() {
        // Mean advantages 1, 3, 5: mean 3, unbiased standard deviation 2.
        let adv = [1.0f32, 3.0, 5.0];
        let mut adv_c = [-4.0f32, 0.0, 1.0];
        scale_like_mean_advantages(&mut adv_c, &adv);
        // CVaR advantages' mean -1: (-3, 1, 2) / 2.
        for (got, want) in adv_c.iter().zip([-1.5f32, 0.5, 1.0]) {
            assert!((got - want).abs() < 1e-6, "{adv_c:?}");
        }
        // One sample: unchanged (as normalize_advantages leaves it).
        let mut one = [-4.0f32];
        scale_like_mean_advantages(&mut one, &[2.0]);
        assert_eq!(one, [-4.0]);
    }

    #[test]
    fn shortfall_penalty_is_the_weighted_shortfall_below_var() {
        // (var - G)^+ / alpha, times the weight.
        assert_eq!(shortfall_penalty(-0.75, -0.25, 2.0, 0.25), 4.0);
        assert_eq!(shortfall_penalty(-0.25, -0.25, 2.0, 0.25), 0.0);
        assert_eq!(shortfall_penalty(0.5, -0.25, 2.0, 0.25), 0.0);
        assert_eq!(shortfall_penalty(-0.75, -0.25, 0.0, 0.25), 0.0);
    }

    /// Two environments, three steps, two quantiles, γ = 0.5, n = 2. Env 0: no episode end,
    /// so targets bootstrap from the state two steps ahead or the last observation. Env 1:
    /// terminates after step 0 (no bootstrap) and is cut by a time limit after step 2
    /// (bootstrap from the final observation's quantiles).
    #[test]
    fn nstep_targets_match_a_hand_computed_case() {
        let (t, e, q) = (3, 2, 2);
        let mut b = DistributionalBuffer::new(t, e, q);
        // [step][env][quantile]
        b.quantiles = vec![
            0.0, 1.0, /* env1 */ 10.0, 11.0, //
            2.0, 3.0, /* env1 */ 20.0, 21.0, //
            4.0, 5.0, /* env1 */ 30.0, 31.0,
        ];
        b.rewards = vec![1.0, 100.0, 2.0, 200.0, 3.0, 300.0];
        b.truncated = vec![false, false, false, false, false, true];
        b.final_quantiles[5 * q..6 * q].copy_from_slice(&[-8.0, 8.0]);
        b.last_quantiles = vec![6.0, 7.0, 40.0, 41.0];
        // Env 1's observation at step 1 starts an episode (step 0 terminated); after the
        // rollout env 1 starts again (step 2 was cut).
        let starts = vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let next_starts = vec![0.0, 1.0];
        nstep_quantile_targets(&mut b, &starts, &next_starts, e, 0.5, 2);
        let want = [
            // env 0, t=0: 1 + 0.5*2 + 0.25*θ(s2) = 2 + 0.25*[4, 5]
            3.0, 3.25, //
            // env 1, t=0: terminal after step 0: 100 for every quantile
            100.0, 100.0, //
            // env 0, t=1: 2 + 0.5*3 + 0.25*last = 3.5 + 0.25*[6, 7]
            5.0, 5.25, //
            // env 1, t=1: 200 + 0.5*300 + 0.25*final = 350 + 0.25*[-8, 8]
            348.0, 352.0, //
            // env 0, t=2: 3 + 0.5*last = 3 + [3, 3.5]
            6.0, 6.5, //
            // env 1, t=2: 300 + 0.5*final = 300 + [-4, 4]
            296.0, 304.0,
        ];
        for (i, (g, w)) in b.targets.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-5, "target {i}: {g} vs {w}");
        }
        // n = 1: plain one-step distributional TD targets.
        nstep_quantile_targets(&mut b, &starts, &next_starts, e, 0.5, 1);
        assert_eq!(&b.targets[0..2], &[1.0 + 0.5 * 2.0, 1.0 + 0.5 * 3.0]);
        assert_eq!(&b.targets[2..4], &[100.0, 100.0]);
    }

    #[test]
    fn cvar_advantage_is_the_mean_shortfall_of_the_target_atoms() {
        // Three samples, two quantiles, α = 0.5 (VaR = the lower atom of each state).
        let mut b = DistributionalBuffer::new(3, 1, 2);
        b.quantiles = vec![3.0, 1.0, /* */ -5.0, 4.0, /* */ 0.0, 10.0];
        b.targets = vec![2.0, -1.0, /* */ -4.0, 6.0, /* */ -3.0, -1.0];
        let config = CvarPolicyConfig {
            alpha: 0.5,
            ..Default::default()
        };
        cvar_advantages(&mut b, &config);
        // VaR 1, -5, 0. Shortfalls: (0 + -2) / 2 / 0.5 = -2; (0 + 0) = 0; (-3 + -1) / 2 / 0.5 = -4.
        assert_eq!(b.cvar_advantages, vec![-2.0, 0.0, -4.0]);
        // The critic's CVaR_0.5 of each row is its lower atom here.
        assert_eq!(b.cvar_values, vec![1.0, -5.0, 0.0]);
        assert_eq!(
            cvar_at_episode_starts(&b.cvar_values, &[1.0, 0.0, 1.0]),
            Some(0.5)
        );
        assert_eq!(
            cvar_at_episode_starts(&b.cvar_values, &[0.0, 0.0, 0.0]),
            None
        );
        assert_eq!(var_of_rows(&[4.0, 1.0, 3.0, 2.0], 4, 0.3), vec![2.0]);
    }

    #[test]
    fn bad_values_are_typed_errors_naming_the_field() {
        let c = DistributionalConfig {
            n_quantiles: 0,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ppo.distributional.n_quantiles"), "{e}");
        for alpha in [0.0, 1.0, -0.5, 1.5] {
            let c = DistributionalConfig {
                cvar: Some(CvarPolicyConfig {
                    alpha,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let e = c.validate().unwrap_err();
            assert!(matches!(e, ConfigError::OutOfRange { .. }), "{e:?}");
            assert!(e.to_string().contains("cvar.alpha"), "{e}");
        }
        let c = DistributionalConfig {
            cvar: Some(CvarPolicyConfig {
                objective: CvarObjective::Penalty { weight: -1.0 },
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("cvar.weight")
        );
    }
}

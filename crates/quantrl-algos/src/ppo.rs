//! Proximal policy optimization (Schulman et al. 2017) with Stable-Baselines3's semantics, for
//! feed-forward and recurrent policies, with or without action masks.
//!
//! The loop reads top-down: [`Ppo::collect_rollout`] fills the [`RolloutBuffer`] and computes
//! GAE, [`Ppo::update`] runs the minibatch epochs. [`Ppo::learn`] repeats both until the step
//! budget is spent, reporting [`TrainEvent`]s to a [`Callback`].
//!
//! The learner is generic over the network ([`PolicyNetwork`]). With the feed-forward
//! [`ActorCritic`] (the default type parameter) minibatches are shuffled samples, as SB3's PPO.
//! With a [`RecurrentActorCritic`] ([`RecurrentPpo`]) it is recurrent PPO, as sb3-contrib's
//! `RecurrentPPO`:
//! - the rollout carries each environment's recurrent state from step to step (and from one
//!   rollout to the next), resetting it where an episode starts, and stores the state at the
//!   first step of every training sequence;
//! - training minibatches are whole sequences of `ppo.seq_len` steps (default: the whole
//!   rollout of an environment), each replayed from its stored state with the episode starts
//!   inside it; a last, shorter sequence is padded and the padded steps are dropped before
//!   every loss term (policy, value, entropy, advantage normalization);
//! - a truncated episode is bootstrapped with `γ V(final observation)` computed from the
//!   recurrent state reached at that step.
//!
//! Options on top of the scalar-critic PPO, each off by default (the default path computes
//! exactly what it computed before they existed), for feed-forward and recurrent networks
//! alike: a quantile critic with n-step distributional targets, twin critics and a CVaR
//! objective ([`crate::distributional`]), the optimizer ([`crate::optimizer`]: AdamW, UPGD,
//! AdaUPGD) and an IRM penalty across the regimes the environment labels ([`crate::irm`]).

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData, backend::AutodiffBackend};
use quantrl_core::{Actions, ConfigError, Rng, StepBatch, VecEnv, derive_seed};
use quantrl_losses::categorical::{log_prob_entropy, one_hot};
use quantrl_losses::cvar::CvarObjective;
use quantrl_losses::host::{HostPpoBatch, ppo_loss_host};
use quantrl_losses::ppo::{
    PpoLossConfig, PpoLossInputs, clipped_surrogate, normalize_advantages, ppo_loss,
};
use quantrl_nets::{
    ActorCritic, CriticReduction, EncoderState, HostActorCritic, HostMlpTape, HostParamGrad,
    RecurrentActorCritic, load_host_params, reduce_critics,
};
use quantrl_optim::{HostAdamW, ParamGroup, clip_factor, clip_grad_norm};

use crate::distributional::{
    CvarAdvantageScale, CvarEstimate, CvarGradient, DistributionalBuffer, DistributionalConfig,
    MIN_EPISODES_FOR_CVAR, cvar_advantages, cvar_at_episode_starts, cvar_of_rows,
    distributional_critic_loss, empirical_cvar, nstep_quantile_targets, scale_like_mean_advantages,
    shortfall_penalty,
};
use crate::irm::{IrmTarget, policy_irm_penalty, value_irm_penalty};
use crate::optimizer::{AnyOptimizer, OptimizerConfig};

use crate::network::{PolicyNetwork, SequenceBatch, sequence_obs, sequence_state, state_shapes};
use crate::policy::{host_to_tensor, log_sum_exp, select_actions, tensor_to_host};
use crate::{
    AlgoError, Callback, EpisodeTracker, EvalStats, NormalizerState, RolloutBuffer, TrainConfig,
    TrainEvent, UpdateStats, gae::compute_gae,
};

/// The optimizer PPO trains with: the configured one ([`crate::OptimizerConfig`]: AdamW, UPGD
/// or AdaUPGD) with the value head in a parameter group.
pub type PpoOptimizer<B, M = ActorCritic<B>> = AnyOptimizer<M, B>;

/// The distributional critic's state between rollout and update.
pub(crate) struct DistState {
    pub(crate) config: DistributionalConfig,
    pub(crate) buffer: DistributionalBuffer,
    /// The CVaR objective, its multiplier moving with training.
    pub(crate) objective: Option<CvarObjective>,
}

/// Recurrent PPO: [`Ppo`] with a [`RecurrentActorCritic`] (GRU, LSTM, CLSTM, GTrXL or
/// transformer encoder, chosen by `policy.encoder` in the config).
pub type RecurrentPpo<B, E> = Ppo<B, E, RecurrentActorCritic<B>>;

/// A PPO learner for discrete actions: the model, its optimizer, the environments and every
/// counter needed to resume. `M` is the network: the feed-forward [`ActorCritic`] by default,
/// or a [`RecurrentActorCritic`] ([`RecurrentPpo`]).
pub struct Ppo<B: AutodiffBackend, E: VecEnv, M: AutodiffModule<B> = ActorCritic<B>> {
    /// The configuration (validated).
    pub config: TrainConfig,
    pub(crate) model: M,
    pub(crate) optim: PpoOptimizer<B, M>,
    pub(crate) env: E,
    pub(crate) batch: StepBatch,
    pub(crate) buffer: RolloutBuffer,
    /// 1 where the current observation starts an episode (the last step's done).
    pub(crate) episode_starts: Vec<f32>,
    /// The recurrent state reached by the last rollout step (empty when feed-forward).
    pub(crate) state: EncoderState<B::InnerBackend>,
    pub(crate) rng: Rng,
    pub(crate) device: B::Device,
    /// Environment steps taken (summed over environments).
    pub num_timesteps: u64,
    /// Updates done.
    pub n_updates: u64,
    pub(crate) episodes: EpisodeTracker,
    /// Distributional critic (targets, CVaR advantages); `None` for a scalar critic.
    pub(crate) dist: Option<DistState>,
    /// Regime label of every sample of the rollout, when an IRM penalty is configured.
    pub(crate) regimes: Option<Vec<u32>>,
    /// Observation and reward normalization statistics, when configured.
    pub(crate) norm: Option<NormalizerState>,
    n_actions: usize,
    obs_dim: usize,
}

impl<B, E, M> Ppo<B, E, M>
where
    B: AutodiffBackend,
    E: VecEnv,
    M: PolicyNetwork<B> + AutodiffModule<B>,
    M::InnerModule: PolicyNetwork<B::InnerBackend>,
{
    /// A fresh learner: validates the config, builds the network from `config.seed` and resets
    /// the environments. `env` must have `config.ppo.n_envs` environments and a discrete
    /// action space.
    pub fn new(config: TrainConfig, mut env: E, device: &B::Device) -> Result<Self, AlgoError> {
        config.validate()?;
        let n_actions =
            env.action_space()
                .n()
                .ok_or_else(|| AlgoError::UnsupportedActionSpace {
                    algorithm: "PPO",
                    space: env.action_space().to_string(),
                })?;
        if env.num_envs() != config.ppo.n_envs {
            return Err(quantrl_core::ConfigError::Inconsistent(format!(
                "ppo.n_envs = {} but the environment has {} copies",
                config.ppo.n_envs,
                env.num_envs()
            ))
            .into());
        }
        let obs_dim = env.observation_space().flat_dim();
        let model = M::from_config(&config, obs_dim, n_actions, device)?;
        let optim = Self::make_optimizer(&config, &model, None);
        let mut batch = StepBatch::for_env(&env);
        env.reset(Some(derive_seed(config.seed, 2)), &mut batch);
        let n_envs = config.ppo.n_envs;
        let mask_len = batch.action_masks.as_ref().map(|_| n_actions);
        let seq_len = if model.is_recurrent() {
            config.ppo.sequence_len()
        } else {
            1
        };
        let buffer = RolloutBuffer::new(config.ppo.n_steps, n_envs, obs_dim, mask_len)
            .with_sequences(seq_len, state_shapes(&model, device));
        let state = model.valid().initial_state(n_envs, device);
        let rollout = config.ppo.n_steps * n_envs;
        let regimes = match config.ppo.irm {
            Some(_) => {
                check_regime_labels(&env, "ppo.irm")?;
                Some(vec![0u32; rollout])
            }
            None => None,
        };
        let dist = config.ppo.distributional.as_ref().map(|d| DistState {
            buffer: DistributionalBuffer::new(config.ppo.n_steps, n_envs, d.n_quantiles),
            objective: d.cvar.as_ref().map(|c| c.objective.clone()),
            config: d.clone(),
        });
        let norm = config
            .ppo
            .normalize
            .as_ref()
            .map(|c| NormalizerState::new(c, n_envs, obs_dim));
        Ok(Self {
            dist,
            regimes,
            norm,
            buffer,
            state,
            episode_starts: vec![1.0; n_envs],
            rng: Rng::seed_from_u64(derive_seed(config.seed, 3)),
            device: device.clone(),
            num_timesteps: 0,
            n_updates: 0,
            episodes: EpisodeTracker::new(n_envs, 100),
            model,
            optim,
            env,
            batch,
            config,
            n_actions,
            obs_dim,
        })
    }

    /// The configured optimizer with the value head(s) in a group when
    /// `value_lr_multiplier != 1`; UPGD's noise continues `noise` (a checkpoint's) or starts
    /// from the run's seed.
    pub(crate) fn make_optimizer(
        config: &TrainConfig,
        model: &M,
        noise: Option<Rng>,
    ) -> PpoOptimizer<B, M> {
        let groups = if config.ppo.value_lr_multiplier != 1.0 {
            vec![ParamGroup {
                name: "value_head".into(),
                lr_multiplier: config.ppo.value_lr_multiplier,
                params: model.value_param_ids(),
            }]
        } else {
            vec![]
        };
        let noise = noise.unwrap_or_else(|| Rng::seed_from_u64(derive_seed(config.seed, 4)));
        config.optimizer.init::<B, M>(groups, noise)
    }

    /// Record the regime label of every rollout sample from now on (as an IRM penalty
    /// does), for analyses such as sparse IRM's probe.
    pub(crate) fn record_regimes(&mut self) -> Result<(), AlgoError> {
        if self.regimes.is_none() {
            check_regime_labels(&self.env, "recording regimes")?;
            self.regimes = Some(vec![0u32; self.config.ppo.n_steps * self.buffer.n_envs]);
        }
        Ok(())
    }

    pub(crate) fn obs_dim_(&self) -> usize {
        self.obs_dim
    }

    pub(crate) fn n_actions_(&self) -> usize {
        self.n_actions
    }

    /// The current network.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The environments.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Continue training on other environments (continual learning: a market that changes
    /// regime): `env` replaces the current ones (same number of copies, observation and
    /// action spaces), is reset from `seed`, and episode statistics and the recurrent state
    /// start afresh. The model, the optimizer state and the counters carry over. Returns the
    /// old environments.
    pub fn replace_env(&mut self, mut env: E, seed: u64) -> Result<E, AlgoError> {
        if env.num_envs() != self.config.ppo.n_envs
            || env.observation_space().flat_dim() != self.obs_dim
            || env.action_space().n() != Some(self.n_actions)
            || env.has_action_masks() != self.env.has_action_masks()
        {
            return Err(ConfigError::Inconsistent(format!(
                "replacement environment {} does not have {} copies with {} observations and \
                 {} actions",
                env.name(),
                self.config.ppo.n_envs,
                self.obs_dim,
                self.n_actions
            ))
            .into());
        }
        if self.regimes.is_some() {
            check_regime_labels(&env, "ppo.irm")?;
        }
        env.reset(Some(seed), &mut self.batch);
        self.episode_starts.fill(1.0);
        self.state = self
            .model
            .valid()
            .initial_state(self.config.ppo.n_envs, &self.device);
        self.episodes = EpisodeTracker::new(self.config.ppo.n_envs, 100);
        if let Some(norm) = &mut self.norm {
            norm.returns.fill(0.0);
        }
        Ok(std::mem::replace(&mut self.env, env))
    }

    /// The device the learner runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Fraction of the step budget spent, in `[0, 1]` (drives the schedules).
    pub fn progress(&self) -> f64 {
        (self.num_timesteps as f64 / self.config.total_steps as f64).min(1.0)
    }

    /// Whether the step budget is spent.
    pub fn is_done(&self) -> bool {
        self.num_timesteps >= self.config.total_steps
    }

    /// Mean return and length of the last 100 training episodes.
    pub fn recent_episodes(&self) -> (f64, f64) {
        self.episodes.means()
    }

    /// Step the environments `n_steps` times with the current policy, storing everything in
    /// the buffer (and, for a recurrent policy, the state at the first step of every training
    /// sequence), then compute advantages and returns. A truncated episode's reward is
    /// bootstrapped with `γ V(final observation)` (from the recurrent state reached at that
    /// step); a terminated one is not.
    pub fn collect_rollout(&mut self) -> Result<(), AlgoError> {
        let policy = self.model.valid();
        // The host snapshot (CPU fast path), when the network and the loss allow it.
        let host = self
            .host_path_covered()
            .then(|| policy.host_actor_critic())
            .flatten();
        let (n, d, a) = (self.config.ppo.n_envs, self.obs_dim, self.n_actions);
        let gamma = self.config.ppo.gamma as f32;
        let seq_len = self.buffer.seq_len;
        let mut actions = vec![0u32; n];
        let mut log_probs = vec![0f32; n];
        let mut truncated_rows: Vec<usize> = Vec::with_capacity(n);
        let zeros = vec![0f32; n];
        // Training rewards (scaled when reward normalization is on) and episode ends.
        let (mut rewards, mut dones) = (vec![0f32; n], vec![false; n]);
        let clip_reward = self.config.ppo.normalize.as_ref().map(|c| c.clip_reward);
        // The episode-shortfall CVaR gradient: `(VaR_α of the recent episodes, w, α)`, fixed
        // for the rollout.
        let shortfall = self.episode_shortfall();
        for t in 0..self.config.ppo.n_steps {
            let base = t * n;
            if t % seq_len == 0 {
                self.store_chunk_state(t / seq_len);
            }
            let (mut logits, values) = match &host {
                Some(h) => {
                    let tape = h.forward(&self.batch.obs, n);
                    (tape.logits, tape.values)
                }
                None => {
                    let out = policy.step(
                        host_to_tensor(&self.batch.obs, n, d, &self.device),
                        self.state.clone(),
                        &self.episode_starts,
                    );
                    self.state = out.state;
                    if let Some(dist) = &mut self.dist {
                        let q = dist.buffer.n_quantiles;
                        let reduced = reduced_quantiles(out.quantiles, dist.config.twin_reduction);
                        dist.buffer.quantiles[base * q..(base + n) * q].copy_from_slice(&reduced);
                    }
                    (tensor_to_host(out.logits), tensor_to_host(out.values))
                }
            };
            if let Some(regimes) = &mut self.regimes {
                for i in 0..n {
                    regimes[base + i] = self
                        .env
                        .regime_label(i)
                        .ok_or(AlgoError::MissingRegimeLabel { env: i })?
                        as u32;
                }
            }
            if let (Some(masks), Some(stored)) =
                (&self.batch.action_masks, &mut self.buffer.action_masks)
            {
                apply_mask(&mut logits, masks);
                stored[base * a..(base + n) * a].copy_from_slice(masks);
            }
            select_actions(
                &logits,
                a,
                false,
                &mut self.rng,
                &mut actions,
                &mut log_probs,
            );
            self.buffer.obs[base * d..(base + n) * d].copy_from_slice(&self.batch.obs);
            self.buffer.actions[base..base + n].copy_from_slice(&actions);
            self.buffer.values[base..base + n].copy_from_slice(&values);
            self.buffer.log_probs[base..base + n].copy_from_slice(&log_probs);
            self.buffer.episode_starts[base..base + n].copy_from_slice(&self.episode_starts);

            self.env
                .step(Actions::Discrete(&actions), &mut self.batch)?;
            self.num_timesteps += n as u64;

            truncated_rows.clear();
            rewards.copy_from_slice(&self.batch.rewards);
            for (i, d) in dones.iter_mut().enumerate() {
                *d = self.batch.done(i);
            }
            if let Some((var, weight, alpha)) = shortfall {
                for i in (0..n).filter(|&i| dones[i]) {
                    let g = self.episodes.running_return(i) + self.batch.rewards[i] as f64;
                    rewards[i] -= shortfall_penalty(g, var, weight, alpha) as f32;
                }
            }
            if let (Some(norm), Some(clip)) = (&mut self.norm, clip_reward) {
                norm.scale_rewards(&mut rewards, &dones, self.config.ppo.gamma, clip);
            }
            for i in 0..n {
                let done = dones[i];
                self.episodes.record(i, self.batch.rewards[i], done);
                self.buffer.rewards[base + i] = rewards[i];
                self.episode_starts[i] = done as u8 as f32;
                let cut = self.batch.truncated[i] && !self.batch.terminated[i];
                if cut {
                    truncated_rows.push(i);
                }
                if let Some(dist) = &mut self.dist {
                    dist.buffer.rewards[base + i] = rewards[i];
                    dist.buffer.truncated[base + i] = cut;
                }
            }
            if !truncated_rows.is_empty() {
                let k = truncated_rows.len();
                let mut final_obs = Vec::with_capacity(k * d);
                for &i in &truncated_rows {
                    final_obs.extend_from_slice(self.batch.final_obs_of(i));
                }
                let (v, reduced) = match &host {
                    Some(h) => (h.forward(&final_obs, k).values, None),
                    None => {
                        let rows: Vec<i64> = truncated_rows.iter().map(|&i| i as i64).collect();
                        let state =
                            self.state
                                .select(Tensor::<B::InnerBackend, 1, Int>::from_data(
                                    TensorData::new(rows, [k]),
                                    &self.device,
                                ));
                        let final_obs = host_to_tensor(&final_obs, k, d, &self.device);
                        values_and_quantiles(&policy, &self.dist, final_obs, state, &zeros[..k])
                    }
                };
                if let (Some(dist), Some(reduced)) = (&mut self.dist, reduced) {
                    let q = dist.buffer.n_quantiles;
                    for (j, &i) in truncated_rows.iter().enumerate() {
                        let r = base + i;
                        dist.buffer.final_quantiles[r * q..(r + 1) * q]
                            .copy_from_slice(&reduced[j * q..(j + 1) * q]);
                    }
                }
                for (j, &i) in truncated_rows.iter().enumerate() {
                    self.buffer.rewards[base + i] += gamma * v[j];
                }
            }
        }
        let (last_values, last_quantiles) = match &host {
            Some(h) => (h.forward(&self.batch.obs, n).values, None),
            None => values_and_quantiles(
                &policy,
                &self.dist,
                host_to_tensor(&self.batch.obs, n, d, &self.device),
                self.state.clone(),
                &self.episode_starts,
            ),
        };
        if let Some(dist) = &mut self.dist {
            dist.buffer.last_quantiles = last_quantiles.expect("a distributional critic");
            let p = &self.config.ppo;
            nstep_quantile_targets(
                &mut dist.buffer,
                &self.buffer.episode_starts,
                &self.episode_starts,
                n,
                p.gamma,
                dist.config.n_step,
            );
            if let Some(c) = &dist.config.cvar {
                match c.gradient {
                    CvarGradient::StateQuantiles => cvar_advantages(&mut dist.buffer, c),
                    // No surrogate term: only the critic's CVaR (a multiplier's estimate).
                    CvarGradient::EpisodeShortfall => {
                        dist.buffer.cvar_values = cvar_of_rows(
                            &dist.buffer.quantiles,
                            dist.buffer.n_quantiles,
                            c.alpha,
                            c.convention,
                        );
                    }
                }
            }
        }
        let b = &mut self.buffer;
        compute_gae(
            &b.rewards,
            &b.values,
            &b.episode_starts,
            &last_values,
            &self.episode_starts,
            self.config.ppo.gamma,
            self.config.ppo.gae_lambda,
            n,
            &mut b.advantages,
            &mut b.returns,
        );
        Ok(())
    }

    /// With the [`CvarGradient::EpisodeShortfall`] gradient and enough finished episodes,
    /// `(VaR_α of the recent training episodes' returns, the objective's weight, α)`.
    fn episode_shortfall(&self) -> Option<(f64, f64, f64)> {
        let dist = self.dist.as_ref()?;
        let c = dist.config.cvar.as_ref()?;
        if c.gradient != CvarGradient::EpisodeShortfall {
            return None;
        }
        let returns: Vec<f64> = self.episodes.recent_returns().collect();
        if returns.len() < MIN_EPISODES_FOR_CVAR {
            return None;
        }
        let (var, _) = empirical_cvar(&returns, c.alpha)?;
        Some((var, objective_weight(dist.objective.as_ref()?), c.alpha))
    }

    /// The rollout buffer (observations, actions, stored values and log-probabilities, GAE).
    pub fn rollout_buffer(&self) -> &RolloutBuffer {
        &self.buffer
    }

    /// Recompute the log-probability of every stored action and every value of the rollout
    /// through the training path (whole sequences from their stored starting states, resets
    /// and padding included), with the current network, in the buffer's `[step][env]` order.
    ///
    /// Right after [`collect_rollout`](Self::collect_rollout) and before an update, these
    /// equal the rollout's own numbers up to float rounding; any difference is a bug in how
    /// states, resets or padding are stored — this is the check the tests make.
    pub fn replay_rollout(&self) -> (Vec<f32>, Vec<f32>) {
        let b = &self.buffer;
        let (n, l, a, d) = (b.n_envs, b.seq_len, self.n_actions, self.obs_dim);
        let seqs: Vec<usize> = (0..b.n_sequences()).collect();
        let mut mb = Minibatch::default();
        self.gather(&seqs, &mut mb);
        let dev = &self.device;
        let batch = mb.sequences(seqs.len(), l, d, &b.state_shapes);
        let out = self.model.valid().forward_sequences(
            sequence_obs(&batch, dev),
            sequence_state(&batch, dev),
            batch.episode_starts,
        );
        let (mut logits, values) = (tensor_to_host(out.logits), tensor_to_host(out.values));
        let rows: Vec<usize> = match &mb.valid {
            Some(v) => v.iter().map(|&r| r as usize).collect(),
            None => (0..seqs.len() * l).collect(),
        };
        let (mut log_probs, mut vals) = (vec![0f32; b.len()], vec![0f32; b.len()]);
        for (k, &row) in rows.iter().enumerate() {
            let (s, t) = (row / l, row % l);
            let i = ((s / n) * l + t) * n + s % n;
            let lg = &mut logits[row * a..(row + 1) * a];
            if let Some(m) = &b.action_masks {
                apply_mask(lg, &m[i * a..(i + 1) * a]);
            }
            log_probs[i] = (lg[mb.act[k] as usize] as f64 - log_sum_exp(lg)) as f32;
            vals[i] = values[row];
        }
        (log_probs, vals)
    }

    /// Copy the carried recurrent state into the buffer as the starting state of chunk `c`.
    fn store_chunk_state(&mut self, c: usize) {
        if self.state.tensors.is_empty() {
            return;
        }
        let n = self.buffer.n_envs;
        for (j, t) in self.state.tensors.iter().enumerate() {
            let [a, b] = self.buffer.state_shapes[j];
            let host = tensor_to_host(t.clone());
            let len = n * a * b;
            self.buffer.chunk_states[j][c * len..(c + 1) * len].copy_from_slice(&host);
        }
    }

    /// Run the PPO epochs over the buffer: shuffled minibatches, clipped surrogate, value (or
    /// quantile critic) and entropy terms, the CVaR and IRM terms when configured, global
    /// gradient clipping, the configured optimizer; the target-KL rule may stop early.
    pub fn update(&mut self) -> Result<UpdateStats, AlgoError> {
        let p = &self.config.ppo;
        let progress = self.progress();
        let lr = p.learning_rate.value(progress);
        let loss_config = PpoLossConfig {
            clip_range: p.clip_range.value(progress),
            clip_range_vf: p.clip_range_vf,
            ent_coef: p.ent_coef,
            vf_coef: p.vf_coef,
            normalize_advantage: p.normalize_advantage,
        };
        let (batch_size, d, a) = (p.batch_size, self.obs_dim, self.n_actions);
        let (n_epochs, target_kl, max_grad_norm) = (p.n_epochs, p.target_kl, p.max_grad_norm);
        // The distributional critic replaces the scalar value loss (same coefficient).
        let (vf_coef, irm) = (p.vf_coef, p.irm);
        let loss_config = if self.dist.is_some() {
            PpoLossConfig {
                vf_coef: 0.0,
                ..loss_config
            }
        } else {
            loss_config
        };
        let seq_len = self.buffer.seq_len;
        let host_bptt = self
            .config
            .policy
            .encoder
            .as_ref()
            .is_some_and(|e| e.host_bptt);
        let seqs_per_batch = (batch_size / seq_len).max(1);
        let mut indices: Vec<usize> = (0..self.buffer.n_sequences()).collect();
        let mut logged: Vec<Tensor<B::InnerBackend, 1>> = Vec::new();
        // CVaR surrogate term and IRM penalty per minibatch, when enabled.
        let (mut cvar_logged, mut irm_logged) = (Vec::new(), Vec::new());
        let (mut targets, mut cvar_adv, mut labels) = (vec![], vec![], vec![]);
        let mut grad_norms = Vec::new();
        let mut epochs = 0;
        let mut early_stopped = false;
        let mut mb = Minibatch::default();
        // Loss terms of the minibatches trained on the host path.
        let mut host_rows: Vec<[f64; 6]> = Vec::new();
        let mut host = self
            .host_path_covered()
            .then(|| self.model.host_actor_critic())
            .flatten()
            .map(|net| self.host_train(net));
        'epochs: for _ in 0..n_epochs {
            self.rng.shuffle(&mut indices);
            for chunk in indices.chunks(seqs_per_batch) {
                self.gather(chunk, &mut mb);
                if let Some(h) = host.as_mut() {
                    let stepped =
                        self.host_minibatch(h, &mb, &loss_config, target_kl, max_grad_norm, lr);
                    let stepped = match stepped {
                        Ok(s) => s,
                        Err(e) => {
                            self.finish_host_train(host.take());
                            return Err(e);
                        }
                    };
                    match stepped {
                        Some((row, norm)) => {
                            host_rows.push(row);
                            grad_norms.push(norm);
                            continue;
                        }
                        None => {
                            early_stopped = true;
                            break 'epochs;
                        }
                    }
                }
                let dev = &self.device;
                let m = mb.act.len();
                let t1 =
                    |v: &Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v.clone(), [m]), dev);
                let fwd = self.model.forward_sequences_train(
                    mb.sequences(chunk.len(), seq_len, d, &self.buffer.state_shapes),
                    host_bptt,
                    dev,
                );
                let (mut logits, mut values, mut quantiles) =
                    (fwd.logits, fwd.values, fwd.quantiles);
                if let Some(valid) = &mb.valid {
                    let idx = Tensor::<B, 1, Int>::from_data(
                        TensorData::new(valid.clone(), [valid.len()]),
                        dev,
                    );
                    logits = logits.select(0, idx.clone());
                    values = values.select(0, idx.clone());
                    quantiles = quantiles.map(|q| q.select(0, idx));
                }
                let logits = if mb.mask.is_empty() {
                    logits
                } else {
                    logits
                        + Tensor::<B, 2>::from_data(TensorData::new(mb.mask.clone(), [m, a]), dev)
                };
                let actions_one_hot: Tensor<B, 2> =
                    Tensor::from_data(TensorData::new(one_hot(&mb.act, a), [m, a]), dev);
                let (log_prob, entropy) = log_prob_entropy(logits.clone(), actions_one_hot.clone());
                let terms = ppo_loss(
                    PpoLossInputs {
                        log_prob: log_prob.clone(),
                        old_log_prob: t1(&mb.lp),
                        entropy,
                        advantages: t1(&mb.adv),
                        values: values.clone(),
                        old_values: t1(&mb.val),
                        returns: t1(&mb.ret),
                    },
                    &loss_config,
                );
                let mut loss = terms.loss.clone();
                let mut value_loss = terms.value_loss.clone();
                if let Some(dist) = &self.dist {
                    let q = dist.buffer.n_quantiles;
                    gather_rows(&dist.buffer.targets, q, &mb.rows, &mut targets);
                    let critic_loss = distributional_critic_loss(
                        quantiles.expect("a distributional config builds a quantile critic"),
                        Tensor::from_data(TensorData::new(targets.clone(), [m, q]), dev),
                        dist.config.kappa,
                    );
                    loss = loss + critic_loss.clone().mul_scalar(vf_coef);
                    value_loss = critic_loss;
                    if let Some(objective) = &dist.objective
                        && let Some(c) = &dist.config.cvar
                        && c.gradient == CvarGradient::StateQuantiles
                    {
                        gather_rows(&dist.buffer.cvar_advantages, 1, &mb.rows, &mut cvar_adv);
                        let adv_c = match (loss_config.normalize_advantage, c.scale) {
                            (false, _) => t1(&cvar_adv),
                            (true, CvarAdvantageScale::Own) => normalize_advantages(t1(&cvar_adv)),
                            (true, CvarAdvantageScale::MeanAdvantage) => {
                                scale_like_mean_advantages(&mut cvar_adv, &mb.adv);
                                t1(&cvar_adv)
                            }
                        };
                        let (surrogate_loss, _) = clipped_surrogate(
                            log_prob.clone(),
                            t1(&mb.lp),
                            adv_c,
                            loss_config.clip_range,
                        );
                        let cvar_term = objective.loss(surrogate_loss.neg());
                        cvar_logged.push(cvar_term.clone().inner());
                        loss = loss + cvar_term;
                    }
                }
                if let (Some(irm), Some(regimes)) = (irm, &self.regimes) {
                    labels.clear();
                    labels.extend(mb.rows.iter().map(|&i| regimes[i] as usize));
                    let mut penalty: Option<Tensor<B, 1>> = None;
                    if matches!(irm.target, IrmTarget::Policy | IrmTarget::Both) {
                        let adv_t = t1(&mb.adv);
                        let adv_t = if loss_config.normalize_advantage {
                            normalize_advantages(adv_t)
                        } else {
                            adv_t
                        };
                        penalty = policy_irm_penalty(
                            logits,
                            actions_one_hot,
                            log_prob,
                            t1(&mb.lp),
                            adv_t,
                            &labels,
                        )
                        .map(|t| t.penalty_mean);
                    }
                    if matches!(irm.target, IrmTarget::Value | IrmTarget::Both)
                        && let Some(t) = value_irm_penalty(values, t1(&mb.ret), &labels)
                    {
                        penalty = Some(match penalty {
                            Some(p) => p + t.penalty_mean,
                            None => t.penalty_mean,
                        });
                    }
                    if let Some(p) = penalty {
                        irm_logged.push(p.clone().inner());
                        loss = loss + p.mul_scalar(irm.penalty_weight);
                    }
                }
                if let Some(kl) = target_kl {
                    let approx_kl: f64 = terms.approx_kl.clone().into_scalar().elem();
                    if approx_kl > 1.5 * kl {
                        early_stopped = true;
                        break 'epochs;
                    }
                }
                let row = Tensor::cat(
                    vec![
                        loss.clone().inner(),
                        terms.policy_loss.inner(),
                        value_loss.inner(),
                        terms.entropy_loss.inner(),
                        terms.approx_kl.inner(),
                        terms.clip_fraction.inner(),
                    ],
                    0,
                );
                logged.push(row);
                let mut raw = loss.backward();
                let host_grads = fwd.host.as_ref().map(|h| h.param_grads(&raw));
                let mut grads = GradientsParams::from_module(&mut raw, &self.model);
                for g in host_grads.into_iter().flatten() {
                    register_host_grad::<B>(g, &mut grads, dev);
                }
                let norm = clip_grad_norm(&self.model, &mut grads, max_grad_norm);
                if !norm.is_finite() {
                    return Err(AlgoError::Diverged {
                        update: self.n_updates,
                        what: "gradient norm".into(),
                    });
                }
                grad_norms.push(norm);
                self.model = self.optim.step(lr, self.model.clone(), grads);
            }
            epochs += 1;
        }
        self.finish_host_train(host);
        self.n_updates += 1;
        let k = (logged.len() + host_rows.len()).max(1) as f64;
        let mut sums = [0f64; 6];
        for row in &host_rows {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
        if !logged.is_empty() {
            let all = tensor_to_host(Tensor::cat(logged, 0));
            for row in all.chunks_exact(6) {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
        }
        if !sums[0].is_finite() {
            return Err(AlgoError::Diverged {
                update: self.n_updates,
                what: "loss".into(),
            });
        }
        let mean_of = |v: Vec<Tensor<B::InnerBackend, 1>>| {
            (!v.is_empty()).then(|| {
                let k = v.len() as f64;
                tensor_to_host(Tensor::cat(v, 0))
                    .iter()
                    .map(|&x| x as f64)
                    .sum::<f64>()
                    / k
            })
        };
        let (cvar_loss, irm_penalty) = (mean_of(cvar_logged), mean_of(irm_logged));
        let (mut cvar_estimate, mut cvar_weight) = (None, None);
        if let Some(dist) = &mut self.dist
            && let Some(objective) = &mut dist.objective
        {
            let c = dist
                .config
                .cvar
                .as_ref()
                .expect("an objective comes from a CVaR config");
            cvar_estimate = match c.estimate {
                CvarEstimate::CriticAtStarts => {
                    cvar_at_episode_starts(&dist.buffer.cvar_values, &self.buffer.episode_starts)
                }
                CvarEstimate::EpisodeReturns => {
                    let returns: Vec<f64> = self.episodes.recent_returns().collect();
                    (returns.len() >= MIN_EPISODES_FOR_CVAR)
                        .then(|| empirical_cvar(&returns, c.alpha))
                        .flatten()
                        .map(|(_, cvar)| cvar)
                }
                // Moved in `learn_with`, after each evaluation.
                CvarEstimate::GreedyEvaluation => None,
            };
            cvar_weight = Some(match cvar_estimate {
                Some(c) => objective.update(c),
                None => objective_weight(objective),
            });
        }
        self.update_obs_stats();
        let (ep_return_mean, ep_length_mean) = self.episodes.means();
        Ok(UpdateStats {
            timesteps: self.num_timesteps,
            updates: self.n_updates,
            learning_rate: lr,
            clip_range: loss_config.clip_range,
            loss: sums[0] / k,
            policy_loss: sums[1] / k,
            value_loss: sums[2] / k,
            entropy_loss: sums[3] / k,
            approx_kl: sums[4] / k,
            clip_fraction: sums[5] / k,
            grad_norm: grad_norms.iter().sum::<f64>() / grad_norms.len().max(1) as f64,
            explained_variance: self.buffer.explained_variance(),
            epochs,
            early_stopped,
            ep_return_mean,
            ep_length_mean,
            rollout_seconds: 0.0,
            update_seconds: 0.0,
            cvar_loss,
            cvar_estimate,
            cvar_weight,
            irm_penalty,
        })
    }

    /// Whether rollouts and updates may take the host path (`policy.host_mlp`): its loss is
    /// the plain PPO loss, so not with a quantile critic or an IRM penalty. The network must
    /// also have a host snapshot ([`PolicyNetwork::host_actor_critic`]).
    fn host_path_covered(&self) -> bool {
        self.config.policy.host_mlp && self.dist.is_none() && self.config.ppo.irm.is_none()
    }

    /// The host path's state for one update, from a snapshot of the current weights: with
    /// AdamW also the optimizer's state and the parameters, stepped on the host until
    /// [`finish_host_train`](Self::finish_host_train) puts both back.
    fn host_train(&self, net: HostActorCritic) -> HostTrain {
        let adam = match (&self.optim, &self.config.optimizer) {
            (AnyOptimizer::AdamW(optim), OptimizerConfig::AdamW(settings)) => {
                let params = net.params();
                let adam = HostAdamW::take(
                    *settings,
                    optim,
                    params.iter().map(|p| (p.id, p.shape.clone())),
                );
                Some((adam, params))
            }
            _ => None,
        };
        HostTrain {
            net,
            adam,
            tape: HostMlpTape::default(),
            grads: Vec::new(),
        }
    }

    /// End a host-path update: the host-stepped weights into the model and the AdamW state
    /// into the optimizer, so that rollouts, evaluation and checkpoints see them.
    fn finish_host_train(&mut self, host: Option<HostTrain>) {
        let Some((adam, params)) = host.and_then(|h| h.adam) else {
            return;
        };
        self.model = load_host_params(self.model.clone(), &params);
        if let AnyOptimizer::AdamW(optim) = &mut self.optim {
            *optim = adam.put(optim.clone(), &self.device);
        }
    }

    /// One minibatch on the host path: forward and loss on the host, gradients by hand,
    /// global-norm clipping, then the optimizer's step (AdamW on the host, any other optimizer
    /// through Burn, after which the snapshot is taken again). `None` when the target KL stops
    /// the update before this step; otherwise the logged loss terms and the gradient norm.
    fn host_minibatch(
        &mut self,
        train: &mut HostTrain,
        mb: &Minibatch,
        loss_config: &PpoLossConfig,
        target_kl: Option<f64>,
        max_grad_norm: f64,
        lr: f64,
    ) -> Result<Option<([f64; 6], f64)>, AlgoError> {
        let m = mb.act.len();
        let host = &train.net;
        let tape = &mut train.tape;
        host.forward_into(&mb.obs, m, tape);
        // The backward pass does not read the logits: add the masks in place.
        let logits = &mut tape.logits;
        for (l, &mask) in logits.iter_mut().zip(&mb.mask) {
            *l += mask;
        }
        let l = ppo_loss_host(
            &HostPpoBatch {
                logits: &tape.logits,
                n_actions: self.n_actions,
                actions: &mb.act,
                old_log_prob: &mb.lp,
                advantages: &mb.adv,
                values: &tape.values,
                old_values: &mb.val,
                returns: &mb.ret,
            },
            loss_config,
        );
        if target_kl.is_some_and(|kl| l.approx_kl > 1.5 * kl) {
            return Ok(None);
        }
        let host_grads = &mut train.grads;
        host.backward_into(tape, &l.d_logits, &l.d_values, host_grads);
        let norm = host_grads
            .iter()
            .flat_map(|g| &g.values)
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() {
            return Err(AlgoError::Diverged {
                update: self.n_updates,
                what: "gradient norm".into(),
            });
        }
        if let Some(factor) = clip_factor(norm, max_grad_norm) {
            for g in host_grads.iter_mut() {
                g.values.iter_mut().for_each(|v| *v *= factor as f32);
            }
        }
        if let Some((adam, params)) = &mut train.adam {
            for (i, (p, g)) in params.iter_mut().zip(host_grads.iter()).enumerate() {
                debug_assert_eq!(p.id, g.id, "parameter order");
                adam.step(lr, i, &mut p.values, &g.values);
            }
            train.net.set_params(params);
        } else {
            let mut grads = GradientsParams::new();
            for g in std::mem::take(host_grads) {
                register_host_grad::<B>(g, &mut grads, &self.device);
            }
            self.model = self.optim.step(lr, self.model.clone(), grads);
            train.net = self
                .model
                .host_actor_critic()
                .expect("the network had a host snapshot before the step");
        }
        let row = [
            l.loss,
            l.policy_loss,
            l.value_loss,
            l.entropy_loss,
            l.approx_kl,
            l.clip_fraction,
        ];
        Ok(Some((row, norm)))
    }

    /// Move the observation statistics with the rollout just trained on and hand them to the
    /// network (see [`crate::normalize`]).
    fn update_obs_stats(&mut self) {
        let Some(rms) = self.norm.as_mut().and_then(|n| n.obs.as_mut()) else {
            return;
        };
        rms.update(&self.buffer.obs);
        let (mean, var) = rms.as_f32();
        self.model = self.model.clone().with_obs_stats(&mean, &var);
    }

    /// Copy the training sequences `seqs` out of the buffer into `mb` (reused between
    /// calls): observations and episode starts padded to whole sequences, the stored starting
    /// states, and the per-sample targets of the valid (unpadded) steps only.
    fn gather(&self, seqs: &[usize], mb: &mut Minibatch) {
        let b = &self.buffer;
        let (d, n, l, a) = (self.obs_dim, b.n_envs, b.seq_len, self.n_actions);
        mb.clear(b.chunk_states.len());
        let mut valid: Vec<i64> = Vec::new();
        let mut padded = false;
        for (k, &s) in seqs.iter().enumerate() {
            let (c, e) = (s / n, s % n);
            for (j, states) in b.chunk_states.iter().enumerate() {
                let [sa, sb] = b.state_shapes[j];
                let len = sa * sb;
                let at = (c * n + e) * len;
                mb.states[j].extend_from_slice(&states[at..at + len]);
            }
            for t in 0..l {
                let step = c * l + t;
                if step >= b.n_steps {
                    padded = true;
                    mb.obs.extend(std::iter::repeat_n(0.0, d));
                    mb.starts.push(1.0);
                    continue;
                }
                let i = step * n + e;
                valid.push((k * l + t) as i64);
                mb.rows.push(i);
                mb.obs.extend_from_slice(&b.obs[i * d..(i + 1) * d]);
                mb.starts.push(b.episode_starts[i]);
                mb.act.push(b.actions[i]);
                mb.lp.push(b.log_probs[i]);
                mb.adv.push(b.advantages[i]);
                mb.val.push(b.values[i]);
                mb.ret.push(b.returns[i]);
                if let Some(m) = &b.action_masks {
                    mb.mask.extend(
                        m[i * a..(i + 1) * a]
                            .iter()
                            .map(|&ok| if ok { 0.0 } else { MASKED_LOGIT }),
                    );
                }
            }
        }
        mb.valid = padded.then_some(valid);
    }

    /// One iteration: a rollout and an update, timed.
    pub fn train_iteration(&mut self) -> Result<UpdateStats, AlgoError> {
        let t0 = Instant::now();
        self.collect_rollout()?;
        let t1 = Instant::now();
        let mut stats = self.update()?;
        stats.rollout_seconds = (t1 - t0).as_secs_f64();
        stats.update_seconds = t1.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// Deterministic evaluation of the current policy on `env` (a separate instance).
    pub fn evaluate<E2: VecEnv + ?Sized>(
        &self,
        env: &mut E2,
        episodes: usize,
        seed: u64,
    ) -> Result<EvalStats, AlgoError> {
        let mut stats = crate::policy::evaluate::<B::InnerBackend, _, _>(
            &self.model.valid(),
            env,
            episodes,
            seed,
            true,
            &self.device,
        )?;
        stats.timesteps = self.num_timesteps;
        Ok(stats)
    }

    /// With a CVaR constraint whose estimate is [`CvarEstimate::GreedyEvaluation`], one dual
    /// step of its multiplier with the empirical CVaR of `eval`'s returns; otherwise nothing.
    /// Returns the CVaR estimate used.
    pub fn move_multiplier_with_evaluation(&mut self, eval: &EvalStats) -> Option<f64> {
        let dist = self.dist.as_mut()?;
        let c = dist.config.cvar.as_ref()?;
        let objective = dist.objective.as_mut()?;
        if c.estimate != CvarEstimate::GreedyEvaluation {
            return None;
        }
        let (_, cvar) = empirical_cvar(&eval.returns, c.alpha)?;
        objective.update(cvar);
        Some(cvar)
    }

    /// Train until the step budget is spent or the callback says stop. When `eval_env` is
    /// given, the policy is evaluated every `config.eval.every` steps (0: never periodically)
    /// and once at the end; `config.eval.stop_at_return` stops training once reached.
    pub fn learn<E2: VecEnv + ?Sized>(
        &mut self,
        eval_env: Option<&mut E2>,
        callback: &mut dyn Callback,
    ) -> Result<Option<EvalStats>, AlgoError> {
        self.learn_with(eval_env, None, callback)
    }

    /// [`Ppo::learn`], also writing a checkpoint to `checkpoint_dir` every
    /// `config.checkpoint_every` steps (0: only at the end) and when training ends, early stop
    /// included. Every update, evaluation and checkpoint is reported to `callback`.
    pub fn learn_with<E2: VecEnv + ?Sized>(
        &mut self,
        mut eval_env: Option<&mut E2>,
        checkpoint_dir: Option<&Path>,
        callback: &mut dyn Callback,
    ) -> Result<Option<EvalStats>, AlgoError> {
        let every = self.config.eval.every;
        let mut next_eval = next_multiple_after(self.num_timesteps, every);
        let mut next_checkpoint =
            next_multiple_after(self.num_timesteps, self.config.checkpoint_every);
        let mut last_eval = None;
        if self.is_done() {
            return Ok(None);
        }
        loop {
            let stats = self.train_iteration()?;
            let mut stop = callback.on_event(&TrainEvent::Update(stats)).is_break();
            let due = self.num_timesteps >= next_eval || self.is_done() || stop;
            if let (Some(env), true) = (eval_env.as_deref_mut(), due) {
                // The seed depends on the step count only, so a resumed run evaluates on the
                // same episodes as an uninterrupted one.
                let seed = derive_seed(self.config.seed, 1_000_000 + self.num_timesteps);
                let e = self.evaluate(env, self.config.eval.episodes, seed)?;
                self.move_multiplier_with_evaluation(&e);
                next_eval = next_multiple_after(self.num_timesteps, every);
                stop |= callback.on_event(&TrainEvent::Eval(e.clone())).is_break();
                stop |= self
                    .config
                    .eval
                    .stop_at_return
                    .is_some_and(|t| e.mean_return >= t);
                last_eval = Some(e);
            }
            let finished = stop || self.is_done();
            if let Some(dir) = checkpoint_dir
                && (finished || self.num_timesteps >= next_checkpoint)
            {
                self.save_checkpoint(dir)?;
                next_checkpoint =
                    next_multiple_after(self.num_timesteps, self.config.checkpoint_every);
                let _ = callback.on_event(&TrainEvent::Checkpoint {
                    timesteps: self.num_timesteps,
                    path: dir.display().to_string(),
                });
            }
            if finished {
                return Ok(last_eval);
            }
        }
    }
}

/// One minibatch of training sequences on the host (see `Ppo::gather`).
#[derive(Debug, Default)]
struct Minibatch {
    /// Observations, `[seqs, seq_len, obs_dim]` with padding.
    obs: Vec<f32>,
    /// Episode starts, `[seqs, seq_len]` with padding.
    starts: Vec<f32>,
    /// Starting state of each sequence, one vector per state tensor.
    states: Vec<Vec<f32>>,
    /// Rows of the flattened `[seqs * seq_len]` outputs that are real steps; `None` when none
    /// is padded.
    valid: Option<Vec<i64>>,
    /// Buffer index (`step * n_envs + env`) of every valid step, in minibatch order.
    rows: Vec<usize>,
    act: Vec<u32>,
    lp: Vec<f32>,
    adv: Vec<f32>,
    val: Vec<f32>,
    ret: Vec<f32>,
    /// Additive logit masks of the valid steps, `[valid, n_actions]` (empty without masks).
    mask: Vec<f32>,
}

impl Minibatch {
    /// The gathered sequences as the network's input.
    fn sequences<'a>(
        &'a self,
        seqs: usize,
        len: usize,
        obs_dim: usize,
        state_shapes: &'a [[usize; 2]],
    ) -> SequenceBatch<'a> {
        SequenceBatch {
            obs: &self.obs,
            seqs,
            len,
            obs_dim,
            state0: &self.states,
            state_shapes,
            episode_starts: &self.starts,
        }
    }

    fn clear(&mut self, n_state_tensors: usize) {
        self.obs.clear();
        self.starts.clear();
        self.states.resize_with(n_state_tensors, Vec::new);
        self.states.iter_mut().for_each(Vec::clear);
        self.valid = None;
        self.rows.clear();
        self.act.clear();
        self.lp.clear();
        self.adv.clear();
        self.val.clear();
        self.ret.clear();
        self.mask.clear();
    }
}

/// `what` (an IRM penalty, sparse IRM's probe) needs the environment's regime labels.
pub(crate) fn check_regime_labels<E: VecEnv>(env: &E, what: &str) -> Result<(), AlgoError> {
    match env.regime_label(0) {
        Some(_) => Ok(()),
        None => Err(ConfigError::Inconsistent(format!(
            "{what} needs regime labels, and the environment {} gives none",
            env.name()
        ))
        .into()),
    }
}

/// The values of one step on the host and, with a distributional critic, its reduced
/// quantiles (`[batch * N]`); without one only the (cheaper) value path runs.
fn values_and_quantiles<B: burn::tensor::backend::Backend, M: PolicyNetwork<B>>(
    policy: &M,
    dist: &Option<DistState>,
    obs: Tensor<B, 2>,
    state: EncoderState<B>,
    episode_start: &[f32],
) -> (Vec<f32>, Option<Vec<f32>>) {
    match dist {
        None => (
            tensor_to_host(policy.step_values(obs, state, episode_start)),
            None,
        ),
        Some(dist) => {
            let out = policy.step(obs, state, episode_start);
            let reduced = reduced_quantiles(out.quantiles, dist.config.twin_reduction);
            (tensor_to_host(out.values), Some(reduced))
        }
    }
}

/// The weight a CVaR objective puts on its term now.
fn objective_weight(objective: &CvarObjective) -> f64 {
    match objective {
        CvarObjective::Penalty { weight } => *weight,
        CvarObjective::Constraint(m) => m.multiplier,
    }
}

/// A forward pass's critics' quantiles reduced to one distribution per row, on the host
/// (`[batch * N]`).
fn reduced_quantiles<B: burn::tensor::backend::Backend>(
    quantiles: Option<Tensor<B, 3>>,
    reduction: CriticReduction,
) -> Vec<f32> {
    let q = quantiles.expect("a distributional config builds a quantile critic");
    tensor_to_host(reduce_critics(q, reduction))
}

/// Rows `idx` of a host matrix with `width` columns, into `out`.
fn gather_rows(data: &[f32], width: usize, idx: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &i in idx {
        out.extend_from_slice(&data[i * width..(i + 1) * width]);
    }
}

/// Add a gradient computed on the host (see [`crate::TrainForward::host`]) to `grads`.
fn register_host_grad<B: AutodiffBackend>(
    g: HostParamGrad,
    grads: &mut GradientsParams,
    device: &B::Device,
) {
    match g.shape[..] {
        [n] => grads.register::<B::InnerBackend, 1>(
            g.id,
            Tensor::from_data(TensorData::new(g.values, [n]), device),
        ),
        [r, c] => grads.register::<B::InnerBackend, 2>(
            g.id,
            Tensor::from_data(TensorData::new(g.values, [r, c]), device),
        ),
        [k, r, c] => grads.register::<B::InnerBackend, 3>(
            g.id,
            Tensor::from_data(TensorData::new(g.values, [k, r, c]), device),
        ),
        _ => unreachable!("host gradients have one to three dimensions"),
    }
}

/// The host path's state during one update (see [`Ppo::update`]).
struct HostTrain {
    /// The network's weights as they are now.
    net: HostActorCritic,
    /// With AdamW: its state and the parameters (the values `net` holds), stepped on the
    /// host and written back when the update ends.
    adam: Option<(HostAdamW, Vec<HostParamGrad>)>,
    /// The forward pass's tape and the gradients, their buffers reused minibatch after
    /// minibatch.
    tape: HostMlpTape,
    grads: Vec<HostParamGrad>,
}

/// The logit given to masked actions: large enough to give them probability 0 in float32
/// (`exp(-1e8)` underflows to 0), finite so that no NaN can appear.
pub const MASKED_LOGIT: f32 = -1e8;

/// Set the logits of disallowed actions to [`MASKED_LOGIT`].
pub fn apply_mask(logits: &mut [f32], mask: &[bool]) {
    for (l, &ok) in logits.iter_mut().zip(mask) {
        if !ok {
            *l = MASKED_LOGIT;
        }
    }
}

/// The first multiple of `every` strictly after `now`; `u64::MAX` when `every` is 0 (never).
pub fn next_multiple_after(now: u64, every: u64) -> u64 {
    now.checked_div(every)
        .map_or(u64::MAX, |k| (k + 1).saturating_mul(every))
}

/// A callback that never stops training.
pub fn no_callback() -> impl Callback {
    |_: &TrainEvent| ControlFlow::Continue(())
}

use burn::tensor::ElementConversion as _;

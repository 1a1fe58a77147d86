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

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamW, GradientsParams, Optimizer, adaptor::OptimizerAdaptor};
use burn::tensor::{Int, Tensor, TensorData, backend::AutodiffBackend};
use quantrl_core::{Actions, Rng, StepBatch, VecEnv, derive_seed};
use quantrl_losses::categorical::{log_prob_entropy, one_hot};
use quantrl_losses::ppo::{PpoLossConfig, PpoLossInputs, ppo_loss};
use quantrl_nets::{ActorCritic, EncoderState, HostParamGrad, RecurrentActorCritic};
use quantrl_optim::{GroupedOptimizer, ParamGroup, clip_grad_norm};

use crate::network::{PolicyNetwork, SequenceBatch, sequence_obs, sequence_state, state_shapes};
use crate::policy::{host_to_tensor, log_sum_exp, select_actions, tensor_to_host};
use crate::{
    AlgoError, Callback, EpisodeTracker, EvalStats, RolloutBuffer, TrainConfig, TrainEvent,
    UpdateStats, gae::compute_gae,
};

/// The optimizer PPO trains with: Burn's AdamW with parameter groups.
pub type PpoOptimizer<B, M = ActorCritic<B>> = GroupedOptimizer<OptimizerAdaptor<AdamW, M, B>>;

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
        let optim = Self::make_optimizer(&config, &model);
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
        Ok(Self {
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

    pub(crate) fn make_optimizer(config: &TrainConfig, model: &M) -> PpoOptimizer<B, M> {
        let groups = if config.ppo.value_lr_multiplier != 1.0 {
            vec![ParamGroup {
                name: "value_head".into(),
                lr_multiplier: config.ppo.value_lr_multiplier,
                params: model.value_param_ids(),
            }]
        } else {
            vec![]
        };
        GroupedOptimizer::new(config.optimizer.init::<B, M>(), groups)
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
        let (n, d, a) = (self.config.ppo.n_envs, self.obs_dim, self.n_actions);
        let gamma = self.config.ppo.gamma as f32;
        let seq_len = self.buffer.seq_len;
        let mut actions = vec![0u32; n];
        let mut log_probs = vec![0f32; n];
        let mut truncated_rows: Vec<usize> = Vec::with_capacity(n);
        let zeros = vec![0f32; n];
        for t in 0..self.config.ppo.n_steps {
            let base = t * n;
            if t % seq_len == 0 {
                self.store_chunk_state(t / seq_len);
            }
            let out = policy.step(
                host_to_tensor(&self.batch.obs, n, d, &self.device),
                self.state.clone(),
                &self.episode_starts,
            );
            self.state = out.state;
            let mut logits = tensor_to_host(out.logits);
            let values = tensor_to_host(out.values);
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
            for i in 0..n {
                let done = self.batch.done(i);
                self.episodes.record(i, self.batch.rewards[i], done);
                self.buffer.rewards[base + i] = self.batch.rewards[i];
                self.episode_starts[i] = done as u8 as f32;
                if self.batch.truncated[i] && !self.batch.terminated[i] {
                    truncated_rows.push(i);
                }
            }
            if !truncated_rows.is_empty() {
                let k = truncated_rows.len();
                let mut final_obs = Vec::with_capacity(k * d);
                for &i in &truncated_rows {
                    final_obs.extend_from_slice(self.batch.final_obs_of(i));
                }
                let rows: Vec<i64> = truncated_rows.iter().map(|&i| i as i64).collect();
                let state = self
                    .state
                    .select(Tensor::<B::InnerBackend, 1, Int>::from_data(
                        TensorData::new(rows, [k]),
                        &self.device,
                    ));
                let v = tensor_to_host(policy.step_values(
                    host_to_tensor(&final_obs, k, d, &self.device),
                    state,
                    &zeros[..k],
                ));
                for (j, &i) in truncated_rows.iter().enumerate() {
                    self.buffer.rewards[base + i] += gamma * v[j];
                }
            }
        }
        let last_values = tensor_to_host(policy.step_values(
            host_to_tensor(&self.batch.obs, n, d, &self.device),
            self.state.clone(),
            &self.episode_starts,
        ));
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
        let (logits, values) = self.model.valid().forward_sequences(
            sequence_obs(&batch, dev),
            sequence_state(&batch, dev),
            batch.episode_starts,
        );
        let (mut logits, values) = (tensor_to_host(logits), tensor_to_host(values));
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

    /// Run the PPO epochs over the buffer: shuffled minibatches, clipped surrogate, value and
    /// entropy terms, global gradient clipping, AdamW; the target-KL rule may stop early.
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
        let mut grad_norms = Vec::new();
        let mut epochs = 0;
        let mut early_stopped = false;
        let mut mb = Minibatch::default();
        'epochs: for _ in 0..n_epochs {
            self.rng.shuffle(&mut indices);
            for chunk in indices.chunks(seqs_per_batch) {
                self.gather(chunk, &mut mb);
                let dev = &self.device;
                let m = mb.act.len();
                let t1 =
                    |v: &Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v.clone(), [m]), dev);
                let fwd = self.model.forward_sequences_train(
                    mb.sequences(chunk.len(), seq_len, d, &self.buffer.state_shapes),
                    host_bptt,
                    dev,
                );
                let (mut logits, mut values) = (fwd.logits, fwd.values);
                if let Some(valid) = &mb.valid {
                    let idx = Tensor::<B, 1, Int>::from_data(
                        TensorData::new(valid.clone(), [valid.len()]),
                        dev,
                    );
                    logits = logits.select(0, idx.clone());
                    values = values.select(0, idx);
                }
                let logits = if mb.mask.is_empty() {
                    logits
                } else {
                    logits
                        + Tensor::<B, 2>::from_data(TensorData::new(mb.mask.clone(), [m, a]), dev)
                };
                let (log_prob, entropy) = log_prob_entropy(
                    logits,
                    Tensor::from_data(TensorData::new(one_hot(&mb.act, a), [m, a]), dev),
                );
                let terms = ppo_loss(
                    PpoLossInputs {
                        log_prob,
                        old_log_prob: t1(&mb.lp),
                        entropy,
                        advantages: t1(&mb.adv),
                        values,
                        old_values: t1(&mb.val),
                        returns: t1(&mb.ret),
                    },
                    &loss_config,
                );
                if let Some(kl) = target_kl {
                    let approx_kl: f64 = terms.approx_kl.clone().into_scalar().elem();
                    if approx_kl > 1.5 * kl {
                        early_stopped = true;
                        break 'epochs;
                    }
                }
                let row = Tensor::cat(
                    vec![
                        terms.loss.clone().inner(),
                        terms.policy_loss.inner(),
                        terms.value_loss.inner(),
                        terms.entropy_loss.inner(),
                        terms.approx_kl.inner(),
                        terms.clip_fraction.inner(),
                    ],
                    0,
                );
                logged.push(row);
                let mut raw = terms.loss.backward();
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
        self.n_updates += 1;
        let k = logged.len().max(1) as f64;
        let mut sums = [0f64; 6];
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
        })
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
        self.act.clear();
        self.lp.clear();
        self.adv.clear();
        self.val.clear();
        self.ret.clear();
        self.mask.clear();
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
        _ => unreachable!("host gradients are vectors or matrices"),
    }
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

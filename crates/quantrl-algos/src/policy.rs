//! Acting with a categorical actor-critic (feed-forward or recurrent): sampling on the host,
//! evaluation, and a stateful [`Agent`] for prediction step by step.

use burn::tensor::{Device, Tensor, TensorData, backend::Backend};
use quantrl_core::{Actions, Rng, StepBatch, VecEnv};
use quantrl_nets::EncoderState;

use crate::network::PolicyNetwork;
use crate::{AlgoError, EvalStats};

/// Log-sum-exp of one row of logits, in f64.
#[inline]
pub(crate) fn log_sum_exp(row: &[f32]) -> f64 {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
}

/// Pick one action per row of `logits` (`[n, n_actions]`, row-major): the argmax when
/// `deterministic`, else a draw from the softmax. Writes the action and its log-probability.
pub fn select_actions(
    logits: &[f32],
    n_actions: usize,
    deterministic: bool,
    rng: &mut Rng,
    actions: &mut [u32],
    log_probs: &mut [f32],
) {
    let mut probs = vec![0f32; n_actions];
    for (i, row) in logits.chunks_exact(n_actions).enumerate() {
        let lse = log_sum_exp(row);
        let a = if deterministic {
            row.iter()
                .enumerate()
                .fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
        } else {
            for (p, &l) in probs.iter_mut().zip(row) {
                *p = (l as f64 - lse).exp() as f32;
            }
            rng.categorical(&probs)
        };
        actions[i] = a as u32;
        log_probs[i] = (row[a] as f64 - lse) as f32;
    }
}

/// A `[n, dim]` tensor from a host slice.
pub fn host_to_tensor<B: Backend>(
    data: &[f32],
    n: usize,
    dim: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(data.to_vec(), [n, dim]), device)
}

/// A tensor's values on the host as f32.
pub fn tensor_to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec()
        .expect("float tensor")
}

/// Run `episodes` episodes with the greedy (`deterministic`) or sampled policy and report the
/// returns. Episodes are spread over the environments as SB3's `evaluate_policy` does (env
/// `i` runs `(episodes + i) / n_envs` of them), so short episodes are not over-counted.
/// Action masks the environment provides are honoured: a masked action is never chosen. A
/// recurrent policy carries its state from step to step and resets it where an episode starts.
pub fn evaluate<B: Backend, M: PolicyNetwork<B>, E: VecEnv + ?Sized>(
    model: &M,
    env: &mut E,
    episodes: usize,
    seed: u64,
    deterministic: bool,
    device: &B::Device,
) -> Result<EvalStats, AlgoError> {
    let n = env.num_envs();
    let n_actions = env
        .action_space()
        .n()
        .ok_or_else(|| AlgoError::UnsupportedActionSpace {
            algorithm: "evaluate",
            space: env.action_space().to_string(),
        })?;
    let obs_dim = env.observation_space().flat_dim();
    let mut batch = StepBatch::for_env(env);
    env.reset(Some(seed), &mut batch);
    let targets: Vec<usize> = (0..n).map(|i| (episodes + i) / n).collect();
    let mut counts = vec![0usize; n];
    let mut running = vec![0f64; n];
    let mut lengths = vec![0u64; n];
    let (mut returns, mut lens) = (Vec::with_capacity(episodes), Vec::with_capacity(episodes));
    let mut agent = Agent::new(model, n, n_actions, seed, deterministic, device);
    let mut actions = vec![0u32; n];
    while counts.iter().zip(&targets).any(|(c, t)| c < t) {
        agent.act(
            &batch.obs,
            batch.action_masks.as_deref(),
            obs_dim,
            &mut actions,
        );
        env.step(Actions::Discrete(&actions), &mut batch)?;
        agent.observe_dones((0..n).map(|i| batch.done(i)));
        for i in 0..n {
            running[i] += batch.rewards[i] as f64;
            lengths[i] += 1;
            if batch.done(i) {
                if counts[i] < targets[i] {
                    returns.push(running[i]);
                    lens.push(lengths[i] as f64);
                    counts[i] += 1;
                }
                running[i] = 0.0;
                lengths[i] = 0;
            }
        }
    }
    let k = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / k;
    let std = (returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / k).sqrt();
    Ok(EvalStats {
        timesteps: 0,
        episodes: returns.len(),
        mean_return: mean,
        std_return: std,
        mean_length: lens.iter().sum::<f64>() / k,
        returns,
    })
}

/// A policy acting step by step on a batch of environments: it carries the recurrent state
/// (none for a feed-forward network), resets it where an episode starts, honours action masks
/// and picks the greedy (`deterministic`) or a sampled action.
///
/// Call [`act`](Self::act) with the current observations, step the environments, then report
/// which ended with [`observe_dones`](Self::observe_dones).
pub struct Agent<'m, B: Backend, M: PolicyNetwork<B>> {
    model: &'m M,
    state: EncoderState<B>,
    episode_starts: Vec<f32>,
    n_actions: usize,
    deterministic: bool,
    rng: Rng,
    log_probs: Vec<f32>,
    device: Device<B>,
}

impl<'m, B: Backend, M: PolicyNetwork<B>> Agent<'m, B, M> {
    /// An agent for `n_envs` environments; every environment starts a new episode.
    pub fn new(
        model: &'m M,
        n_envs: usize,
        n_actions: usize,
        seed: u64,
        deterministic: bool,
        device: &Device<B>,
    ) -> Self {
        Self {
            state: model.initial_state(n_envs, device),
            model,
            episode_starts: vec![1.0; n_envs],
            n_actions,
            deterministic,
            rng: Rng::seed_from_u64(seed),
            log_probs: vec![0.0; n_envs],
            device: device.clone(),
        }
    }

    /// Forget every environment's state: the next step starts new episodes.
    pub fn reset(&mut self) {
        self.episode_starts.iter_mut().for_each(|s| *s = 1.0);
    }

    /// Choose one action per environment for `obs` (`[n_envs * obs_dim]`); `masks`
    /// (`[n_envs * n_actions]`, true = allowed) exclude actions.
    pub fn act(
        &mut self,
        obs: &[f32],
        masks: Option<&[bool]>,
        obs_dim: usize,
        actions: &mut [u32],
    ) {
        let n = self.episode_starts.len();
        let out = self.model.step(
            host_to_tensor::<B>(obs, n, obs_dim, &self.device),
            self.state.clone(),
            &self.episode_starts,
        );
        self.state = out.state;
        self.episode_starts.iter_mut().for_each(|s| *s = 0.0);
        let mut logits = tensor_to_host(out.logits);
        if let Some(masks) = masks {
            crate::apply_mask(&mut logits, masks);
        }
        select_actions(
            &logits,
            self.n_actions,
            self.deterministic,
            &mut self.rng,
            actions,
            &mut self.log_probs,
        );
    }

    /// Report which environments ended their episode on the last step (their state is reset
    /// before the next action).
    pub fn observe_dones(&mut self, dones: impl IntoIterator<Item = bool>) {
        for (s, done) in self.episode_starts.iter_mut().zip(dones) {
            if done {
                *s = 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_and_log_prob() {
        let mut rng = Rng::seed_from_u64(0);
        let (mut a, mut lp) = (vec![0u32; 2], vec![0f32; 2]);
        select_actions(&[0.0, 1.0, 3.0, -1.0], 2, true, &mut rng, &mut a, &mut lp);
        assert_eq!(a, vec![1, 0]);
        let want = 1.0 - (1f64.exp() + 1.0).ln();
        assert!((lp[0] as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn sampling_follows_the_softmax() {
        let mut rng = Rng::seed_from_u64(1);
        let (mut a, mut lp) = (vec![0u32; 1], vec![0f32; 1]);
        let mut ones = 0;
        for _ in 0..20_000 {
            select_actions(&[0.0, (3f32).ln()], 2, false, &mut rng, &mut a, &mut lp);
            ones += a[0] as usize;
        }
        let frac = ones as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }
}

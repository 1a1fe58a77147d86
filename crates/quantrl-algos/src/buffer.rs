//! The on-policy rollout buffer: host arrays laid out `[step][env]`.

/// One rollout of `n_steps` steps of `n_envs` environments.
#[derive(Debug, Clone)]
pub struct RolloutBuffer {
    /// Steps per environment.
    pub n_steps: usize,
    /// Environments.
    pub n_envs: usize,
    /// Observation length.
    pub obs_dim: usize,
    /// Observations, `[n_steps * n_envs * obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions taken, `[n_steps * n_envs]`.
    pub actions: Vec<u32>,
    /// Rewards (truncations already bootstrapped), `[n_steps * n_envs]`.
    pub rewards: Vec<f32>,
    /// 1 where the observation starts an episode, `[n_steps * n_envs]`.
    pub episode_starts: Vec<f32>,
    /// Value estimates at rollout time.
    pub values: Vec<f32>,
    /// Log-probabilities of the actions at rollout time.
    pub log_probs: Vec<f32>,
    /// GAE advantages.
    pub advantages: Vec<f32>,
    /// TD(λ) returns.
    pub returns: Vec<f32>,
    /// Action masks (`[n_steps * n_envs * n_actions]`), when the environment has them.
    pub action_masks: Option<Vec<bool>>,
    /// Length of the training sequences (1 for a feed-forward policy).
    pub seq_len: usize,
    /// Per-environment shapes `[a, b]` of the recurrent state tensors (empty: feed-forward).
    pub state_shapes: Vec<[usize; 2]>,
    /// The recurrent state at the first step of every training sequence, one vector per state
    /// tensor, laid out `[chunk][env][a * b]` (chunk `c` starts at step `c * seq_len`).
    pub chunk_states: Vec<Vec<f32>>,
}

impl RolloutBuffer {
    /// Zeroed buffers.
    pub fn new(n_steps: usize, n_envs: usize, obs_dim: usize, mask_len: Option<usize>) -> Self {
        let n = n_steps * n_envs;
        Self {
            n_steps,
            n_envs,
            obs_dim,
            obs: vec![0.0; n * obs_dim],
            actions: vec![0; n],
            rewards: vec![0.0; n],
            episode_starts: vec![0.0; n],
            values: vec![0.0; n],
            log_probs: vec![0.0; n],
            advantages: vec![0.0; n],
            returns: vec![0.0; n],
            action_masks: mask_len.map(|m| vec![true; n * m]),
            seq_len: 1,
            state_shapes: Vec::new(),
            chunk_states: Vec::new(),
        }
    }

    /// Training sequences of `seq_len` steps, starting from recurrent states of the given
    /// per-environment shapes (stored by the rollout at each sequence's first step).
    ///
    /// # Panics
    /// When `seq_len` is 0 or longer than `n_steps`.
    pub fn with_sequences(mut self, seq_len: usize, state_shapes: Vec<[usize; 2]>) -> Self {
        assert!(
            seq_len >= 1 && seq_len <= self.n_steps,
            "seq_len must be in [1, n_steps]"
        );
        self.seq_len = seq_len;
        let chunks = self.n_chunks();
        self.chunk_states = state_shapes
            .iter()
            .map(|[a, b]| vec![0.0; chunks * self.n_envs * a * b])
            .collect();
        self.state_shapes = state_shapes;
        self
    }

    /// Training sequences per environment: `ceil(n_steps / seq_len)`.
    pub fn n_chunks(&self) -> usize {
        self.n_steps.div_ceil(self.seq_len)
    }

    /// Training sequences in the rollout (`n_chunks * n_envs`); sequence `s` is chunk
    /// `s / n_envs` of environment `s % n_envs`.
    pub fn n_sequences(&self) -> usize {
        self.n_chunks() * self.n_envs
    }

    /// Samples in the rollout.
    pub fn len(&self) -> usize {
        self.n_steps * self.n_envs
    }

    /// Whether the rollout is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `1 - Var(returns - values) / Var(returns)` (NaN when the returns are constant), as SB3.
    pub fn explained_variance(&self) -> f64 {
        let n = self.len() as f64;
        let var = |it: &mut dyn Iterator<Item = f64>| {
            let v: Vec<f64> = it.collect();
            let m = v.iter().sum::<f64>() / n;
            v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n
        };
        let var_y = var(&mut self.returns.iter().map(|&r| r as f64));
        if var_y == 0.0 {
            return f64::NAN;
        }
        let var_res = var(&mut self
            .returns
            .iter()
            .zip(&self.values)
            .map(|(&r, &v)| (r - v) as f64));
        1.0 - var_res / var_y
    }
}

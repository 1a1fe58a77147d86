//! The vectorized environment interface.

use crate::{EnvError, Space};

/// Actions for a whole batch of environments, laid out contiguously (`num_envs * flat_dim`).
#[derive(Debug, Clone, Copy)]
pub enum Actions<'a> {
    /// Discrete or MultiDiscrete actions, `num_envs * action_space.flat_dim()` integers.
    Discrete(&'a [u32]),
    /// Box actions, `num_envs * action_space.flat_dim()` floats.
    Continuous(&'a [f32]),
}

impl<'a> Actions<'a> {
    /// Number of flat slots.
    pub fn len(&self) -> usize {
        match self {
            Actions::Discrete(a) => a.len(),
            Actions::Continuous(a) => a.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The actions of `num_envs` environments with the `Discrete` action `space`, checked:
    /// discrete, one per environment, each inside the space. The error names what is wrong
    /// (and the first environment with an action outside the space).
    pub fn discrete_for(&self, num_envs: usize, space: &Space) -> Result<&'a [u32], EnvError> {
        let Actions::Discrete(a) = *self else {
            return Err(EnvError::ActionShape {
                expected: format!("{num_envs} discrete actions"),
                got: "continuous actions".into(),
            });
        };
        if a.len() != num_envs {
            return Err(EnvError::ActionShape {
                expected: format!("{num_envs} discrete actions"),
                got: format!("{} actions", a.len()),
            });
        }
        let n = space.n().unwrap_or(0);
        if let Some(i) = a.iter().position(|&x| x as usize >= n) {
            return Err(EnvError::InvalidAction {
                env: i,
                action: a[i].to_string(),
                space: space.to_string(),
            });
        }
        Ok(a)
    }
}

/// The host buffers one vectorized step writes into, allocated once and reused every step.
///
/// After [`VecEnv::reset`] or [`VecEnv::step`], `obs` holds the observation each environment
/// will act on next. An environment whose episode ended on this step (`terminated[i] ||
/// truncated[i]`) was reset automatically: `obs` then holds the first observation of the new
/// episode and `final_obs` the last observation of the old one (needed to bootstrap the value
/// of a truncated episode). `terminated` (a terminal state of the MDP: no bootstrap) and
/// `truncated` (a time limit or the end of the data: bootstrap) are kept apart.
#[derive(Debug, Clone)]
pub struct StepBatch {
    /// Number of environments.
    pub num_envs: usize,
    /// Length of one observation.
    pub obs_dim: usize,
    /// Current observations, `[num_envs * obs_dim]`, row-major by environment.
    pub obs: Vec<f32>,
    /// Reward of the last step, `[num_envs]`.
    pub rewards: Vec<f32>,
    /// Whether the last step reached a terminal state, `[num_envs]`.
    pub terminated: Vec<bool>,
    /// Whether the last step hit a time limit or the end of the data, `[num_envs]`.
    pub truncated: Vec<bool>,
    /// Final observation of the episode that just ended, valid where the env is done,
    /// `[num_envs * obs_dim]`.
    pub final_obs: Vec<f32>,
    /// Action masks for the current observations, `[num_envs * mask_len]`, `true` = allowed;
    /// `None` for environments without masks.
    pub action_masks: Option<Vec<bool>>,
}

impl StepBatch {
    /// Buffers for `num_envs` environments with observations of `obs_dim` floats and, if
    /// `mask_len` is given, action masks of that length.
    pub fn new(num_envs: usize, obs_dim: usize, mask_len: Option<usize>) -> Self {
        Self {
            num_envs,
            obs_dim,
            obs: vec![0.0; num_envs * obs_dim],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            final_obs: vec![0.0; num_envs * obs_dim],
            action_masks: mask_len.map(|m| vec![true; num_envs * m]),
        }
    }

    /// Buffers sized for `env`.
    pub fn for_env<E: VecEnv + ?Sized>(env: &E) -> Self {
        let mask_len = if env.has_action_masks() {
            env.action_space().mask_len()
        } else {
            None
        };
        Self::new(env.num_envs(), env.observation_space().flat_dim(), mask_len)
    }

    /// Whether environment `i` ended an episode on the last step.
    #[inline]
    pub fn done(&self, i: usize) -> bool {
        self.terminated[i] || self.truncated[i]
    }

    /// Observation of environment `i`.
    #[inline]
    pub fn obs_of(&self, i: usize) -> &[f32] {
        &self.obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// Final observation of environment `i` (meaningful only where `done(i)`).
    #[inline]
    pub fn final_obs_of(&self, i: usize) -> &[f32] {
        &self.final_obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }
}

/// `N` environments stepped together over contiguous host buffers.
///
/// Implementations allocate nothing per step: all output goes into a caller-owned
/// [`StepBatch`]. Episodes reset automatically (see [`StepBatch`]). Seeding is reproducible:
/// the same seed and the same actions give the same trajectories.
///
/// ```
/// use quantrl_core::{Actions, StepBatch, VecEnv};
/// fn random_rollout<E: VecEnv>(env: &mut E, steps: usize) -> f32 {
///     let mut batch = StepBatch::for_env(env);
///     env.reset(Some(0), &mut batch);
///     let actions = vec![0u32; env.num_envs()];
///     let mut total = 0.0;
///     for _ in 0..steps {
///         env.step(Actions::Discrete(&actions), &mut batch).unwrap();
///         total += batch.rewards.iter().sum::<f32>();
///     }
///     total
/// }
/// ```
pub trait VecEnv {
    /// Number of environments in the batch.
    fn num_envs(&self) -> usize;

    /// Observation space of one environment (a Box).
    fn observation_space(&self) -> &Space;

    /// Action space of one environment.
    fn action_space(&self) -> &Space;

    /// Whether [`StepBatch::action_masks`] is filled by this environment.
    fn has_action_masks(&self) -> bool {
        false
    }

    /// Reset every environment (seeding them from `seed` when given) and write the first
    /// observations (and masks) into `batch`.
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch);

    /// Apply one action per environment and write the outcome into `batch`.
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError>;

    /// A short name for logs and checkpoints (e.g. `CartPole-v1`).
    fn name(&self) -> &str;

    /// The complete dynamic state (simulator state, episode counters, random generators) as
    /// text, so that a checkpoint can resume the exact same run; `None` when the environment
    /// does not support it (a resumed run then starts fresh episodes).
    fn save_state(&self) -> Option<String> {
        None
    }

    /// Restore a state written by [`VecEnv::save_state`].
    fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
        let _ = state;
        Err(EnvError::State(format!(
            "{} cannot restore a saved state",
            self.name()
        )))
    }

    /// The regime (environment, in the sense of invariant risk minimization) that
    /// environment `env`'s current observation belongs to, e.g. the volatility regime of the
    /// market row it observes; `None` (the default) for environments without regime labels.
    /// Algorithms group samples by it (an IRM penalty across regimes). Read after `reset` or
    /// `step`, it labels the observation in the [`StepBatch`] the agent acts on next.
    fn regime_label(&self, env: usize) -> Option<usize> {
        let _ = env;
        None
    }
}

impl<E: VecEnv + ?Sized> VecEnv for Box<E> {
    fn num_envs(&self) -> usize {
        (**self).num_envs()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn has_action_masks(&self) -> bool {
        (**self).has_action_masks()
    }
    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        (**self).reset(seed, batch)
    }
    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        (**self).step(actions, batch)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn save_state(&self) -> Option<String> {
        (**self).save_state()
    }
    fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
        (**self).load_state(state)
    }
    fn regime_label(&self, env: usize) -> Option<usize> {
        (**self).regime_label(env)
    }
}

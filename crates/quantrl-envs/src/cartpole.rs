//! CartPole-v1 and CartPoleNoVel, vectorized.
//!
//! The physics, termination thresholds and the 500-step truncation reproduce gymnasium 1.4.0's
//! `CartPole-v1` (explicit Euler, τ = 0.02, float64 internal state, float32 observations,
//! reward 1 on every step including the terminating one). `CartPoleNoVel` hides the two
//! velocities, so a policy must infer them from memory: the standard check for recurrent
//! policies.

use quantrl_core::{Actions, EnvError, Rng, Space, StepBatch, VecEnv};
use serde::{Deserialize, Serialize};

/// Physical constants of CartPole, as in gymnasium.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CartPolePhysics {
    /// Gravity (m/s²).
    pub gravity: f64,
    /// Mass of the cart (kg).
    pub masscart: f64,
    /// Mass of the pole (kg).
    pub masspole: f64,
    /// Half the pole's length (m).
    pub length: f64,
    /// Magnitude of the push (N).
    pub force_mag: f64,
    /// Integration step (s).
    pub tau: f64,
    /// Pole angle beyond which the episode terminates (rad).
    pub theta_threshold_radians: f64,
    /// Cart position beyond which the episode terminates (m).
    pub x_threshold: f64,
}

impl Default for CartPolePhysics {
    fn default() -> Self {
        Self {
            gravity: 9.8,
            masscart: 1.0,
            masspole: 0.1,
            length: 0.5,
            force_mag: 10.0,
            tau: 0.02,
            theta_threshold_radians: 12.0 * 2.0 * std::f64::consts::PI / 360.0,
            x_threshold: 2.4,
        }
    }
}

impl CartPolePhysics {
    /// One explicit-Euler step of the state `[x, x_dot, theta, theta_dot]` under `action`
    /// (0 pushes left, 1 pushes right). Returns whether the new state is terminal.
    #[inline]
    pub fn step(&self, s: &mut [f64; 4], action: u32) -> bool {
        let [x, x_dot, theta, theta_dot] = *s;
        let total_mass = self.masspole + self.masscart;
        let polemass_length = self.masspole * self.length;
        let force = if action == 1 {
            self.force_mag
        } else {
            -self.force_mag
        };
        let costheta = theta.cos();
        let sintheta = theta.sin();
        let temp = (force + polemass_length * theta_dot * theta_dot * sintheta) / total_mass;
        let thetaacc = (self.gravity * sintheta - costheta * temp)
            / (self.length * (4.0 / 3.0 - self.masspole * costheta * costheta / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        *s = [
            x + self.tau * x_dot,
            x_dot + self.tau * xacc,
            theta + self.tau * theta_dot,
            theta_dot + self.tau * thetaacc,
        ];
        s[0] < -self.x_threshold
            || s[0] > self.x_threshold
            || s[2] < -self.theta_threshold_radians
            || s[2] > self.theta_threshold_radians
    }
}

/// Configuration of a vectorized CartPole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartPoleConfig {
    /// Number of environments stepped together.
    pub num_envs: usize,
    /// Steps after which an episode is truncated (gymnasium's TimeLimit; 500 for v1).
    pub max_episode_steps: u32,
    /// Hide the velocities (CartPoleNoVel): observations are `[x, theta]`.
    pub hide_velocity: bool,
    /// Physical constants.
    pub physics: CartPolePhysics,
}

impl Default for CartPoleConfig {
    fn default() -> Self {
        Self {
            num_envs: 8,
            max_episode_steps: 500,
            hide_velocity: false,
            physics: CartPolePhysics::default(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CartPoleState {
    states: Vec<[f64; 4]>,
    episode_steps: Vec<u32>,
    rngs: Vec<Rng>,
}

/// `num_envs` CartPoles stepped together.
///
/// ```
/// use quantrl_core::{Actions, StepBatch, VecEnv};
/// use quantrl_envs::{CartPole, CartPoleConfig};
/// let mut env = CartPole::new(CartPoleConfig { num_envs: 4, ..Default::default() });
/// let mut batch = StepBatch::for_env(&env);
/// env.reset(Some(42), &mut batch);
/// env.step(Actions::Discrete(&[0, 1, 0, 1]), &mut batch).unwrap();
/// assert_eq!(batch.rewards, vec![1.0; 4]);
/// ```
#[derive(Debug, Clone)]
pub struct CartPole {
    config: CartPoleConfig,
    states: Vec<[f64; 4]>,
    episode_steps: Vec<u32>,
    rngs: Vec<Rng>,
    obs_space: Space,
    action_space: Space,
    is_reset: bool,
}

impl CartPole {
    /// Build from a config. Call [`VecEnv::reset`] before stepping.
    pub fn new(config: CartPoleConfig) -> Self {
        let n = config.num_envs;
        let p = &config.physics;
        let obs_space = if config.hide_velocity {
            Space::Box {
                low: vec![
                    -(p.x_threshold as f32) * 2.0,
                    -(p.theta_threshold_radians as f32) * 2.0,
                ],
                high: vec![
                    (p.x_threshold as f32) * 2.0,
                    (p.theta_threshold_radians as f32) * 2.0,
                ],
            }
        } else {
            let (x, th) = (
                (p.x_threshold * 2.0) as f32,
                (p.theta_threshold_radians * 2.0) as f32,
            );
            Space::Box {
                low: vec![-x, f32::MIN, -th, f32::MIN],
                high: vec![x, f32::MAX, th, f32::MAX],
            }
        };
        Self {
            states: vec![[0.0; 4]; n],
            episode_steps: vec![0; n],
            rngs: Rng::streams(0, n),
            obs_space,
            action_space: Space::Discrete { n: 2 },
            is_reset: false,
            config,
        }
    }

    /// The internal float64 state `[x, x_dot, theta, theta_dot]` of environment `i`.
    pub fn state(&self, i: usize) -> [f64; 4] {
        self.states[i]
    }

    /// Overwrite the state of environment `i` (for example to inject a reference reset state)
    /// and rewrite its observation in `batch`.
    pub fn set_state(&mut self, i: usize, state: [f64; 4], batch: &mut StepBatch) {
        self.states[i] = state;
        let d = batch.obs_dim;
        self.write_obs(i, &mut batch.obs[i * d..(i + 1) * d]);
    }

    /// Steps taken in the current episode of environment `i`.
    pub fn episode_step(&self, i: usize) -> u32 {
        self.episode_steps[i]
    }

    #[inline]
    fn write_obs(&self, i: usize, out: &mut [f32]) {
        let s = &self.states[i];
        if self.config.hide_velocity {
            out[0] = s[0] as f32;
            out[1] = s[2] as f32;
        } else {
            for k in 0..4 {
                out[k] = s[k] as f32;
            }
        }
    }

    fn reset_one(&mut self, i: usize) {
        let rng = &mut self.rngs[i];
        for v in self.states[i].iter_mut() {
            *v = rng.uniform_range(-0.05, 0.05);
        }
        self.episode_steps[i] = 0;
    }
}

impl VecEnv for CartPole {
    fn num_envs(&self) -> usize {
        self.config.num_envs
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(&mut self, seed: Option<u64>, batch: &mut StepBatch) {
        if let Some(seed) = seed {
            self.rngs = Rng::streams(seed, self.rngs.len());
        }
        let d = batch.obs_dim;
        for i in 0..self.config.num_envs {
            self.reset_one(i);
            self.write_obs(i, &mut batch.obs[i * d..(i + 1) * d]);
            batch.rewards[i] = 0.0;
            batch.terminated[i] = false;
            batch.truncated[i] = false;
        }
        self.is_reset = true;
    }

    fn step(&mut self, actions: Actions<'_>, batch: &mut StepBatch) -> Result<(), EnvError> {
        if !self.is_reset {
            return Err(EnvError::NotReset);
        }
        let n = self.config.num_envs;
        let actions = actions.discrete_for(n, &self.action_space)?;
        let d = batch.obs_dim;
        let physics = self.config.physics;
        for i in 0..n {
            let terminated = physics.step(&mut self.states[i], actions[i]);
            self.episode_steps[i] += 1;
            let truncated = self.episode_steps[i] >= self.config.max_episode_steps;
            batch.rewards[i] = 1.0;
            batch.terminated[i] = terminated;
            batch.truncated[i] = truncated;
            if terminated || truncated {
                self.write_obs(i, &mut batch.final_obs[i * d..(i + 1) * d]);
                self.reset_one(i);
            }
            self.write_obs(i, &mut batch.obs[i * d..(i + 1) * d]);
        }
        Ok(())
    }

    fn save_state(&self) -> Option<String> {
        serde_json::to_string(&CartPoleState {
            states: self.states.clone(),
            episode_steps: self.episode_steps.clone(),
            rngs: self.rngs.clone(),
        })
        .ok()
    }

    fn load_state(&mut self, state: &str) -> Result<(), EnvError> {
        let s: CartPoleState = serde_json::from_str(state)
            .map_err(|e| EnvError::State(format!("not a CartPole state: {e}")))?;
        let n = self.config.num_envs;
        if s.states.len() != n || s.episode_steps.len() != n || s.rngs.len() != n {
            return Err(EnvError::State(format!(
                "state is for {} environments, this CartPole has {n}",
                s.states.len()
            )));
        }
        self.states = s.states;
        self.episode_steps = s.episode_steps;
        self.rngs = s.rngs;
        self.is_reset = true;
        Ok(())
    }

    fn name(&self) -> &str {
        if self.config.hide_velocity {
            "CartPoleNoVel-v1"
        } else {
            "CartPole-v1"
        }
    }
}

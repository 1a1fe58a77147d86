//! Typed training events, for logging and early stopping.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

/// Statistics of one PPO update (one rollout and its epochs), SB3's logger keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// Environment steps so far.
    pub timesteps: u64,
    /// Updates so far.
    pub updates: u64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Clip range used.
    pub clip_range: f64,
    /// Mean clipped surrogate loss over minibatches.
    pub policy_loss: f64,
    /// Mean value loss.
    pub value_loss: f64,
    /// Mean entropy loss (`-entropy`).
    pub entropy_loss: f64,
    /// Mean approximate KL.
    pub approx_kl: f64,
    /// Mean clip fraction.
    pub clip_fraction: f64,
    /// Mean total loss.
    pub loss: f64,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f64,
    /// `1 - Var(returns - values) / Var(returns)` over the rollout.
    pub explained_variance: f64,
    /// Epochs completed (fewer than configured after a target-KL stop).
    pub epochs: usize,
    /// Whether the target-KL rule stopped the epochs early.
    pub early_stopped: bool,
    /// Mean return of the last 100 finished episodes (NaN before any).
    pub ep_return_mean: f64,
    /// Mean length of the last 100 finished episodes (NaN before any).
    pub ep_length_mean: f64,
    /// Seconds spent collecting the rollout.
    pub rollout_seconds: f64,
    /// Seconds spent in the update.
    pub update_seconds: f64,
    /// Mean CVaR objective term of the loss (distributional PPO with a CVaR objective).
    #[serde(default)]
    pub cvar_loss: Option<f64>,
    /// The critic's CVaR at the rollout's episode starts (with a CVaR objective).
    #[serde(default)]
    pub cvar_estimate: Option<f64>,
    /// The weight on the CVaR term after the update (a constraint's multiplier moves).
    #[serde(default)]
    pub cvar_weight: Option<f64>,
    /// Mean IRM penalty over the minibatches that held two regimes or more.
    #[serde(default)]
    pub irm_penalty: Option<f64>,
}

/// Result of a deterministic evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Environment steps of training when evaluated.
    pub timesteps: u64,
    /// Episodes evaluated.
    pub episodes: usize,
    /// Mean episode return.
    pub mean_return: f64,
    /// Standard deviation of episode returns.
    pub std_return: f64,
    /// Mean episode length.
    pub mean_length: f64,
    /// Every episode's return.
    pub returns: Vec<f64>,
}

/// Something that happened during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// An update finished.
    Update(UpdateStats),
    /// An evaluation finished.
    Eval(EvalStats),
    /// A checkpoint was written.
    Checkpoint {
        /// Environment steps at the checkpoint.
        timesteps: u64,
        /// Where.
        path: String,
    },
}

/// Receives events; returning `ControlFlow::Break(())` stops training after the current
/// update.
pub trait Callback {
    /// Handle one event.
    fn on_event(&mut self, event: &TrainEvent) -> ControlFlow<()>;
}

impl<F: FnMut(&TrainEvent) -> ControlFlow<()>> Callback for F {
    fn on_event(&mut self, event: &TrainEvent) -> ControlFlow<()> {
        self(event)
    }
}

/// Per-environment running returns and the last `capacity` finished episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeTracker {
    running_return: Vec<f64>,
    running_length: Vec<u64>,
    recent: VecDeque<(f64, u64)>,
    capacity: usize,
    /// Episodes finished in total.
    pub finished: u64,
}

impl EpisodeTracker {
    /// Track `n_envs` environments, keeping the last `capacity` episodes.
    pub fn new(n_envs: usize, capacity: usize) -> Self {
        Self {
            running_return: vec![0.0; n_envs],
            running_length: vec![0; n_envs],
            recent: VecDeque::new(),
            capacity,
            finished: 0,
        }
    }

    /// Record one step of environment `i`; `done` closes its episode.
    pub fn record(&mut self, i: usize, reward: f32, done: bool) {
        self.running_return[i] += reward as f64;
        self.running_length[i] += 1;
        if done {
            if self.recent.len() == self.capacity {
                self.recent.pop_front();
            }
            self.recent
                .push_back((self.running_return[i], self.running_length[i]));
            self.running_return[i] = 0.0;
            self.running_length[i] = 0;
            self.finished += 1;
        }
    }

    /// The return environment `i`'s running episode has accumulated so far.
    pub fn running_return(&self, i: usize) -> f64 {
        self.running_return[i]
    }

    /// Returns of the recent episodes, oldest first.
    pub fn recent_returns(&self) -> impl Iterator<Item = f64> + '_ {
        self.recent.iter().map(|e| e.0)
    }

    /// Mean return and length of the recent episodes (NaN when there are none).
    pub fn means(&self) -> (f64, f64) {
        if self.recent.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let n = self.recent.len() as f64;
        (
            self.recent.iter().map(|e| e.0).sum::<f64>() / n,
            self.recent.iter().map(|e| e.1 as f64).sum::<f64>() / n,
        )
    }
}

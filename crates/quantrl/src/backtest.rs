//! Backtesting trained agents: the bridge between a [`PolicyNetwork`] of `quantrl-algos` and
//! the [`BacktestPolicy`] of `quantrl-eval` (which knows nothing of networks).

use burn::tensor::{Device, backend::Backend};
use quantrl_algos::{Agent, PolicyNetwork};
use quantrl_eval::{BacktestPolicy, EvalError, PolicyActions};

/// A trained categorical policy acting greedily (the most probable allowed action), carrying
/// its recurrent state through the backtest and resetting it where an episode starts.
pub struct AgentPolicy<'m, B: Backend, M: PolicyNetwork<B>> {
    model: &'m M,
    agent: Agent<'m, B, M>,
    label: String,
    obs_dim: usize,
    n_actions: usize,
    device: Device<B>,
}

impl<'m, B: Backend, M: PolicyNetwork<B>> AgentPolicy<'m, B, M> {
    /// The greedy policy of `model` for observations of `obs_dim` values and `n_actions`
    /// actions, labelled `label` in reports.
    pub fn new(
        model: &'m M,
        label: impl Into<String>,
        obs_dim: usize,
        n_actions: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            model,
            agent: Agent::new(model, 1, n_actions, 0, true, device),
            label: label.into(),
            obs_dim,
            n_actions,
            device: device.clone(),
        }
    }
}

impl<B: Backend, M: PolicyNetwork<B>> BacktestPolicy for AgentPolicy<'_, B, M> {
    fn label(&self) -> &str {
        &self.label
    }

    fn reset(&mut self, n_envs: usize) {
        self.agent = Agent::new(self.model, n_envs, self.n_actions, 0, true, &self.device);
    }

    fn act(
        &mut self,
        obs: &[f32],
        action_masks: Option<&[bool]>,
        episode_start: &[bool],
        out: &mut PolicyActions,
    ) -> Result<(), EvalError> {
        let Some(actions) = out.discrete_mut() else {
            return Err(EvalError::UnsupportedSpace {
                policy: self.label.clone(),
                space: "a continuous action space (the policy is categorical)".into(),
            });
        };
        if obs.len() != actions.len() * self.obs_dim {
            return Err(EvalError::UnsupportedSpace {
                policy: self.label.clone(),
                space: format!(
                    "an environment with {} observation values (the policy was trained on {})",
                    obs.len() / actions.len().max(1),
                    self.obs_dim
                ),
            });
        }
        self.agent.observe_dones(episode_start.iter().copied());
        self.agent.act(obs, action_masks, self.obs_dim, actions);
        Ok(())
    }
}

"""sb3-contrib on the machine at hand, for the ratios in docs/BENCHMARKS.md.

(1) RecurrentPPO (LSTM, hidden 64) on CartPoleNoVel (CartPole-v1 with the velocities hidden),
8 envs, n_steps 32, batch 256, in the two settings that `cargo bench -p quantrl --bench
throughput -- ppo_recurrent_e2e` runs: the RL-Zoo one (20 epochs, gae_lambda 0.8, gamma 0.98,
lr 1e-3 -> 0 and clip 0.2 -> 0 linear, ent_coef 0, observation normalization, RL-Zoo's
policy_kwargs) and 10 epochs with gae_lambda 0.98 and gamma 0.99; 25,600 steps each.
(2) MaskablePPO at its defaults on InvalidActionEnvDiscrete (40 actions, 30 invalid), 1 env,
20,480 steps, as `throughput -- ppo_masked` does.

    python3 -m venv venv && venv/bin/pip install stable-baselines3 sb3-contrib gymnasium
    venv/bin/python benches/reference/sb3_contrib_recurrent_masked.py [--runs 3]
"""

import gymnasium as gym
import numpy as np
import torch
from common import linear, runs_from_args, show, steps_per_second
from sb3_contrib import MaskablePPO, RecurrentPPO
from sb3_contrib.common.envs import InvalidActionEnvDiscrete
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize


class NoVelocity(gym.ObservationWrapper):
    """CartPole with the cart and pole velocities removed (RL-Zoo's CartPoleNoVel)."""

    def __init__(self, env):
        super().__init__(env)
        high = env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)

    def observation(self, obs):
        return obs[[0, 2]]


def recurrent(seed, zoo, steps=25_600):
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed, wrapper_class=NoVelocity)
    if zoo:
        env = VecNormalize(env, norm_reward=False)
        kwargs = dict(
            n_epochs=20,
            gae_lambda=0.8,
            gamma=0.98,
            learning_rate=linear(1e-3),
            clip_range=linear(0.2),
            policy_kwargs=dict(
                ortho_init=False,
                activation_fn=torch.nn.ReLU,
                lstm_hidden_size=64,
                enable_critic_lstm=True,
                net_arch=dict(pi=[64], vf=[64]),
            ),
        )
    else:
        kwargs = dict(
            n_epochs=10,
            gae_lambda=0.98,
            gamma=0.99,
            policy_kwargs=dict(lstm_hidden_size=64),
        )
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=32,
        batch_size=256,
        ent_coef=0.0,
        seed=seed,
        device="cpu",
        verbose=0,
        **kwargs,
    )
    return steps_per_second(model, steps)


def masked(seed, steps=20_480):
    env = InvalidActionEnvDiscrete(dim=40, n_invalid_actions=30)
    model = MaskablePPO("MlpPolicy", env, gamma=0.99, seed=seed, device="cpu", verbose=0)
    return steps_per_second(model, steps)


def main():
    runs = runs_from_args()
    show("RecurrentPPO LSTM RL-Zoo (20 epochs) steps/s", [recurrent(s, True) for s in range(runs)])
    show("RecurrentPPO LSTM 10 epochs steps/s", [recurrent(s, False) for s in range(runs)])
    show("MaskablePPO defaults steps/s", [masked(s) for s in range(runs)])


if __name__ == "__main__":
    main()

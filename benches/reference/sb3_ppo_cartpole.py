"""Stable-Baselines3 on the machine at hand, for the ratios in docs/BENCHMARKS.md.

Measures (1) gymnasium's CartPole-v1 raw step rate (one env, random actions, auto-reset) and
(2) SB3 PPO end to end on the RL-Zoo CartPole-v1 task that `cargo bench -p quantrl --bench
throughput -- ppo_cartpole_e2e` runs: 8 envs (DummyVecEnv), n_steps 32, batch 256, 20 epochs,
gae_lambda 0.8, gamma 0.98, lr 1e-3 -> 0 and clip 0.2 -> 0 linear, ent_coef 0, SB3's default
64x64 tanh actor and critic, 50,176 steps, torch on the CPU.

    python3 -m venv venv && venv/bin/pip install stable-baselines3 gymnasium
    venv/bin/python benches/reference/sb3_ppo_cartpole.py [--runs 3]
"""

import time

import gymnasium as gym
from common import linear, runs_from_args, show, steps_per_second
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def raw_steps(n=200_000):
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    actions = env.action_space
    actions.seed(0)
    t0 = time.perf_counter()
    for _ in range(n):
        _, _, terminated, truncated, _ = env.step(actions.sample())
        if terminated or truncated:
            env.reset()
    return n / (time.perf_counter() - t0)


def ppo(seed, steps=50_176):
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    return steps_per_second(model, steps)


def main():
    runs = runs_from_args()
    show("gymnasium CartPole-v1 raw steps/s", [raw_steps() for _ in range(runs)])
    show("SB3 PPO CartPole e2e steps/s", [ppo(seed) for seed in range(runs)])


if __name__ == "__main__":
    main()

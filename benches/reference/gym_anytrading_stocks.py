"""gym-anytrading on the machine at hand, for the trading-environment ratios in
docs/BENCHMARKS.md (`cargo bench -p quantrl --bench throughput -- raw_steps`).

Measures the raw step rate of gym-anytrading's `stocks-v0` (its bundled GOOGL data, two signal
features: close and its first difference) with window 10 (`frame_bound` (10, len)), random
actions drawn ahead of time, one environment, resetting when an episode ends: the environment
the issue's "about 230k steps/s" refers to. No training, no policy: environment steps only, as
in quantrl's `*_raw_steps` rows. Two rows: through `gym.make`'s wrappers (order enforcing,
passive checker), and the bare environment (`.unwrapped`, the faster of the two, which the
ratios in docs/BENCHMARKS.md use).

    python3 -m venv venv && venv/bin/pip install gym-anytrading gymnasium
    venv/bin/python benches/reference/gym_anytrading_stocks.py [--runs 5]
"""

import argparse
import statistics
import time

import gym_anytrading  # noqa: F401  (registers stocks-v0)
import gymnasium as gym


def make(bare):
    env = gym.make("stocks-v0")
    n = len(env.unwrapped.df)
    env = gym.make("stocks-v0", window_size=10, frame_bound=(10, n))
    return env.unwrapped if bare else env


def raw_steps(seed, bare, n=200_000):
    env = make(bare)
    env.reset(seed=seed)
    actions = env.action_space
    actions.seed(seed)
    drawn = [int(actions.sample()) for _ in range(n)]
    t0 = time.perf_counter()
    for a in drawn:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return n / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = make(bare=True)
    print(
        f"stocks-v0: window {env.window_size}, observation {env.observation_space.shape}, "
        f"{len(env.prices)} prices"
    )
    for bare, label in [(False, "gym.make wrappers"), (True, "bare (.unwrapped)")]:
        runs = sorted(raw_steps(seed, bare) for seed in range(args.runs))
        cells = " / ".join(f"{r:,.0f}" for r in runs)
        print(f"stocks-v0 raw steps/s, {label}: {cells} (median {statistics.median(runs):,.0f})")


if __name__ == "__main__":
    main()

"""Helpers shared by the reference scripts in this directory (run them from the repository
root: `venv/bin/python benches/reference/<script>.py`; this directory is on `sys.path` then)."""

import argparse
import statistics
import time

import torch


def linear(start):
    """SB3's linear schedule from `start` to 0."""
    return lambda progress_remaining: progress_remaining * start


def steps_per_second(model, steps):
    """Train `model` for `steps` environment steps; steps per second of the whole loop."""
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - t0)


def show(name, runs):
    """One line: the runs sorted (min / ... / max) and their median."""
    cells = " / ".join(f"{r:,.0f}" for r in sorted(runs))
    print(f"{name}: {cells} (median {statistics.median(runs):,.0f})")


def runs_from_args():
    """`--runs N` (default 3), after printing torch's version and thread count."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return args.runs

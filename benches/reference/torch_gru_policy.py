"""PyTorch GRU policy inference on the machine at hand, for the latency ratios in
docs/BENCHMARKS.md (`cargo bench -p quantrl-nets --bench rnn -- gru_policy`).

The policy: `nn.GRU(64, 256)` stepped one time step with its hidden state carried, then
`nn.Linear(256, 16)` to logits, under `torch.inference_mode()`, one thread
(`torch.set_num_threads(1)`). Batch 1: the latency of one decision (median and p99 over 20,000
timed decisions after 2,000 warm-up ones). Batch 256: decisions per second (median of 200
timed calls).

    python3 -m venv venv && venv/bin/pip install torch
    venv/bin/python benches/reference/torch_gru_policy.py
"""

import statistics
import time

import torch


def timed_calls(policy, x, h, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        h, _ = policy(x, h)
        out.append(time.perf_counter() - t0)
    return out


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gru = torch.nn.GRU(64, 256, batch_first=True)
    head = torch.nn.Linear(256, 16)

    def policy(x, h):
        y, h = gru(x, h)
        logits = head(y[:, 0])
        return h, logits

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    with torch.inference_mode():
        x = torch.randn(1, 1, 64)
        h = torch.zeros(1, 1, 256)
        timed_calls(policy, x, h, 2_000)
        t = sorted(timed_calls(policy, x, h, 20_000))
        med, p99 = statistics.median(t), t[int(0.99 * len(t))]
        print(f"batch 1: median {med * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us per decision")
        x = torch.randn(256, 1, 64)
        h = torch.zeros(1, 256, 256)
        timed_calls(policy, x, h, 20)
        med = statistics.median(timed_calls(policy, x, h, 200))
        print(f"batch 256: median {med * 1e3:.2f} ms per call, {256 / med:,.0f} decisions/s")


if __name__ == "__main__":
    main()

"""Training step time of the one-shot convolutional VAE beside DRAW's, on CIFAR-10-sized batches (issue 33).

    OMP_NUM_THREADS=1 python benchmarks/convvae_steps.py --out benchmarks/results   # a few minutes on one core

The equal-compute comparison gives the convolutional VAE (drawviz.convvae, preset cifar10-convvae) as many CPU
core-hours as DRAW's cifar10 model has had; how many epochs that buys follows from its step time. For each of
the convvae, DRAW's cifar10 preset as ``train`` runs it (eager, drawviz.model.DRAW) and with ``--fast``
(drawviz.fast.make_fast, compiled on CPU at this size), one training step is forward + backward + clipped Adam
on a batch of random images, the three interleaved step by step so that machine noise hits all alike; the
median over --steps after --warmup steps is reported, with the epochs of 50,000 images each one CPU core-hour
buys and the epochs --hours buys. Prints a table and writes convvae_steps.json to --out, with the machine's load
average: on a busy machine every row is slower, their ratios much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from drawviz import kinds
from drawviz.fast import make_fast

CIFAR_TRAIN = 50_000  # images in an epoch of CIFAR-10


def _step(net, model, optimizer, x, eps):
    """One training step as drawviz.train._step takes it: forward, backward, clip at 10, Adam."""
    optimizer.zero_grad(set_to_none=True)
    net(x, eps, check=False).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=7, help="timed steps of each (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each first (default 2; --fast compiles then)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hours", type=float, default=12.0, help="the CPU core-hours DRAW cifar10 has had (default 12.0)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="folder for convvae_steps.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = {}
    for name, preset in (("convvae", "cifar10-convvae"), ("draw eager", "cifar10"), ("draw --fast", "cifar10")):
        model = kinds.build(kinds.preset(preset))
        net = make_fast(model) if name.endswith("--fast") else model
        runs[name] = (net, model, torch.optim.Adam(model.parameters(), 1e-3))
    x = torch.rand(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    times: dict[str, list[float]] = {name: [] for name in runs}
    first = {}
    for i in range(args.warmup + args.steps):
        for name in runs if i % 2 == 0 else reversed(runs):  # alternate the order: drift hits all alike
            net, model, optimizer = runs[name]
            eps = model.sample_eps(args.batch, torch.Generator().manual_seed(i))
            tick = time.perf_counter()
            _step(net, model, optimizer, x, eps)
            took = time.perf_counter() - tick
            if i == 0:
                first[name] = took
            if i >= args.warmup:
                times[name].append(took)
    rows = []
    for name, (net, model, _) in runs.items():
        s = statistics.median(times[name])
        per_epoch = CIFAR_TRAIN / args.batch * s / 3600 * args.threads  # CPU core-hours
        rows.append(
            {
                "model": name,
                "parameters": sum(p.numel() for p in model.parameters()),
                "s_per_step": s,
                "min_s": min(times[name]),
                "max_s": max(times[name]),
                "first_step_s": first[name],
                "images_per_s": args.batch / s,
                "epochs_per_core_hour": 1 / per_epoch,
                f"epochs_in_{args.hours:g}_core_hours": args.hours / per_epoch,
            }
        )
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "load_average": os.getloadavg(),  # other work on the machine slows every row alike (interleaved)
        "torch": torch.__version__,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
    }
    print(pd.DataFrame(rows).set_index("model").to_string(float_format=lambda v: f"{v:.4g}"))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "convvae_steps.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

"""One training run on two threads, or two runs on one thread each: which gives more epochs per hour?

    python benchmarks/threads.py --steps 40 --out benchmarks/campaign/threads.json

Times fast-path training steps of MNIST T = 64 at batch 64 (a) in one process on 2 threads and
(b) in two processes on 1 thread each, started together (each keeps a core busy, as two legs of a
campaign do). Run it on a quiet machine: it is a ratio of two measurements taken minutes apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drawviz.device import describe_hardware  # noqa: E402
from drawviz.fast import make_fast  # noqa: E402
from drawviz.model import DRAW, DrawConfig  # noqa: E402

IMAGES_PER_EPOCH = 60_000


def seconds_per_step(threads: int, steps: int, batch: int, T: int) -> float:
    """Median seconds of a fast-path training step (forward, backward, Adam) after a short warm-up."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DRAW(DrawConfig(T=T))
    net = make_fast(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(batch, 1, 28, 28) < 0.2).float()
    times = []
    for i in range(steps + 3):
        tick = time.perf_counter()
        out = net(x, model.sample_eps(batch), check=False)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - tick)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("benchmarks/campaign/threads.json"))
    p.add_argument("--_one", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._one:
        print(seconds_per_step(args._one, args.steps, args.batch, args.T))
        return 0
    one = [sys.executable, __file__, "--steps", str(args.steps), "--batch", str(args.batch), "--T", str(args.T)]
    two_threads = float(subprocess.check_output(one + ["--_one", "2"], text=True))
    pair = [subprocess.Popen(one + ["--_one", "1"], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    one_thread_each = [float(proc.communicate()[0]) for proc in pair]
    per_epoch = IMAGES_PER_EPOCH / args.batch
    result = {
        "hardware": describe_hardware(torch.device("cpu")),
        "T": args.T,
        "batch": args.batch,
        "steps_timed": args.steps,
        "one_run_two_threads_s_per_step": two_threads,
        "two_runs_one_thread_s_per_step": one_thread_each,
        "epochs_per_hour_one_run_two_threads": 3600 / (two_threads * per_epoch),
        "epochs_per_hour_two_runs_one_thread_each": sum(3600 / (t * per_epoch) for t in one_thread_each),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

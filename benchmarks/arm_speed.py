"""The fast path against the reference model on a preset with an arm (issue 33), in one process.

    OMP_NUM_THREADS=1 python benchmarks/arm_speed.py --preset cifar10 --scale-canvas --steps 12 [--bf16]

Training steps (forward, backward, Adam) at batch 64, the two interleaved step by step so that machine noise hits
both alike; medians after the warm-up (the fast path compiles on its first step). Prints one line: the medians and
their ratio, and checks first that both give the same loss. With --bf16 the fast path with bfloat16 GEMMs too (its
loss within 1 %: it rounds), a third runner in the same interleaving.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawviz.fast import make_fast  # noqa: E402
from drawviz.model import DrawConfig  # noqa: E402
from drawviz.model import DRAW  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cifar10")
    p.add_argument("--scale-canvas", action="store_true")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=12, help="timed steps of each, after 2 of warm-up")
    p.add_argument("--bf16", action="store_true", help="also the fast path with bfloat16 GEMMs")
    args = p.parse_args(argv)
    config = DrawConfig.preset(args.preset, scale_canvas=args.scale_canvas)
    torch.manual_seed(0)
    reference = DRAW(config)
    fast_model = DRAW(config)
    fast_model.load_state_dict(reference.state_dict())
    fast = make_fast(fast_model)
    x = (torch.rand(args.batch, *config.image_shape, generator=torch.Generator().manual_seed(1)) * 255).round() / 255
    eps = reference.sample_eps(args.batch, torch.Generator().manual_seed(2))
    same = torch.allclose(reference(x, eps).loss, fast(x, eps).loss, rtol=1e-4)
    if not same:
        raise SystemExit("the fast path and the reference disagree on the loss: not timed")
    runs = {
        "reference": (reference, torch.optim.Adam(reference.parameters(), 1e-4)),
        "fast": (fast, torch.optim.Adam(fast_model.parameters(), 1e-4)),
    }
    if args.bf16:
        low_model = DRAW(config)
        low_model.load_state_dict(reference.state_dict())
        low = make_fast(low_model, bf16=True)
        if not torch.allclose(reference(x, eps).loss, low(x, eps).loss, rtol=1e-2):
            raise SystemExit("the bf16 fast path is more than 1 % from the reference's loss: not timed")
        runs["fast bf16"] = (low, torch.optim.Adam(low_model.parameters(), 1e-4))
    times = {name: [] for name in runs}
    for step in range(args.steps + 2):
        for name, (net, opt) in runs.items():
            tick = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            net(x, eps).loss.backward()
            opt.step()
            if step >= 2:
                times[name].append(time.perf_counter() - tick)
    ref, fst = statistics.median(times["reference"]), statistics.median(times["fast"])
    arms = config.beyond_paper() or "none"
    low = f", fast bf16 {statistics.median(times['fast bf16']):.3f} s/step" if args.bf16 else ""
    print(
        f"{args.preset} b{args.batch}, arms {arms}, {torch.get_num_threads()} thread(s): reference {ref:.3f} s/step, "
        f"fast {fst:.3f} s/step, {ref / fst:.2f}x{low} (medians of {args.steps})"
    )


if __name__ == "__main__":
    main()

"""Is a model's flat curve a plateau of its learning rate or of the model? (issue 33, step 2)

From a shipped model's weights (a fresh Adam each time), each arm trains at one constant rate for a few minutes and
then cools down to 5 % of it, as every leg of the shipped models ended; all arms see the same minutes on one thread.
If some rate ends below where the shipped weights started, the plateau was the rate's; if none does, it is the
model's, at this compute.

    OMP_NUM_THREADS=1 python benchmarks/rate_sweep.py models/cifar10.pt --rates 5e-5 2e-4 1e-3 \
        --minutes 20 --cooldown-minutes 8 --test-limit 2000 --out benchmarks/rate-sweep

Each arm is a ``python -m drawviz train --init-from`` leg with its own checkpoint under <out>/runs (ignored by git;
re-running resumes an interrupted arm and skips finished ones). Writes <out>/<model>.csv (each arm's test bounds
against its minutes, the starting point at minute 0), <out>/<model>.json (the table and the commands) and
<out>/<model>.png, and prints the table. All bounds are on the same class-balanced test subset (seed 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import legs  # noqa: E402

from drawviz import campaign  # noqa: E402
from drawviz.checkpoints import load_checkpoint  # noqa: E402
from drawviz.files import write_json  # noqa: E402


def _drawviz(*args: str) -> list[str]:
    return [sys.executable, "-m", "drawviz", *args]


def _start_bound(model: Path, test_limit: int, out: Path) -> float:
    """The shipped weights' bound on the subset every arm is evaluated on (cached: it takes minutes on CIFAR-10)."""
    cache = out / f"{model.stem}-start-{test_limit}.json"
    if cache.exists():
        return json.loads(cache.read_text())["test_nll_bound"]
    found = subprocess.run(
        _drawviz("evaluate", str(model), "--test-limit", str(test_limit), "--no-progress"),
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    bound = json.loads(found)["nll_bound"]
    write_json(cache, {"model": str(model), "test_limit": test_limit, "test_nll_bound": bound})
    return bound


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--rates", type=float, nargs="+", default=[5e-5, 2e-4, 1e-3])
    p.add_argument("--minutes", type=float, default=20.0, help="each arm's minutes of training, cooldown included")
    p.add_argument("--cooldown-minutes", type=float, default=8.0)
    p.add_argument("--eval-every-minutes", type=float, default=6.0)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "rate-sweep")
    p.add_argument("--read-only", action="store_true", help="read the legs that have run; train none (redraw the figure)")
    args = p.parse_args(argv)
    out, model = args.out.resolve(), args.model.resolve()
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    start = _start_bound(model, args.test_limit, out)
    print(f"start: {model.name} {start:.2f} on {args.test_limit} test images", flush=True)

    rows, commands, arm_steps = [], {}, {}
    source = load_checkpoint(model)
    for rate in args.rates:
        state, command = legs.leg(
            model, runs / f"{model.stem}-lr{rate:g}.pt", source=source, lr=rate, args=args, fast=True, label=f"arm lr {rate:g}"
        )
        commands[f"{rate:g}"] = " ".join(command)
        arm_steps[f"{rate:g}"] = state["step"] - source["step"]
        leg = campaign.curve(state)
        leg = leg[leg["leg"] == leg["leg"].max()]  # this arm's leg; the shipped model's own legs came with its weights
        rows.append({"lr": rate, "minutes": 0.0, "step": 0, "test_nll_bound": start})
        first = campaign.legs_of(state)[-1]
        for r in leg.itertuples():
            minutes = (r.hours * 3600 - (first.get("start_seconds") or 0.0)) / 60
            rows.append({"lr": rate, "minutes": minutes, "step": r.step, "test_nll_bound": r.test_nll_bound})
    table = pd.DataFrame(rows)
    stem = model.stem
    table.to_csv(out / f"{stem}.csv", index=False)
    dims = math.prod(source["config"].image_shape)
    ends = table.groupby("lr").last()
    summary = {
        "model": legs.shown(model),
        "test_limit": args.test_limit,
        "start_nll_bound": start,
        "start_bits_per_dim": start / (dims * math.log(2)),
        "arms": {
            f"{lr:g}": {
                "end_nll_bound": r.test_nll_bound,
                "end_bits_per_dim": r.test_nll_bound / (dims * math.log(2)),
                "steps": arm_steps[f"{lr:g}"],
            }
            for lr, r in ends.iterrows()
        },
        "minutes": args.minutes,
        "cooldown_minutes": args.cooldown_minutes,
        "commands": commands,
        "steps": arm_steps,  # optimiser steps each arm took in its minutes (the machine was shared: see the closing note)
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    write_json(out / f"{stem}.json", summary)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.lineplot(table, x="minutes", y="test_nll_bound", hue="lr", marker="o", palette="viridis", ax=ax)
    ax.axhline(start, color="grey", ls=":", label="the shipped weights")
    ax.set(
        xlabel="minutes on one thread (the last in a cooldown to 5 %)",
        ylabel=f"test NLL bound, nats ({args.test_limit} images)",
        title=f"{stem}: each rate from the shipped weights",
    )
    ax.legend(title="peak rate")
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    print(table.groupby("lr").last().to_string())


if __name__ == "__main__":
    main()

"""Arms beyond the paper, each a leg from the shipped CIFAR-10 weights at equal CPU time (issue 33, step 3).

Where the bits go (benchmarks/where-the-bits-go/) found two thirds of the squared error in the finest frequency band,
which a canvas's mean cannot draw but a per-image scale can at least admit to, and a few latent units carrying the KL;
the rate sweep (benchmarks/rate-sweep/) found the plateau to be the model's, not the rate's. So the arms change the
model, not the schedule: each grows from the shipped weights (drawviz.model.with_arms: it starts as that model,
exactly) and trains on under the rate sweep's protocol, 20 minutes on one thread at 2e-4 with the last 8 a cooldown
to 5 %, so that the rate sweep's 2e-4 arm is the base arm: the same model trained on without the arm.

    OMP_NUM_THREADS=1 python benchmarks/cifar_arms.py models/cifar10.pt --arms scale prior \
        --minutes 20 --cooldown-minutes 8 --test-limit 2000 --out benchmarks/arms-cifar10

Each arm is a ``python -m drawviz train --init-from`` leg with its own checkpoint under <out>/runs (ignored by git;
re-running resumes an interrupted arm and skips finished ones). The arms train eagerly (the fast path is the paper's
model only), the base arm on the fast path: equal CPU time, not equal steps. Writes <out>/<model>.csv (each arm's test
bounds against its minutes), <out>/<model>.json (the table and the commands) and <out>/<model>.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import legs  # noqa: E402

from drawviz import campaign  # noqa: E402
from drawviz.checkpoints import grow_checkpoint, load_checkpoint, settings_of  # noqa: E402
from drawviz.files import write_json  # noqa: E402
from drawviz.model import with_arms  # noqa: E402

ARMS = {"scale": {"scale_canvas": True}, "prior": {"prior": "learned"}, "both": {"scale_canvas": True, "prior": "learned"}}
SHOWN = {"scale": "scale canvas", "prior": "learned prior", "both": "scale canvas and learned prior"}  # the legend's names


def _grown(model: Path, arm: str, runs: Path) -> Path:
    """The shipped model with the arm added at zero, as a checkpoint a leg can start from."""
    start = runs / f"{model.stem}-{arm}-start.pt"
    if not start.exists():
        grow_checkpoint(model, start, lambda draw: with_arms(draw, **ARMS[arm]))
    return start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=["scale", "prior"])
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--minutes", type=float, default=20.0, help="each arm's minutes of training, cooldown included")
    p.add_argument("--cooldown-minutes", type=float, default=8.0)
    p.add_argument("--eval-every-minutes", type=float, default=6.0)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--base", type=Path, default=ROOT / "benchmarks" / "rate-sweep", help="the rate sweep's folder")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "arms-cifar10")
    p.add_argument("--read-only", action="store_true", help="read the legs that have run; train none (redraw the figure)")
    p.add_argument(
        "--continued", type=Path, help="a checkpoint that trained on from an arm's end (its later evaluations: one more curve)"
    )
    p.add_argument("--continued-arm", choices=sorted(ARMS), default="scale")
    args = p.parse_args(argv)
    out, model = args.out.resolve(), args.model.resolve()
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)

    # the base arm: the rate sweep's leg at this rate, the same protocol without an arm
    swept = pd.read_csv(args.base / f"{model.stem}.csv")
    base = swept[swept["lr"] == args.lr].drop(columns="lr").assign(arm="base (rate sweep)")
    if base.empty:
        raise SystemExit(f"the rate sweep in {args.base} has no arm at {args.lr:g}: run benchmarks/rate_sweep.py first")
    start = float(base.loc[base["minutes"] == 0, "test_nll_bound"].iloc[0])
    swept_steps = json.loads((args.base / f"{model.stem}.json").read_text()).get("steps", {}).get(f"{args.lr:g}")
    rows, commands, steps = [base], {}, {"base (rate sweep)": swept_steps}
    source = load_checkpoint(model)  # read once: the arms' start, its step, minutes, image size and dataset
    first_step = source["step"]
    for arm in args.arms:
        state, command = legs.leg(
            _grown(model, arm, runs),
            runs / f"{model.stem}-{arm}.pt",
            source=source,
            lr=args.lr,
            args=args,
            fast=False,
            label=f"arm {arm}",
        )  # eagerly, as the arms ran (the fast path has painted the scale canvas since)
        commands[SHOWN[arm]] = " ".join(command)
        steps[SHOWN[arm]] = state["step"] - first_step
        leg = campaign.curve(state)
        leg = leg[leg["leg"] == leg["leg"].max()]
        began = (campaign.legs_of(state)[-1].get("start_seconds") or 0.0) / 60
        rows.append(pd.DataFrame({"minutes": [0.0], "step": [0], "test_nll_bound": [start], "arm": [SHOWN[arm]]}))
        rows.append(
            pd.DataFrame(
                {
                    "minutes": leg["hours"] * 60 - began,
                    "step": leg["step"],
                    "test_nll_bound": leg["test_nll_bound"],
                    "arm": SHOWN[arm],
                }
            )
        )
    if args.continued:  # the arm trained on past the protocol's minutes: its curve goes on, at another CPU time
        state = load_checkpoint(args.continued)
        later = campaign.curve(state)
        later = later.assign(minutes=later["hours"] * 60 - legs.minutes(source))
        later = later[later["minutes"] > args.minutes + 0.01]
        name = f"{SHOWN[args.continued_arm]}, trained on"
        steps[name] = state["step"] - first_step
        rows.append(later[["minutes", "step", "test_nll_bound"]].assign(arm=name))
    table = pd.concat(rows, ignore_index=True)
    dims = math.prod(source["config"].image_shape)
    table["bits_per_dim"] = table["test_nll_bound"] / (dims * math.log(2))
    table.to_csv(out / f"{model.stem}.csv", index=False)
    ends = table.groupby("arm").last()
    write_json(
        out / f"{model.stem}.json",
        {
            "model": legs.shown(model),
            "test_limit": args.test_limit,
            "start_bits_per_dim": start / (dims * math.log(2)),
            "arms": {arm: {"end_bits_per_dim": r.bits_per_dim, "end_nll_bound": r.test_nll_bound} for arm, r in ends.iterrows()},
            "steps": steps,
            "minutes": args.minutes,
            "cooldown_minutes": args.cooldown_minutes,
            "lr": args.lr,
            "commands": commands,
            "threads": os.environ.get("OMP_NUM_THREADS"),
        },
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    try:  # the same-data anchor the issue measures against (cached after one fit of the training images)
        from drawviz import anchors

        gaussian = anchors.anchors(settings_of(source).get("dataset") or "cifar10")["full_covariance"]
    except Exception as err:  # noqa: BLE001 -- the figure is worth having without the line
        print(f"no Gaussian anchor on the figure: {err}")
        gaussian = None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sns.lineplot(table, x="minutes", y="bits_per_dim", hue="arm", marker="o", ax=ax)
    ax.axhline(start / (dims * math.log(2)), color="grey", ls=":", label="the weights the arms start from")
    if gaussian is not None:
        ax.axhline(gaussian, color="k", ls="--", lw=1, label=f"full-covariance Gaussian, same images: {gaussian:.2f}")
    ax.set(
        xlabel=f"CPU minutes (one thread; each arm's last {args.cooldown_minutes:g} of {args.minutes:g} a cooldown to 5 %)",
        ylabel=f"test bits/dim ({args.test_limit} images)",
        title=f"{model.stem}: arms from the shipped weights, at {args.lr:g}",
    )
    ax.legend(title="arm", loc="lower left", bbox_to_anchor=(0.01, 0.1), fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{model.stem}.png", dpi=120)
    print(ends[["step", "test_nll_bound", "bits_per_dim"]].to_string())


if __name__ == "__main__":
    main()

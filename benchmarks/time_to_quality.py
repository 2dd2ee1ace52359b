"""Time to quality: train DRAW for a wall-clock budget and record the test NLL bound against
minutes and epochs, on all 10,000 statically binarised MNIST test digits.

    python benchmarks/time_to_quality.py --label anneal --recipe anneal --minutes 60 --bf16 --out benchmarks/ttq
    python benchmarks/time_to_quality.py --label constant --recipe constant --minutes 60 --out benchmarks/ttq
    python benchmarks/time_to_quality.py --plot --out benchmarks/ttq        # one figure of every run there

Each run writes <out>/<label>.csv (one row per evaluation: minutes, step, epoch, test bound) and
<out>/<label>.json (recipe, config, machine), and checkpoints to <out>/<label>.pt, so an
interrupted run resumes where it stopped (same command). The clock counts training only:
evaluations and checkpoint writes are excluded. --plot draws <out>/time_to_quality.png from
every CSV in <out>.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drawviz import data  # noqa: E402
from drawviz.model import DrawConfig  # noqa: E402
from drawviz.device import describe_hardware
from drawviz.recipe import Recipe
from drawviz.train import train  # noqa: E402


def run(args) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"attention": False} if args.no_attention else {}
    if args.T is not None:
        overrides["T"] = args.T
    config = DrawConfig.preset(args.preset, **overrides)
    recipe = Recipe.from_flags(args)
    train_set = data.load(args.dataset, "train", args.data_root)
    test_set = data.load(args.dataset, "test", args.data_root, limit=args.test_limit)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    meta = {
        "label": args.label,
        "init": args.init,
        "recipe": recipe.to_dict(),
        "config": config.to_dict(),
        "minutes": args.minutes,
        "dataset": args.dataset,
        "test_images": len(test_set),
        "bf16": args.bf16,
        "fast": args.fast or args.bf16,
        "hardware": describe_hardware(device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / f"{args.label}.json").write_text(json.dumps(meta, indent=2))
    print(
        f"time_to_quality: {args.label}: {args.minutes} min on {meta['hardware']['name']} "
        f"({meta['hardware'].get('threads', 'GPU')} threads), {recipe}",
        file=sys.stderr,
    )
    curve = []

    def on_row(row):
        if row["test_nll_bound"] == row["test_nll_bound"]:  # evaluated at this step (not NaN)
            curve.append(
                {
                    "label": args.label,
                    "minutes": row["seconds"] / 60,
                    "step": row["step"],
                    "epoch": row["epoch"],
                    "test_nll_bound": row["test_nll_bound"],
                    "lr": row["lr"],
                }
            )
            write_curve(out / f"{args.label}.csv", curve)
            print(
                f"  {row['seconds'] / 60:6.1f} min  step {row['step']:6d}  epoch {row['epoch']:5.2f}  "
                f"test bound {row['test_nll_bound']:.2f} nats",
                file=sys.stderr,
                flush=True,
            )

    model = config
    if args.init == "anchor" and not (out / f"{args.label}.pt").exists():  # a resumed run keeps its weights
        model = anchor_init(config, seed=args.seed)
    result = train(
        model,
        train_set,
        test_set,
        steps=args.steps,
        minutes=args.minutes,
        recipe=recipe,
        device=device,
        seed=args.seed,
        checkpoint=out / f"{args.label}.pt",
        checkpoint_every=250,
        eval_every_minutes=args.eval_every_minutes,
        eval_batch_size=args.eval_batch_size,
        progress=not args.no_progress,
        callbacks=[on_row],
        fast=args.fast,
        bf16=args.bf16,
        train_args={"dataset": args.dataset, "benchmark": "time_to_quality", "label": args.label},
    )
    # evaluations from before a resume live in the checkpoint's history: rebuild the whole curve
    history = result.history.dropna(subset=["test_nll_bound"])
    curve = [
        {
            "label": args.label,
            "minutes": r.seconds / 60,
            "step": int(r.step),
            "epoch": r.epoch,
            "test_nll_bound": r.test_nll_bound,
            "lr": r.lr,
        }
        for r in history.itertuples()
    ]
    write_curve(out / f"{args.label}.csv", curve)
    meta.update(
        finished=time.strftime("%Y-%m-%d %H:%M:%S"),
        steps=result.step,
        final_test_nll_bound=curve[-1]["test_nll_bound"] if curve else None,
    )
    (out / f"{args.label}.json").write_text(json.dumps(meta, indent=2))
    return out / f"{args.label}.csv"


def anchor_init(config: DrawConfig, seed: int = 0):
    """DRAW initialised as jbornschein/draw does: every weight N(0, 0.01), every bias 0. Its first
    attention windows then sit at the centre with δ ≈ (A−1)/(N−1): the grid covers the whole image."""
    from drawviz.model import DRAW

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DRAW(config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                leaf = name.rsplit(".", 1)[-1]  # weight, weight_ih, bias_hh, ...; c0, h_enc0 stay zero
                if leaf.startswith("weight"):
                    p.normal_(0.0, 0.01)
                elif leaf.startswith("bias"):
                    p.zero_()
    return model


def write_curve(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(rows, columns=["label", "minutes", "step", "epoch", "test_nll_bound", "lr"]).to_csv(tmp, index=False)
    os.replace(tmp, path)


def plot(out: Path) -> Path:
    """NLL bound against minutes and against epochs, one line per run in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frames = [pd.read_csv(p) for p in sorted(Path(out).glob("*.csv"))]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise SystemExit(f"no curves in {out}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for f in frames:
        label = f["label"].iloc[0]
        for ax, x in zip(axes, ("minutes", "epoch")):
            ax.plot(f[x], f["test_nll_bound"], marker="o", ms=3, label=f"{label} ({f['test_nll_bound'].iloc[-1]:.1f})")
    top = max(f["test_nll_bound"].quantile(0.25) for f in frames)
    low = min(f["test_nll_bound"].min() for f in frames)
    for ax, x in zip(axes, ("minutes of training", "epochs")):
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.axhline(90, color="0.5", lw=0.8, ls="--")
    axes[0].set_ylim(low - 3, max(top, low + 10) + 5)
    sizes = {json.loads(m.read_text()).get("test_images") for m in Path(out).glob("*.json")} - {None}
    digits = f"{sizes.pop():,} test digits" if len(sizes) == 1 else "test digits"
    axes[0].set_ylabel(f"test NLL bound, nats ({digits})")
    axes[0].legend(title="recipe (last bound)", fontsize=8)
    axes[0].set_title("DRAW, MNIST: time to quality")
    axes[1].set_title("the same runs against epochs")
    path = Path(out) / "time_to_quality.png"
    fig.savefig(path, dpi=130)
    return path


def table(out: Path, at_epochs=(1.0, 2.0), at_minutes=(11.0, 22.0)) -> Path:
    """<out>/arms.md: each run's bound interpolated on its own curve at equal epochs (images seen: fair under a
    shared, busy machine) and at equal minutes of its own training clock, with its seconds per step."""
    import json as _json

    import numpy as np
    import pandas as pd

    rows = []
    for path in sorted(Path(out).glob("*.csv")):
        f = pd.read_csv(path)
        if not len(f):
            continue
        meta = _json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else {}
        recipe = meta.get("recipe", {})
        row = {
            "arm": f["label"].iloc[0],
            "init": meta.get("init", "default"),
            "lr": f"{recipe['lr']:g}" if "lr" in recipe else None,
            "batch": recipe.get("batch_size"),
            "warm-up": recipe.get("warmup"),
        }
        for e in at_epochs:
            row[f"{e:g} ep"] = float(np.interp(e, f["epoch"], f["test_nll_bound"])) if f["epoch"].max() >= e else None
        for m in at_minutes:
            row[f"{m:g} min"] = float(np.interp(m, f["minutes"], f["test_nll_bound"])) if f["minutes"].max() >= m - 0.05 else None
        last = f.iloc[-1]
        row.update(
            {
                "end: epochs": last["epoch"],
                "end: bound": last["test_nll_bound"],
                "s/step": 60 * last["minutes"] / max(last["step"], 1),
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    from drawviz.text import markdown_table

    text = markdown_table(frame, index=False) if len(frame) else "no runs"
    path = Path(out) / "arms.md"
    path.write_text(f"Test NLL bound, nats ({meta.get('test_images', '?')} test digits), from scratch:\n\n{text}\n")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="benchmarks/ttq")
    p.add_argument("--plot", action="store_true", help="only draw the figure and the table (arms.md) of every run in --out")
    p.add_argument("--label", help="the run's name (files <out>/<label>.*)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--steps", type=int, help="also stop after this many steps")
    p.add_argument("--eval-every-minutes", type=float, default=10.0)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root")
    p.add_argument("--preset", default="mnist")
    p.add_argument("--T", type=int)
    p.add_argument("--no-attention", action="store_true")
    p.add_argument("--test-limit", type=int, help="default: the whole test set")
    p.add_argument("--recipe", default="anneal")
    p.add_argument(
        "--init",
        choices=["default", "anchor"],
        default="default",
        help="anchor: every weight N(0, 0.01) and every bias 0 (jbornschein/draw); default: PyTorch's",
    )
    for name, kind in (
        ("lr", float),
        ("warmup", int),
        ("final-lr", float),
        ("batch-size", int),
        ("clip", float),
        ("beta1", float),
        ("beta2", float),
    ):
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--decay", choices=["constant", "cosine", "linear"])
    p.add_argument("--fast", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-batch-size", type=int, default=500)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.plot:
        if not args.label:
            p.error("--label is required to run (or --plot to draw)")
        run(args)
    print(plot(Path(args.out)))
    print(table(Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's comparison at equal training: DRAW with attention, without attention and the one-shot VAE,
their test bounds read off each model's own curve (every leg of its training) at equal epochs and at equal
CPU core-hours, beside the published points.

    python benchmarks/equal_budgets.py models/mnist.pt models/mnist-noattn.pt models/mnist-vae.pt --out benchmarks/campaign

Writes <out>/equal_budgets.csv (one row per model and budget: the bound linearly interpolated between the two
evaluations around it, empty where a model has not trained that long), <out>/equal_budgets_annealed.csv (the
bounds at the end of each anneal, campaign.anneal_ends: a constant-rate leg's bounds sit above its cooldown's,
so those are the points that compare), <out>/equal_budgets.md (both as Markdown tables) and
<out>/campaign.png (plots.plot_campaign of all the curves with the anchors).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from drawviz import campaign, plots
from drawviz.text import markdown_table
from drawviz.checkpoints import load_checkpoint

EPOCHS = (1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 80)
CPU_HOURS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)


def _name(state, path: Path) -> str:
    c = state["config"]
    kind = "one-shot VAE" if c.T == 1 and not c.attention else ("attention" if c.attention else "no attention")
    return f"{kind} ({path.name}, T = {c.T})"


def at(curve: pd.DataFrame, axis: str, value: float) -> float:
    """The bound at ``value`` of ``axis`` by linear interpolation between evaluations; NaN outside the curve."""
    xs, ys = curve[axis].to_numpy(), curve["test_nll_bound"].to_numpy()
    if not len(xs) or value < xs[0] or value > xs[-1]:
        return float("nan")
    return float(np.interp(value, xs, ys))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("benchmarks/campaign"))
    args = p.parse_args(argv)
    curves, rows = [], []
    for path in args.checkpoints:
        state = load_checkpoint(path)
        name = _name(state, path)
        curve = campaign.curve(state, name).sort_values("epoch")
        curves.append(curve)
        total = campaign.totals(state)
        for axis, budgets in (("epoch", EPOCHS), ("cpu_hours", CPU_HOURS)):
            for b in budgets:
                rows.append({"model": name, "budget": axis, "at": b, "test_nll_bound": at(curve, axis, b)})
        rows.append(
            {
                "model": name,
                "budget": "final",
                "at": total["epochs"],
                "test_nll_bound": curve["test_nll_bound"].iloc[-1],
                "cpu_hours": total["cpu_hours"],
                "legs": total["legs"],
            }
        )
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "equal_budgets.csv", index=False)
    md = []
    for axis, label in (("epoch", "epochs"), ("cpu_hours", "CPU core-hours")):
        wide = table[table["budget"] == axis].pivot(index="model", columns="at", values="test_nll_bound")
        wide = wide.loc[:, wide.notna().sum() >= 2]  # budgets at least two models reached
        md.append(f"Test bound (nats, all 10,000 test digits) at equal {label}:\n\n" + markdown_table(wide) + "\n")
    ends = campaign.anneal_ends(pd.concat(curves, ignore_index=True))
    ends = ends[["model", "epoch", "cpu_hours", "test_nll_bound"]].rename(columns={"epoch": "epochs"})
    md.append(
        f"At the end of each anneal (the rate at {campaign.ANNEALED:.0%} of its peak or less), the points that compare:\n\n"
        + markdown_table(ends, index=False)
        + "\n"
    )
    ends.assign(budget="annealed").to_csv(args.out / "equal_budgets_annealed.csv", index=False)
    final = table[table["budget"] == "final"][["model", "at", "cpu_hours", "legs", "test_nll_bound"]]
    final = final.astype({"legs": int})
    md.append("At the end of training:\n\n" + markdown_table(final.rename(columns={"at": "epochs"}), index=False))
    (args.out / "equal_budgets.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    plots.save(
        plots.plot_campaign(pd.concat(curves), campaign.ANCHORS, title="MNIST: test bound over all legs of training"),
        args.out / "campaign.png",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DRAW beside the one-shot VAE of the same images, against CPU hours (issue 33): every test bound in each model's
history, over all its legs, against epochs and CPU core-hours, with the same-data Gaussians as levels.

    python benchmarks/cifar_compute.py models/cifar10.pt models/cifar10-convvae.pt --out benchmarks/cifar-compute

The bounds are those evaluated during training (on the --test-limit images each leg used, 2,000 for these models),
so the curves compare with each other, not with a card's figure on all 10,000. Writes <out>/<dataset>.png (two
panels, plots.plot_campaign), <out>/<dataset>.csv (the curves, with bits/dim) and prints each model's last point.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drawviz import anchors, campaign, kinds, plots  # noqa: E402
from drawviz.checkpoints import load_checkpoint, settings_of  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path, nargs="+", help="checkpoints of one dataset (their histories are read)")
    p.add_argument("--data-root")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cifar-compute")
    args = p.parse_args(argv)
    curves, datasets, dims = [], set(), set()
    for path in args.models:
        state = load_checkpoint(path)
        name = f"{path.stem} ({kinds.get(state['kind']).name})"
        curves.append(campaign.curve(state, name))
        datasets.add(settings_of(state).get("dataset"))
        dims.add(math.prod(state["config"].image_shape))
    if len(datasets) != 1 or len(dims) != 1:
        raise SystemExit(f"the models are of different datasets ({sorted(map(str, datasets))}): compare one at a time")
    (dataset,), (dim,) = datasets, dims
    table = pd.concat(curves, ignore_index=True)
    if table.empty:
        raise SystemExit("no test bound in these checkpoints' histories")
    nats = dim * math.log(2)  # nats per image of one bit per dimension
    table["bits_per_dim"] = table["test_nll_bound"] / nats
    same = anchors.anchors(dataset, args.data_root)
    levels = pd.DataFrame(
        [
            {"source": f"{what} Gaussian, same images", "test_nll_bound": same[key] * nats, "epoch": None}
            for what, key in (("full-covariance", "full_covariance"), ("diagonal", "diagonal"))
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / f"{dataset}.csv", index=False)
    fig = plots.plot_campaign(
        table, levels, title=f"{dataset}: test bound during training against epochs and CPU hours", dims=dim
    )
    plots.save(fig, args.out / f"{dataset}.png")
    for model, rows in table.groupby("model", sort=False):
        last = rows.iloc[-1]
        print(
            f"{model}: {last.bits_per_dim:.3f} bits/dim at {last.epoch:.1f} epochs, {last.cpu_hours:.2f} CPU core-hours "
            f"(best {rows.bits_per_dim.min():.3f})"
        )


if __name__ == "__main__":
    main()

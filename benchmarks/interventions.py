"""The README's two intervention tables, measured on the shipped MNIST models: what each intervention at one
step does to the attention model's drawing, and DRAW with and without attention beside the one-shot VAE.

    python benchmarks/interventions.py --out benchmarks/interventions

Both on the same 256 class-balanced MNIST test digits (drawn with seed 0, binarised with seed 0). Writes
<out>/effects.csv (comparisons.intervention_effects at --step), <out>/steps.csv
(comparisons.what_each_step_buys), <out>/one_shot.csv (comparisons.one_shot_vs_draw,
with each model's training from its legs) and <out>/interventions.md (both as Markdown tables).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from drawviz import campaign, comparisons, data
from drawviz.text import markdown_table
from drawviz.checkpoints import load_checkpoint, model_from_checkpoint

MODELS = {
    "DRAW, attention": "models/mnist.pt",
    "DRAW, no attention": "models/mnist-noattn.pt",
    "one-shot VAE": "models/mnist-vae.pt",
}
SHOWN_STEPS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64)


def training(path: str) -> str:
    """'305 min, 27.3 epochs': the model's training over all its legs."""
    totals = campaign.totals(load_checkpoint(path))
    return f"{60 * totals['hours']:.0f} min, {totals['epochs']:.1f} epochs"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/interventions")
    p.add_argument("--data-root", help="default: $DRAWVIZ_DATA or ../shared/data")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--step", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    images = data.load("mnist", "test", args.data_root).balanced(args.images, seed=args.seed).images
    models = {name: model_from_checkpoint(path) for name, path in MODELS.items()}

    x = data.binarize(images, seed=args.seed)
    effects, traces = comparisons.intervention_effects(models["DRAW, attention"], x, args.step, seed=args.seed)
    effects.to_csv(out / "effects.csv", index=False)
    steps = comparisons.what_each_step_buys(models["DRAW, attention"], x, trace=traces["plain"])
    steps.to_csv(out / "steps.csv", index=False)
    one_shot = comparisons.one_shot_vs_draw(models, images, seed=args.seed)
    one_shot.insert(0, "file", [Path(MODELS[name]).name for name in one_shot.index])
    one_shot.insert(2, "training", [training(MODELS[name]) for name in one_shot.index])
    one_shot.to_csv(out / "one_shot.csv")

    shown = one_shot.reset_index()
    text = (
        f"# Interventions and the one-shot comparison ({args.images} class-balanced MNIST test digits, seed {args.seed})\n\n"
        f"`python benchmarks/interventions.py --out {args.out}`\n\n"
        f"## Interventions at step {args.step} on `mnist.pt`\n\n"
        + markdown_table(effects, index=False)
        + "\n\n## What each step of `mnist.pt` buys (bits per image)\n\n"
        + markdown_table(steps[steps.step.isin(SHOWN_STEPS)], index=False)
        + "\n\n## DRAW against a one-shot VAE\n\n"
        + markdown_table(shown, index=False)
        + "\n"
    )
    (out / "interventions.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

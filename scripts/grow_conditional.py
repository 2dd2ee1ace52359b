"""Start a conditional DRAW from a trained DRAW (drawviz.conditional.grown_from): the model it grows from, exactly,
with every path of the condition at zero, its history and legs kept, so that the training that follows (and its
card) reads as more legs of the same model, now told what to draw.

    python scripts/grow_conditional.py models/mnist.pt --preset mnist-label --out runs/mnist-label-start.pt
    OMP_NUM_THREADS=1 python -m drawviz train --dataset mnist --init-from runs/mnist-label-start.pt \\
        --checkpoint runs/mnist-label.pt --minutes <the source's minutes + this leg's> ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawviz import kinds  # noqa: E402
from drawviz.checkpoints import grow_checkpoint  # noqa: E402
from drawviz.conditional import ConditionalConfig, grown_from  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("draw", type=Path, help="a trained DRAW checkpoint (e.g. models/mnist.pt)")
    p.add_argument("--preset", required=True, help="a conditional preset of the same shape (e.g. mnist-label)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    config = kinds.preset(args.preset)
    if not isinstance(config, ConditionalConfig):
        raise SystemExit(f"--preset {args.preset} is a {kinds.for_config(config).name} model's, not a conditional one")
    state = grow_checkpoint(args.draw, args.out, lambda draw: grown_from(draw, config))
    print(f"wrote {args.out}: {args.preset} grown from {args.draw} (step {state['step']}), the condition's paths at zero")
    return 0


if __name__ == "__main__":
    sys.exit(main())

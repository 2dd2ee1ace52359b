"""Start an arm beyond the paper from a trained DRAW (drawviz.model.with_arms): the model it grows from, exactly, with
the arm's layers at zero and a scale canvas starting at the learned log-scale, its history and legs kept, so that the
training that follows (and its card) reads as more legs of the same model, now with the arm (issue 33).

    python scripts/grow_arms.py models/cifar10.pt --scale-canvas --out runs/cifar10-scale-start.pt
    OMP_NUM_THREADS=1 python -m drawviz train --init-from runs/cifar10-scale-start.pt \\
        --checkpoint runs/cifar10-scale.pt --minutes <the source's minutes + this leg's> ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawviz.checkpoints import grow_checkpoint  # noqa: E402
from drawviz.model import with_arms  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("draw", type=Path, help="a trained DRAW checkpoint (e.g. models/cifar10.pt)")
    p.add_argument("--scale-canvas", action="store_true", help="the likelihood's log-scale drawn as a second canvas")
    p.add_argument("--learned-prior", action="store_true", help="p(z_t | h_dec_(t-1)) in place of N(0, I)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    arms = {**({"scale_canvas": True} if args.scale_canvas else {}), **({"prior": "learned"} if args.learned_prior else {})}
    if not arms:
        p.error("name an arm: --scale-canvas, --learned-prior or both")
    state = grow_checkpoint(args.draw, args.out, lambda draw: with_arms(draw, **arms))
    print(f"wrote {args.out}: {args.draw} (step {state['step']}) with {arms}, the arms' layers at zero")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does a caption model draw what it was asked, on seen and on held-out captions? Its drawings of N class-balanced
test captions of each kind (seed 0), read by the independent judge (drawviz.asked.by_caption: both digits judged as
named, each where the caption puts it), and whether it follows the words (drawviz.asked.following). More captions
than the card's 256, whose held-out share rests on the few held-out captions among them.

    python benchmarks/caption_share.py models/captioned-mnist.pt --n 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawviz import asked, data, resources  # noqa: E402
from drawviz.checkpoints import model_from_checkpoint  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a caption model (e.g. models/captioned-mnist.pt)")
    p.add_argument("--n", type=int, default=500, help="test captions of each kind (seen, held out)")
    p.add_argument("--data-root")
    args = p.parse_args(argv)
    model = model_from_checkpoint(args.checkpoint, device="cpu")
    judge = model_from_checkpoint(resources.models() / "judge.pt", device="cpu")
    test = data.load("captioned-mnist", "test", args.data_root)
    for name, mask in (("seen", ~test.held_out), ("held out", test.held_out)):
        some = test.where(mask, f"the {name} combinations").balanced(args.n, seed=0)
        judged, follows = asked.of_captions(model, judge, some, seed=0)
        follows = follows[["first_on_own", "first_on_other"]].mean()
        own, other = 100 * follows["first_on_own"], 100 * follows["first_on_other"]
        print(
            f"{name}: {100 * judged['right'].mean():.1f} % of {len(judged)} test captions drawn right; "
            f"the first digit drawn while attending its word {own:.1f} % (the other's {other:.1f} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

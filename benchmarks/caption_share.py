"""Does a caption model draw what it was asked, on seen and on held-out captions? Its drawings of N class-balanced
test captions of each kind (seed 0), read by the independent judge (drawviz.asked.by_caption: both digits judged as
named, each where the caption puts it), whether it follows the words (drawviz.asked.following), where its alignment
sits (drawviz.asked.weight_by_word), and which words carry each digit (drawviz.asked.held_on_each_word: the alignment
held on one word at every step). The card draws 128 of each kind the same way.

    python benchmarks/caption_share.py models/captioned-mnist.pt --n 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawviz import asked, data  # noqa: E402
from drawviz.checkpoints import model_from_checkpoint  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a caption model (e.g. models/captioned-mnist.pt)")
    p.add_argument("--n", type=int, default=500, help="test captions of each kind (seen, held out)")
    p.add_argument("--data-root")
    args = p.parse_args(argv)
    model = model_from_checkpoint(args.checkpoint, device="cpu")
    judge = asked.judge_for("captioned-mnist")
    test = data.load("captioned-mnist", "test", args.data_root)
    judged, follows, words = asked.of_seen_and_held_out(model, judge, test, args.n, seed=0)
    for held_out, name in ((False, "seen"), (True, "held out")):
        j, f = judged[judged["held_out"] == held_out], follows[follows["held_out"] == held_out]
        own, other = 100 * f["first_on_own"].mean(), 100 * f["first_on_other"].mean()
        kinds = words[words["held_out"] == held_out].groupby("kind")[["share", "even"]].sum()
        print(
            f"{name}: {100 * j['right'].mean():.1f} % of {len(j)} test captions drawn right; "
            f"the first digit drawn while attending its word {own:.1f} % (the other's {other:.1f} %); the alignment's "
            "weight: "
            + ", ".join(
                f"on {named} {100 * kinds.loc[kind, 'share']:.1f} % (spread evenly {100 * kinds.loc[kind, 'even']:.1f} %)"
                for kind, named in asked.WORD_KINDS.items()
            )
        )
    # which words carry each digit: the alignment held on one position of a pair's caption at every step
    for name, part in asked.caption_kinds(test).items():
        held = asked.held_on_each_word(model, judge, part.balanced(args.n, seed=0))
        print(f"\n{name} pairs, the alignment held on one word at every step (interventions.attend_word):")
        print(held.to_string(index=False, float_format=lambda v: f"{100 * v:.1f} %"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

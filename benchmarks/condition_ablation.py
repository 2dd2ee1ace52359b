"""Where the label enters, measured (issue 34's ablation): (a) the decoder's input, (b) a learned prior, (c) both; beside
them the unconditional model given the same training (the control), so each bound is read against what the label can
buy at most, log 10 ≈ 2.3 nats.

At equal CPU time: each arm grown from one trained DRAW (drawviz.conditional.grown_from: it starts as that model
exactly, the label's paths at zero) and trained --minutes more under one protocol (benchmarks/legs.py: a constant
rate, the last --cooldown-minutes a cooldown, eagerly: the fast path draws no condition), the control the same
minutes without a label. Arms run one after another in one process; run two processes with different --arms to use
two cores, then one with --read-only and every arm for the table:

    OMP_NUM_THREADS=1 python benchmarks/condition_ablation.py --from models/mnist.pt --arms control decoder --minutes 30
    OMP_NUM_THREADS=1 python benchmarks/condition_ablation.py --from models/mnist.pt --arms prior both --minutes 30
    python benchmarks/condition_ablation.py --from models/mnist.pt --minutes 30 --read-only

Or of models trained elsewhere (the shipped mnist-label.pt and the control trained as many epochs):

    python benchmarks/condition_ablation.py models/mnist-label.pt --control runs/mnist-control.pt --out <folder>

For each model: its test bound on all test digits (told each digit's own class), the bound told a wrong class
((k + 1) mod 10: what the label carries), its epochs, and the share of its drawings the independent judge of its
dataset (drawviz.asked.judge_for: models/judge.pt for MNIST) reads as the class asked, beside the share of the real
test images that judge reads right (the ceiling), over ``--per-class`` drawings of each class from each of ``--seeds``
seeds. Writes <out>/table.csv, <out>/table.json and <out>/table.md, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import legs  # noqa: E402

from drawviz import asked, data, kinds  # noqa: E402
from drawviz.checkpoints import grow_checkpoint, load_checkpoint, model_from_checkpoint, settings_of  # noqa: E402
from drawviz.conditional import grown_from  # noqa: E402
from drawviz.evaluation import evaluate  # noqa: E402
from drawviz.files import write_json, write_text  # noqa: E402


def _epochs(state: dict) -> float:
    return float(((state.get("history") or [{}])[-1]).get("epoch") or 0.0)


def measure(path: Path, judge, test, args) -> dict:
    """One model's row: bound, wrong-label bound, epochs and judged share (a conditional model's)."""
    state = load_checkpoint(path)
    model = model_from_checkpoint(path, device="cpu", state=state)
    # as trained: binary digits for a Bernoulli model, the 8-bit values for the discretised logistic (Fashion-MNIST)
    binarize = data.binarised_as_trained(settings_of(state), model.config.likelihood)
    condition = getattr(model.config, "condition", "none")
    row = {
        "model": path.name,
        "enters": getattr(model.config, "enters", None) if condition != "none" else "(no label: the control)",
        "epochs": _epochs(state),
        "steps": state["step"],
        "test_nll_bound": evaluate(model, test, seed=0, binarize=binarize, progress=args.progress)["nll_bound"],
    }
    if condition == "label":
        figures = asked.of_labels(
            model, judge, test, args.per_class, seeds=range(args.seeds), binarize=binarize, progress=args.progress
        )
        row.update(
            wrong_label_bound=figures["wrong_label_bound"],
            judged_as_asked=figures["right"],
            drawings=figures["drawings"],
            judge_on_test=figures["judge_on_test"],
        )
    return row


def _markdown(table: pd.DataFrame) -> str:
    shown = lambda v: (
        "–"
        if v is None
        else f"{v:,.0f}"
        if isinstance(v, float) and v.is_integer() and v
        else f"{v:.3f}"
        if isinstance(v, float)
        else str(v)
    )  # noqa: E731
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(shown(v) for v in row) + " |" for row in table.astype(object).where(table.notna(), None).values]
    return "\n".join(lines) + "\n"


# an arm: where the label enters, as the preset that grows it from the trained DRAW (None: no label, the control)
ARMS = {"control": None, "decoder": "mnist-label-decoder", "prior": "mnist-label-prior", "both": "mnist-label"}


def train_arms(args) -> list[Path]:
    """Each arm asked for, grown from --from and trained --minutes under the legs protocol (or read, when it has
    run to its end); returns their checkpoints, the control last."""
    source = load_checkpoint(args.source)
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    protocol = SimpleNamespace(
        minutes=args.minutes,
        cooldown_minutes=args.cooldown_minutes,
        eval_every_minutes=args.eval_every_minutes,
        test_limit=args.train_test_limit,
        read_only=args.read_only,
    )
    done = []
    for arm in sorted(args.arms, key=lambda a: a == "control"):
        start = args.source
        if ARMS[arm] is not None:
            start = runs / f"{args.source.stem}-{arm}-start.pt"
            if not start.exists():
                config = kinds.preset(ARMS[arm])
                grow_checkpoint(args.source, start, lambda draw: grown_from(draw, config))
        checkpoint = runs / f"{args.source.stem}-{arm}.pt"
        legs.leg(start, checkpoint, source=source, lr=args.lr, args=protocol, fast=False, label=f"arm {arm}")
        done.append(checkpoint)
    return done


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path, nargs="*", help="label-conditional checkpoints trained elsewhere")
    p.add_argument("--control", type=Path, help="the unconditional model trained as much as the models")
    p.add_argument("--from", dest="source", type=Path, help="a trained DRAW to grow the arms from (e.g. models/mnist.pt)")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--minutes", type=float, default=30.0, help="each arm's minutes of training, cooldown included")
    p.add_argument("--cooldown-minutes", type=float, default=8.0)
    p.add_argument("--lr", type=float, default=3e-4, help="mnist-label.pt's rate")
    p.add_argument("--eval-every-minutes", type=float, default=10.0)
    p.add_argument("--train-test-limit", type=int, default=2000, help="test digits of the evaluations during training")
    p.add_argument("--read-only", action="store_true", help="read the arms that have run; train none")
    p.add_argument("--test-limit", type=int, help="test digits of the table (default: all)")
    p.add_argument("--per-class", type=int, default=25)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--data-root")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "condition-ablation")
    args = p.parse_args(argv)
    if not args.models and args.source is None:
        p.error("give label-conditional checkpoints, or --from a trained DRAW to grow the arms from")
    args.out = args.out.resolve()
    models, control = list(args.models), args.control
    if args.source is not None:
        args.source = args.source.resolve()
        trained = train_arms(args)
        if "control" in args.arms:
            *trained, control = trained
        models += trained
    dataset = settings_of(load_checkpoint(models[0] if models else control)).get("dataset") or "mnist"
    test = data.load(dataset, "test", args.data_root)
    test = test.balanced(args.test_limit, seed=0) if args.test_limit else test
    judge = asked.judge_for(dataset)
    rows = [measure(path, judge, test, args) for path in [*models, *([control] if control else [])]]
    table = pd.DataFrame(rows)
    if control:
        table["label_buys"] = table["test_nll_bound"].iloc[-1] - table["test_nll_bound"]  # nats; at most log 10 ≈ 2.30
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "table.csv", index=False)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["models"] = [str(m) for m in models]
    settings["control"] = str(control) if control else None
    write_json(args.out / "table.json", {"dataset": dataset, "test_images": len(test), "rows": rows, "args": settings})
    write_text(args.out / "table.md", _markdown(table))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

"""Where the label enters, measured (issue 34's ablation): (a) the decoder's input, (b) a learned prior, (c) both; beside
them the unconditional model trained the same number of epochs (the control), so each bound is read against what the
label can buy at most, log 10 ≈ 2.3 nats.

    OMP_NUM_THREADS=1 python benchmarks/condition_ablation.py models/mnist-label.pt runs/mnist-label-decoder.pt \
        runs/mnist-label-prior.pt --control runs/mnist-control.pt --out benchmarks/condition-ablation

For each model: its test bound on all test digits (told each digit's own class), the bound told a wrong class
((k + 1) mod 10: what the label carries), its epochs, and the share of its drawings the independent judge
(models/judge.pt) reads as the class asked, over ``--per-class`` drawings of each class from each of ``--seeds``
seeds. Writes <out>/table.csv, <out>/table.json and <out>/table.md, and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drawviz import asked, data, resources  # noqa: E402
from drawviz.checkpoints import load_checkpoint, model_from_checkpoint, settings_of  # noqa: E402
from drawviz.evaluation import evaluate  # noqa: E402
from drawviz.files import write_json, write_text  # noqa: E402


def _epochs(state: dict) -> float:
    return float(((state.get("history") or [{}])[-1]).get("epoch") or 0.0)


def measure(path: Path, judge, test, args) -> dict:
    """One model's row: bound, wrong-label bound, epochs and judged share (a conditional model's)."""
    state = load_checkpoint(path)
    model = model_from_checkpoint(path, device="cpu", state=state)
    condition = getattr(model.config, "condition", "none")
    row = {
        "model": path.name,
        "enters": getattr(model.config, "enters", None) if condition != "none" else "(no label: the control)",
        "epochs": _epochs(state),
        "steps": state["step"],
        "test_nll_bound": evaluate(model, test, seed=0, binarize=True, progress=args.progress)["nll_bound"],
    }
    if condition == "label":
        figures = asked.of_labels(
            model, judge, test, args.per_class, seeds=range(args.seeds), binarize=True, progress=args.progress
        )
        row.update(wrong_label_bound=figures["wrong_label_bound"], judged_as_asked=figures["right"], drawings=figures["drawings"])
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path, nargs="+", help="label-conditional checkpoints (mnist-label, -decoder, -prior)")
    p.add_argument("--control", type=Path, help="the unconditional model trained as many epochs")
    p.add_argument("--test-limit", type=int, help="test digits (default: all)")
    p.add_argument("--per-class", type=int, default=25)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--data-root")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "condition-ablation")
    args = p.parse_args(argv)
    dataset = settings_of(load_checkpoint(args.models[0])).get("dataset") or "mnist"
    test = data.load(dataset, "test", args.data_root)
    test = test.balanced(args.test_limit, seed=0) if args.test_limit else test
    judge = model_from_checkpoint(resources.models() / "judge.pt", device="cpu")
    rows = [measure(path, judge, test, args) for path in [*args.models, *([args.control] if args.control else [])]]
    table = pd.DataFrame(rows)
    if args.control:
        control = table["test_nll_bound"].iloc[-1]
        table["label_buys"] = control - table["test_nll_bound"]  # nats; at most log 10 ≈ 2.30 for a perfect label
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "table.csv", index=False)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["models"] = [str(m) for m in args.models]
    write_json(args.out / "table.json", {"dataset": dataset, "test_images": len(test), "rows": rows, "args": settings})
    write_text(args.out / "table.md", _markdown(table))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

"""What a leg boundary costs: resuming a checkpoint with its saved Adam state against resuming the
exported (shipped) file, which has none, with a fresh Adam warmed up over ``rewarm`` steps.

    python benchmarks/fresh_adam.py runs/mnist.pt --steps 300 --out benchmarks/campaign/fresh_adam.json

Both arms train the same number of steps from the same weights with the same data order, ε and
rate (so the clock, and what else the machine runs, does not matter), then are evaluated on the
same test images. The difference of their bounds is the price of shipping without optimiser state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drawviz import data  # noqa: E402
from drawviz.checkpoints import export_checkpoint, load_checkpoint, model_from_checkpoint
from drawviz.device import describe_hardware
from drawviz.evaluation import evaluate
from drawviz.train import train  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a full checkpoint (with optimiser state)")
    p.add_argument("--steps", type=int, default=300, help="steps each arm trains after resuming")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root")
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--lr", type=float, help="default: the checkpoint's recipe")
    p.add_argument("--rewarm", type=int, default=100)
    p.add_argument("--fast", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/campaign/fresh_adam.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    if state["optimizer"] is None:
        raise SystemExit(f"{args.checkpoint} has no optimiser state: give a training checkpoint, not a shipped file")
    start = state["step"]
    train_set = data.load(args.dataset, "train", args.data_root)
    test_set = data.load(args.dataset, "test", args.data_root, limit=args.test_limit)
    binarize = data.default_binarize(args.dataset, state["config"].likelihood)  # as the CLI trains
    result = {
        "checkpoint": str(args.checkpoint),
        "start_step": start,
        "steps": args.steps,
        "rewarm": args.rewarm,
        "test_images": len(test_set),
        "hardware": describe_hardware(torch.device("cpu")),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        saved, shipped = Path(tmp) / "saved.pt", Path(tmp) / "shipped.pt"
        shutil.copy(args.checkpoint, saved)
        export_checkpoint(args.checkpoint, shipped)
        result["before"] = evaluate(model_from_checkpoint(args.checkpoint), test_set, binarize=binarize is not None)["nll_bound"]
        for arm, path in (("saved_adam", saved), ("fresh_adam", shipped)):
            trained = train(
                state["config"],
                train_set,
                steps=start + args.steps,
                binarize=binarize,
                lr=args.lr,
                rewarm=args.rewarm,
                fast=args.fast,
                progress=False,
                checkpoint=path,
            )
            result[arm] = evaluate(trained.model, test_set, binarize=binarize is not None)["nll_bound"]
            print(f"{arm}: {result[arm]:.2f} nats after {args.steps} steps (from {result['before']:.2f})", file=sys.stderr)
    result["cost_nats"] = result["fresh_adam"] - result["saved_adam"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("before", "saved_adam", "fresh_adam", "cost_nats")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

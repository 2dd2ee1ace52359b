"""A leg from a trained model under a fixed protocol, as the benchmarks that compare legs run it (rate_sweep.py,
cifar_arms.py): a constant rate, a cooldown to 5 % at the end, timed evaluations on a fixed test subset; resumed
when interrupted, read as it is when finished."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drawviz.checkpoints import load_checkpoint, settings_of  # noqa: E402


def minutes(state: dict) -> float:
    """Minutes of training a checkpoint has, all legs (what --minutes counts)."""
    return ((state.get("history") or [{}])[-1].get("seconds") or 0.0) / 60


def shown(path: Path) -> str:
    """A path as the commands should show it: relative to the checkout where it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def leg(start: Path, checkpoint: Path, *, source: dict, lr: float, args, fast: bool, label: str) -> tuple[dict, list[str]]:
    """Train ``checkpoint`` from ``start`` for args.minutes (the last args.cooldown_minutes a cooldown), counted on from
    the minutes of ``source`` (the trained model's checkpoint, as load_checkpoint read it); returns the finished
    checkpoint, read, and the command (``python`` first). With args.read_only a leg that has not run to its end is an
    error, not minutes of training started unasked."""
    trained = minutes(source)
    command = [
        sys.executable, "-m", "drawviz", "train", "--dataset", settings_of(source).get("dataset") or "cifar10",
        "--init-from", shown(start), "--checkpoint", shown(checkpoint), "--recipe", "constant",
        "--lr", f"{lr:g}", "--final-lr", "0.05", "--minutes", f"{trained + args.minutes:.2f}",
        "--cooldown-minutes", f"{args.cooldown_minutes:g}", "--eval-every-minutes", f"{args.eval_every_minutes:g}",
        "--test-limit", str(args.test_limit), *(["--fast"] if fast else []), "--no-progress", "--log-every", "100",
    ]  # fmt: skip
    state = load_checkpoint(checkpoint) if checkpoint.exists() else None
    if state is not None and minutes(state) >= trained + args.minutes - 0.01:
        return state, ["python", *command[1:]]  # finished: its curve is read as it is
    if getattr(args, "read_only", False):
        raise SystemExit(f"{label} has not run to its end ({shown(checkpoint)}): run without --read-only to train it")
    print(f"{label}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)  # resumes an interrupted leg
    return load_checkpoint(checkpoint), ["python", *command[1:]]

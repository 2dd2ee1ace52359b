"""One command for a GPU session: the device, the benchmark, and the paper's MNIST model trained for a budget.

    python benchmarks/gpu_check.py --data-root DIR --out gpu-check            # about 10 minutes on one GPU
    python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/gpu-check   # seconds: what the tests run

Writes under --out: device.json; bench-fp32/ and bench-tf32/ (benchmarks/bench.py on the device: the
eager port against the fast path in fp32 and with bfloat16 GEMMs, then with TF32 allowed; MNIST at batch 64,
128 and 256); train/ (python -m drawviz train: the paper's T = 64 MNIST model with the shipped recipe,
"anneal", for --minutes of training, with its log and history) and evaluate.json (the test bound on all 10,000
binarised test digits); summary.json with the figures that matter. CUDA graphs are not used: the fast
path keeps per-step outputs that graph replay would overwrite (see drawviz.fast.make_fast).
Each stage runs as its own process; a failed stage is recorded and the next one still runs.

A campaign leg on the GPU (issue 19), for a session whose minutes should go into a shipped model:

    python benchmarks/gpu_check.py --stages leg --leg models/cifar10.pt --leg-minutes 7 --leg-lr 5e-4 \
        --data-root .gpu-data --out $OUT

trains the model --leg-minutes more (its last --leg-cooldown in a cooldown) from the shipped file on the device,
exports it (float16) to <out>/leg/<file> and its test bound to <out>/leg/evaluate.json; the full checkpoint stays
on the device (its Adam state is too large to bring back). Copy the export over the shipped file, make its card
(`python -m drawviz card … --into models/README.md`) and commit: the leg is recorded as a GPU leg.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stage(name: str, cmd: list[str], out: Path, log: Path, timeout: float) -> dict:
    start = time.perf_counter()
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    with open(log, "w") as f:
        try:
            proc = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    print(f"[{name}] {status} in {seconds:.0f} s (log: {log})", flush=True)
    return {"stage": name, "status": status, "seconds": round(seconds, 1), "log": str(log.relative_to(out))}


def device_info(device: str) -> dict:
    import torch

    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor(),
        "cores": os.cpu_count(),
        "device": device,
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(
            gpu=p.name,
            gpu_memory_gb=round(p.total_memory / 2**30, 1),
            capability=f"{p.major}.{p.minor}",
            bf16=torch.cuda.is_bf16_supported(),
            cuda_version=torch.version.cuda,
        )
    return info


def _leg(args, out: Path, py: str, root: list[str], stages: list) -> dict:
    """Stage leg: --leg-minutes more of a shipped model's training on the device, exported and evaluated."""
    sys.path.insert(0, str(ROOT))
    from drawviz.checkpoints import load_checkpoint

    state = load_checkpoint(args.leg)
    trained = ((state.get("history") or [{}])[-1].get("seconds") or 0.0) / 60
    dataset = "mnist-sample" if args.tiny else state["train_args"]["settings"]["dataset"]
    folder = out / "leg"
    folder.mkdir(exist_ok=True)
    checkpoint = folder / f"{args.leg.stem}-campaign.pt"
    exported = folder / args.leg.name
    # --minutes counts all legs: the model's own minutes plus this leg's
    total = trained + args.leg_minutes
    train = [
        py, "-m", "drawviz", "train", "--dataset", dataset, "--init-from", str(args.leg), "--checkpoint", str(checkpoint),
        "--recipe", "constant", "--lr", str(args.leg_lr), "--batch-size", str(args.leg_batch), "--final-lr", "0.05",
        "--fast", "--minutes", f"{total:.4f}", "--cooldown-minutes", str(min(args.leg_cooldown, args.leg_minutes)),
        "--eval-every-minutes", str(max(args.leg_minutes / 3, 0.01)), "--test-limit", "50" if args.tiny else "2000",
        "--no-progress", "--log-every", "250", "--device", args.device, *root,
    ]  # fmt: skip
    stages.append(_stage("leg train", train, out, folder / "train.log", args.leg_minutes * 60 + 600))
    export = [py, "-m", "drawviz", "export", str(checkpoint), "--out", str(exported), "--half"]
    stages.append(_stage("leg export", export, out, folder / "export.log", 120))
    evaluate = [py, "-m", "drawviz", "evaluate", str(exported), "--no-progress", "--device", args.device, *root]
    evaluate += ["--dataset", dataset] if args.tiny else []
    stages.append(_stage("leg evaluate", evaluate, out, folder / "evaluate.log", 600))
    checkpoint.unlink(missing_ok=True)  # with its Adam state it would not come back from the device anyway
    log = (folder / "evaluate.log").read_text() if (folder / "evaluate.log").exists() else ""
    metrics = json.loads(log[log.index("{") : log.rindex("}") + 1]) if "{" in log else {}
    (folder / "evaluate.json").write_text(json.dumps(metrics, indent=2))
    return {"model": str(args.leg), "trained_minutes_before": round(trained, 2), "minutes": args.leg_minutes, **metrics}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check"))
    p.add_argument("--data-root", help="folder holding MNIST/raw (default: $DRAWVIZ_DATA)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--minutes", type=float, default=6.0, help="training budget (evaluations not counted)")
    p.add_argument("--tiny", action="store_true", help="seconds: bench --tiny, a few steps on the shipped sample")
    p.add_argument("--stages", default="bench,train", help="comma-separated: bench, train, leg (default bench,train)")
    p.add_argument("--leg", type=Path, help="a shipped model to train a campaign leg from (stage leg)")
    p.add_argument("--leg-minutes", type=float, default=7.0, help="minutes of training the leg adds")
    p.add_argument("--leg-cooldown", type=float, default=1.5, help="the leg's last minutes, in a cooldown to 5 %%")
    p.add_argument("--leg-lr", type=float, default=1e-3)
    p.add_argument("--leg-batch", type=int, default=64)
    args = p.parse_args(argv)
    wanted = set(args.stages.split(","))
    if wanted - {"bench", "train", "leg"}:
        p.error(f"--stages: unknown {', '.join(sorted(wanted - {'bench', 'train', 'leg'}))}; choose from bench, train, leg")
    if "leg" in wanted and args.leg is None:
        p.error("--stages leg needs --leg MODEL (e.g. models/cifar10.pt)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    info = device_info(args.device)
    (out / "device.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info), flush=True)

    stages = []
    cases = "mnist b64,mnist b128,mnist b256"
    for mode, extra in (("fp32", []), ("tf32", ["--tf32"])) if "bench" in wanted else ():
        bench = [
            py,
            "benchmarks/bench.py",
            "--device",
            args.device,
            "--cases",
            cases,
            "--out",
            str(out / f"bench-{mode}"),
            *extra,
            *(["--tiny"] if args.tiny else []),
        ]
        stages.append(_stage(f"bench {mode}", bench, out, out / f"bench-{mode}.log", 240))

    root = ["--data-root", args.data_root] if args.data_root else []
    train_dir = out / "train"
    train_dir.mkdir(exist_ok=True)
    checkpoint = train_dir / "mnist.pt"
    if args.tiny:
        train = [
            py,
            "-m",
            "drawviz",
            "train",
            "--dataset",
            "mnist-sample",
            "--drawing-steps",
            "3",
            "--steps",
            "4",
            "--eval-every",
            "4",
            "--test-limit",
            "50",
            "--no-progress",
        ]
        evaluate = [py, "-m", "drawviz", "evaluate", str(checkpoint), "--dataset", "mnist-sample", "--no-progress"]
    else:
        train = [
            py,
            "-m",
            "drawviz",
            "train",
            "--dataset",
            "mnist",
            "--recipe",
            "anneal",
            "--fast",
            "--minutes",
            str(args.minutes),
            "--eval-every-minutes",
            str(max(args.minutes / 3, 1)),
            "--test-limit",
            "2000",
            "--no-progress",
            *root,
        ]
        evaluate = [py, "-m", "drawviz", "evaluate", str(checkpoint), "--no-progress", *root]
    train += ["--device", args.device, "--checkpoint", str(checkpoint), "--history", str(train_dir / "history.csv")]
    evaluate += ["--device", args.device]
    if "train" in wanted:
        stages.append(_stage("train", train, out, train_dir / "train.log", args.minutes * 60 + 300))
        stages.append(_stage("evaluate", evaluate, out, out / "evaluate.log", 300))
    leg = _leg(args, out, py, root, stages) if "leg" in wanted else None

    summary = {"device": info, "stages": stages}
    if leg is not None:
        summary["leg"] = leg
    for mode in ("fp32", "tf32"):
        bench = out / f"bench-{mode}" / "bench.json"
        if bench.exists():
            summary[f"bench_{mode}"] = {
                r["case"]: {
                    k: r[k] for k in ("eager_s_per_step", "fast_s_per_step", "bf16_s_per_step", "speedup", "bf16_speedup")
                }
                for r in json.loads(bench.read_text())["rows"]
            }
    log = (out / "evaluate.log").read_text() if (out / "evaluate.log").exists() else ""
    if "{" in log:
        metrics = json.loads(log[log.index("{") : log.rindex("}") + 1])
        (out / "evaluate.json").write_text(json.dumps(metrics, indent=2))
        summary["test_nll_bound"] = metrics["nll_bound"]
        summary["test_images"] = metrics["images"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "device"}, indent=2))
    return 0 if all(s["status"] == "ok" for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark drawviz.fast against a straightforward eager DRAW, in one process.

    python benchmarks/bench.py --out benchmarks/results            # full: MNIST b64, b256, CIFAR-10 b64
    python benchmarks/bench.py --tiny --out /tmp/bench             # seconds; what CI runs

For every preset: training seconds per step (forward + backward + Adam) and images/s for the
fast path (fp32, and with its bfloat16-GEMM option, make_fast(bf16=True)) and for
benchmarks/eager_port.py, interleaved step by step so that machine noise hits all alike
(medians reported), with the bf16 loss's relative distance from fp32's; the fast path's forward with a full
probes recorder against a
plain forward; peak memory of one training step (CPU: the process's RSS high-water mark, reset
before each step; CUDA: torch.cuda.max_memory_allocated).  Both implementations are first
checked to compute the same loss.  Prints a table, writes bench.csv and bench.json to --out.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eager_port import EagerDRAW  # noqa: E402

from drawviz.fast import make_fast  # noqa: E402
from drawviz.model import DRAW, DrawConfig  # noqa: E402
from drawviz.probes import Recorder  # noqa: E402
from drawviz.text import markdown_table  # noqa: E402

# (row name, preset, batch)
CASES = [("mnist b64", "mnist", 64), ("mnist b128", "mnist", 128), ("mnist b256", "mnist", 256), ("cifar10 b64", "cifar10", 64)]
DEFAULT_CASES = "mnist b64,mnist b256,cifar10 b64"
TINY = dict(T=4, enc_size=32, dec_size=32, z_size=8)


def hardware(device: torch.device) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        pass
    info = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        device=str(device),
    )
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_reset() -> float:
    """Reset the RSS high-water mark (Linux); return the current RSS in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def _status(key: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(step, device) -> float:
    """Extra memory one training step needs at its peak, MiB."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    before = _rss_reset()
    step()
    return _status("VmHWM") - before


def cpu_peak_in_subprocess(impl, preset, batch, args) -> float:
    """Peak extra RSS of one (warm) training step, MiB, measured in a child process whose allocator
    returns large blocks to the system at once (so RSS follows the live tensors)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    cmd = (
        [
            sys.executable,
            __file__,
            "--_peak",
            impl,
            preset,
            str(batch),
            "--compile",
            {True: "on", False: "off"}.get(args.compile, "auto"),
        ]
        + (["--tiny"] if args.tiny else [])
        + (["--threads", str(args.threads)] if args.threads else [])
    )
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_child(impl, preset, batch, args) -> float:
    cfg = DrawConfig.preset(preset, likelihood="bernoulli", **(TINY if args.tiny else {}))
    model = DRAW(cfg)
    net = make_fast(model, compile=args.compile) if impl == "fast" else EagerDRAW(cfg).load_from(model)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.rand(batch, *cfg.image_shape)
    eps = model.sample_eps(batch)

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(x, eps, check=False) if impl == "fast" else net(x, eps)
        (out.loss if impl == "fast" else out).backward()
        opt.step()

    step()  # warm: compilation, optimiser state
    return peak_memory_mb(step, torch.device("cpu"))


def run_case(name, preset, batch, args, device):
    # the eager port, like the public ones, has the paper's Bernoulli only: compare the same network and loss
    cfg = DrawConfig.preset(preset, likelihood="bernoulli", **(TINY if args.tiny else {}))
    torch.manual_seed(0)
    model = DRAW(cfg).to(device)
    eager = EagerDRAW(cfg).to(device).load_from(model)
    t0 = time.perf_counter()
    fast = make_fast(model, compile=args.compile)
    x = torch.rand(batch, *cfg.image_shape, generator=torch.Generator().manual_seed(1)).to(device)
    eps = model.sample_eps(batch, torch.Generator(device).manual_seed(2))

    # Same network, same numbers: check before timing.
    loss_fast = fast(x, eps, check=False).loss  # the first forward + backward pays for any compilation
    loss_fast.backward()
    model.zero_grad(set_to_none=True)
    _sync(device)
    first_call_s = time.perf_counter() - t0
    loss_eager = eager(x, eps)
    if not torch.allclose(loss_fast, loss_eager, rtol=1e-4):
        raise SystemExit(f"{name}: fast loss {loss_fast.item()} != eager loss {loss_eager.item()}")
    # The bfloat16-GEMM option: same parameters; how far its loss is from fp32's.
    fast_bf16 = make_fast(model, compile=args.compile, bf16=True)
    loss_bf16 = fast_bf16(x, eps, check=False).loss
    loss_bf16.backward()
    model.zero_grad(set_to_none=True)

    opts = {
        "fast": torch.optim.Adam(model.parameters(), 1e-4),
        "bf16": torch.optim.Adam(model.parameters(), 1e-4),
        "eager": torch.optim.Adam(eager.parameters(), 1e-4),
    }
    forward = {
        "fast": lambda: fast(x, eps, check=False).loss,
        "eager": lambda: eager(x, eps),
        "bf16": lambda: fast_bf16(x, eps, check=False).loss,
    }

    def train_step(impl):
        opts[impl].zero_grad(set_to_none=True)
        forward[impl]().backward()
        opts[impl].step()

    times = {"fast": [], "bf16": [], "eager": []}
    for i in range(args.warmup + args.steps):
        order = ("fast", "bf16", "eager") if i % 2 == 0 else ("eager", "bf16", "fast")
        for impl in order:
            _sync(device)
            t = time.perf_counter()
            train_step(impl)
            _sync(device)
            if i >= args.warmup:
                times[impl].append(time.perf_counter() - t)

    # Recording: forward with a full probes Recorder against a plain forward (fast path, no grad);
    # a forward is a third of a training step, so twice the samples for a steadier median.
    rec_times = {"plain": [], "record": []}
    with torch.no_grad():
        for i in range(args.warmup + 2 * args.steps):
            for kind in ("plain", "record") if i % 2 == 0 else ("record", "plain"):
                rec = Recorder() if kind == "record" else None
                _sync(device)
                t = time.perf_counter()
                fast(x, eps, check=False, tap=rec)
                if rec is not None:
                    rec.arrays()  # the copy to numpy is part of recording
                _sync(device)
                if i >= args.warmup:
                    rec_times[kind].append(time.perf_counter() - t)

    if device.type == "cuda":
        mem = {impl: peak_memory_mb(lambda: train_step(impl), device) for impl in ("eager", "fast")}
    else:  # in this process freed memory stays with the allocator: measure each in a fresh one
        mem = {impl: cpu_peak_in_subprocess(impl, preset, batch, args) for impl in ("eager", "fast")}
    med = {k: statistics.median(v) for k, v in {**times, **rec_times}.items()}
    return dict(
        case=name,
        preset=preset,
        batch=batch,
        T=cfg.T,
        steps=args.steps,
        eager_s_per_step=med["eager"],
        fast_s_per_step=med["fast"],
        bf16_s_per_step=med["bf16"],
        eager_img_per_s=batch / med["eager"],
        fast_img_per_s=batch / med["fast"],
        bf16_img_per_s=batch / med["bf16"],
        speedup=med["eager"] / med["fast"],
        bf16_speedup=med["eager"] / med["bf16"],
        bf16_loss_rel_diff=abs(loss_bf16.item() / loss_fast.item() - 1),
        fwd_s=med["plain"],
        fwd_record_s=med["record"],
        record_overhead_pct=100 * (med["record"] / med["plain"] - 1),
        eager_peak_mb=mem["eager"],
        fast_peak_mb=mem["fast"],
        fast_first_call_s=first_call_s,
        loss=loss_fast.item(),
    )


COLUMNS = [
    ("case", "{}"),
    ("eager_s_per_step", "{:.3f}"),
    ("fast_s_per_step", "{:.3f}"),
    ("bf16_s_per_step", "{:.3f}"),
    ("eager_img_per_s", "{:.0f}"),
    ("fast_img_per_s", "{:.0f}"),
    ("bf16_img_per_s", "{:.0f}"),
    ("speedup", "{:.2f}x"),
    ("bf16_speedup", "{:.2f}x"),
    ("bf16_loss_rel_diff", "{:.1e}"),
    ("fwd_s", "{:.3f}"),
    ("fwd_record_s", "{:.3f}"),
    ("record_overhead_pct", "{:+.1f}%"),
    ("eager_peak_mb", "{:.0f}"),
    ("fast_peak_mb", "{:.0f}"),
    ("fast_first_call_s", "{:.1f}"),
]


def table(rows) -> str:
    """The rows as Markdown, each column in its own COLUMNS format (a speedup as 1.53x, a time to the ms)."""
    cells = pd.DataFrame([[f.format(r[c]) for c, f in COLUMNS] for r in rows], columns=[c for c, _ in COLUMNS])
    return markdown_table(cells, index=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--steps", type=int, default=None, help="timed training steps per implementation")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--tiny", action="store_true", help="T=4, small LSTMs, 2 steps: a smoke test in seconds")
    p.add_argument("--cases", default=None, help="comma-separated subset of: " + ", ".join(c[0] for c in CASES))
    p.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (both implementations)")
    p.add_argument("--_peak", nargs=3, metavar=("IMPL", "PRESET", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.compile = {"auto": "auto", "on": True, "off": False}[args.compile]
    if args._peak:  # child process of cpu_peak_in_subprocess
        if args.threads:
            torch.set_num_threads(args.threads)
        impl, preset, batch = args._peak
        print(f"{_peak_child(impl, preset, int(batch), args):.1f}")
        return []
    args.steps = args.steps or (2 if args.tiny else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    wanted = [c.strip() for c in (args.cases or DEFAULT_CASES).split(",")]
    unknown = set(wanted) - {c[0] for c in CASES}
    if unknown:
        p.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(c[0] for c in CASES)}")
    cases = [c for c in CASES if c[0] in wanted]
    if args.tiny:
        cases = [(n, p_, min(b, 8)) for n, p_, b in cases]

    hw = hardware(device)
    rows = []
    for name, preset, batch in cases:
        rows.append(run_case(name, preset, batch, args, device))
        print(f"done: {name}", file=sys.stderr, flush=True)
    text = table(rows)
    print(
        f"{hw['cpu']}, {hw['cores']} cores, torch {hw['torch']} ({hw['torch_threads']} threads), "
        f"device {hw['device']}" + (f" ({hw['gpu']})" if "gpu" in hw else "")
    )
    print(f"median of {args.steps} interleaved training steps (forward + backward + Adam)" + (" [tiny]" if args.tiny else ""))
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "bench.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    meta = dict(
        hardware=hw,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=" ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        tiny=args.tiny,
        compile=str(args.compile),
        tf32=bool(args.tf32),
        rows=rows,
    )
    (args.out / "bench.json").write_text(json.dumps(meta, indent=2))
    return rows


if __name__ == "__main__":
    main()

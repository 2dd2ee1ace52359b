"""Data-parallel training under torchrun (issue 13): 2 CPU processes (gloo) follow 1 process exactly."""

import os
import subprocess
import sys

import pytest
import torch

from drawviz.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow

# the shipped sample (offline), a short drawing, the preset's LSTMs; evaluation only at the end
ARGS = [
    "--dataset",
    "mnist-sample",
    "--drawing-steps",
    "3",
    "--batch-size",
    "64",
    "--eval-every",
    "1000",
    "--test-limit",
    "50",
    "--seed",
    "3",
    "--no-progress",
]


def _train(tmp_path, name: str, steps: int, processes: int = 1, extra=()):
    cmd = [sys.executable, "-m", "drawviz", "train", *ARGS, *extra, "--steps", str(steps), "--checkpoint", str(tmp_path / name)]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", *cmd[2:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DRAWVIZ_DIST_TIMEOUT": "120"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return load_checkpoint(tmp_path / name), proc


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.parametrize("fast", [False, True], ids=["reference", "fast path"])
def test_two_processes_give_the_parameters_of_one_on_the_same_global_batches(tmp_path, fast):
    extra = ["--fast"] if fast else []
    one, _ = _train(tmp_path, "one.pt", 20, 1, extra)
    two, proc = _train(tmp_path, "two.pt", 20, 2, extra)
    assert one["step"] == two["step"] == 20
    assert two["train_args"]["processes"] == 2 and one["train_args"]["processes"] == 1
    assert _max_difference(one["model"], two["model"]) <= 1e-5
    assert "in 2 processes (32 images each)" in proc.stderr
    assert proc.stdout.count('"nll_bound"') == 1  # rank 0 alone evaluates and reports


def test_a_two_process_checkpoint_resumes_in_one_process_exactly(tmp_path):
    _train(tmp_path, "split.pt", 12, 2)
    resumed, _ = _train(tmp_path, "split.pt", 20, 1)  # the same file, continued by one process
    straight, _ = _train(tmp_path, "straight.pt", 20, 1)
    assert resumed["step"] == 20
    assert _max_difference(resumed["model"], straight["model"]) <= 1e-5
    losses = lambda s: torch.tensor([row["loss"] for row in s["history"]])
    torch.testing.assert_close(losses(resumed), losses(straight), rtol=1e-5, atol=1e-4)


def test_a_batch_that_does_not_split_evenly_is_a_clear_error(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "drawviz",
        "train",
        *ARGS,
        "--batch-size",
        "63",
        "--steps",
        "2",
        "--checkpoint",
        str(tmp_path / "x.pt"),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "DRAWVIZ_DIST_TIMEOUT": "60"},
    )
    assert proc.returncode != 0
    assert "does not split evenly over 2 processes" in proc.stdout + proc.stderr


def test_ranks_started_with_different_settings_refuse_to_train(tmp_path):
    # each rank adds its own --seed: they would train different models and report one
    script = tmp_path / "per_rank.py"
    script.write_text(
        "import os, sys\nfrom drawviz.__main__ import main\nsys.exit(main(sys.argv[1:] + ['--seed', os.environ['RANK']]))\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(script),
        "train",
        *ARGS[: ARGS.index("--seed")],
        *ARGS[ARGS.index("--seed") + 2 :],
        "--steps",
        "2",
        "--checkpoint",
        str(tmp_path / "x.pt"),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "DRAWVIZ_DIST_TIMEOUT": "60"},
    )
    assert proc.returncode != 0
    assert "started with different settings" in proc.stdout + proc.stderr
    assert not (tmp_path / "x.pt").exists()

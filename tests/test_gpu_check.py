"""benchmarks/gpu_check.py (issue 13): the GPU session's one command, run in its tiny mode on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_gpu_check_runs_every_stage_and_writes_one_folder(tmp_path):
    out = tmp_path / "gpu-check"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["bench fp32", "bench tf32", "train", "evaluate"]
    assert all(s["status"] == "ok" for s in summary["stages"])
    assert set(summary["bench_fp32"]) == set(summary["bench_tf32"]) == {"mnist b64", "mnist b128", "mnist b256"}
    assert summary["test_nll_bound"] > 0 and summary["test_images"] == 200
    assert (out / "device.json").exists() and (out / "train" / "mnist.pt").exists()
    assert (out / "train" / "history.csv").exists()


@pytest.mark.slow
def test_a_campaign_leg_on_the_device_comes_back_as_a_shipped_model_one_leg_longer(tmp_path):
    from drawviz import campaign
    from drawviz.checkpoints import load_checkpoint

    out, shipped = tmp_path / "gpu-check", ROOT / "models" / "mnist-vae.pt"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu", "--out", str(out)]
        + ["--stages", "leg", "--leg", str(shipped), "--leg-minutes", "0.05", "--leg-cooldown", "0.02"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == ["leg train", "leg export", "leg evaluate"]
    assert summary["leg"]["nll_bound"] > 0 and summary["leg"]["images"] == 200
    before, after = load_checkpoint(shipped), load_checkpoint(out / "leg" / "mnist-vae.pt")
    legs = campaign.legs_of(after)
    assert len(legs) == len(campaign.legs_of(before)) + 1 and legs[-1]["device"] == "cpu"
    assert after["step"] > before["step"] and not (out / "leg" / "mnist-vae-campaign.pt").exists()

"""The package works installed (not editable, not from the checkout): `pip install .` into a fresh venv,
then `drawviz report` from another folder runs the main job with the notebooks, runs file and shipped
models installed beside the package."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_an_installed_drawviz_runs_the_main_job_from_any_folder(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # the dependencies (torch, papermill, ...) from this environment, not downloaded again; a plain path line
    # does not run this environment's .pth files, so the editable drawviz of the checkout is not on it
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import drawviz, drawviz.resources as r; print(drawviz.__file__); print(r.home())"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
    )
    package, home = where.stdout.split()
    assert Path(package).is_relative_to(venv) and Path(home) == venv / "share" / "drawviz", where.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("DRAWVIZ_DATA", "PYTHONPATH", "DRAWVIZ_HOME")}
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert's templates, with its package
    run = subprocess.run(
        [
            str(venv / "bin" / "drawviz"),
            "report",
            "--only",
            "mnist",
            "--notebooks",
            "train",
            "--no-comparison",
            "--out",
            "out",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=elsewhere,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (elsewhere / "out" / "index.html").is_file() and (elsewhere / "out" / "mnist" / "train.html").is_file()
    assert not (elsewhere / "out" / "mnist" / "attention.html").exists()  # --notebooks train: train only
    trained = json.loads((elsewhere / "out" / "mnist" / "train.json").read_text())
    # the shipped model, as installed with the package (not the checkout's file)
    assert trained["step"] > 1000 and "share/drawviz/models/mnist.pt" in trained["model_file"]

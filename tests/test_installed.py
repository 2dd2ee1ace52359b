"""The package works installed (not editable, not from the checkout), the usual ways: its wheel into a fresh
venv, then `drawviz report` from another folder runs the main job with the notebooks, runs file and shipped
models installed as package data; and with `pip install --target` and `pip install --user` it finds them too."""

import ast
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The checkout built into a wheel once (as `pip install .` builds it)."""
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return next(out.glob("drawviz-*.whl"))


def _where(python, cwd, env) -> tuple[Path, Path, list[str]]:
    """Where the interpreter imports drawviz from, where drawviz finds its resources, and what is there."""
    script = (
        "import drawviz, drawviz.resources as r; print(drawviz.__file__); print(r.home()); "
        "print(sorted(p.name for p in r.notebooks().glob('*.ipynb'))); print(r.runs_file().is_file()); "
        "print(sorted(p.name for p in r.models().glob('*.pt')))"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=cwd, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    package, home, notebooks, runs, models = out.stdout.splitlines()
    assert runs == "True" and "train.ipynb" in notebooks and "mnist.pt" in models, out.stdout
    return Path(package), Path(home), ast.literal_eval(models)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DRAWVIZ_DATA", "PYTHONPATH", "DRAWVIZ_HOME")}
    return {**env, **extra}


def test_installed_with_target_it_finds_its_notebooks_runs_file_and_models(tmp_path, wheel):
    target = tmp_path / "target"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # torch and the rest from this environment, drawviz from the target folder only
    env = _clean_env(PYTHONPATH=f"{target}{os.pathsep}{sysconfig.get_path('purelib')}")
    package, home, models = _where(sys.executable, tmp_path, env)
    assert package.is_relative_to(target) and home == target / "drawviz" / "shipped"
    assert sorted(p.name for p in (ROOT / "models").glob("*.pt")) == models  # every shipped model


def test_installed_with_user_it_finds_its_notebooks_runs_file_and_models(tmp_path, wheel):
    base = Path(getattr(sys, "_base_executable", sys.executable))  # pip refuses --user inside a venv
    user = tmp_path / "userbase"
    env = _clean_env(PYTHONUSERBASE=str(user), PIP_BREAK_SYSTEM_PACKAGES="1")
    install = subprocess.run(
        [str(base), "-m", "pip", "install", "-q", "--no-deps", "--no-warn-script-location", "--user", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # the user site first (as Python puts it), then this environment's torch and the rest
    site = subprocess.run([str(base), "-m", "site", "--user-site"], capture_output=True, text=True, env=env).stdout.strip()
    assert Path(site).is_relative_to(user)
    env["PYTHONPATH"] = sysconfig.get_path("purelib")
    package, home, _ = _where(base, tmp_path, env)
    assert package.is_relative_to(user) and home == Path(site) / "drawviz" / "shipped"


def test_an_installed_drawviz_runs_the_main_job_from_any_folder(tmp_path, wheel):
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
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True, timeout=900
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
    assert Path(package).is_relative_to(venv) and Path(home) == Path(package).parent / "shipped", where.stdout
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
    assert trained["step"] > 1000 and "drawviz/shipped/models/mnist.pt" in trained["model_file"]

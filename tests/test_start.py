"""One start path (drawviz.start): the command line and train.ipynb resume, start from a given model or make a
new one by the same rule, refuse the same disagreements, and leave no copy behind when a start fails."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest
import torch

from drawviz.report import NOTEBOOKS
from drawviz.start import CLI, NOTEBOOK, start_from

TINY = {"T": 2, "enc_size": 8, "dec_size": 8, "z_size": 2}  # a model of 3 steps, made in a second


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A DRAW checkpoint with T = 2, trained 3 steps on 28×28 noise: it fits the MNIST sample, not CIFAR-10's."""
    from drawviz.model import DrawConfig
    from drawviz.train import train

    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    train(DrawConfig(**TINY), x, steps=3, batch_size=32, device="cpu", checkpoint=path, progress=False)
    return path


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "drawviz", "train", "--no-progress", "--device", "cpu", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _notebook(out: Path, **parameters):
    """train.ipynb with small settings; the error it stopped on, or None when it ran to the end."""
    small = {"steps": 3, "eval_every": 3, "test_limit": 32, "n_samples": 4, "device": "cpu", "progress": False}
    try:
        pm.execute_notebook(
            str(NOTEBOOKS / "train.ipynb"),
            str(out / "train.ipynb"),
            parameters={"metrics_out": str(out / "train.json"), **small, **parameters},
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
    except pm.PapermillExecutionError as err:
        return f"{err.ename}: {err.evalue}"
    return None


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.mark.parametrize("how", ["resume", "init"])
def test_a_config_that_disagrees_with_the_model_is_refused_alike_by_the_command_line_and_the_notebook(tiny, tmp_path, how):
    checkpoint = tmp_path / "run.pt"
    if how == "resume":
        source, init, then = _copy(tiny, checkpoint), [], "resume it"
    else:
        source, init, then = tiny, ["--init-from", tiny], "start from it"
    before = source.read_bytes()
    same = f"{source} holds a model with T = 2, not T = 3: drop those"

    proc = _cli("--dataset", "mnist-sample", "--checkpoint", checkpoint, *init, "--drawing-steps", 3, "--steps", 4)
    assert proc.returncode == 2 and f"{same} flags to {then}" in proc.stderr, proc.stderr[-2000:]
    assert source.read_bytes() == before and (checkpoint.exists() == (how == "resume"))

    error = _notebook(tmp_path, checkpoint=str(checkpoint), checkpoint_in=str(tiny) if how == "init" else None, T=3)
    assert error is not None and f"{same} parameters to {then}" in error, error
    assert source.read_bytes() == before and (checkpoint.exists() == (how == "resume"))


def test_only_what_was_given_is_compared_and_a_preset_gives_every_field(tiny, tmp_path):
    checkpoint = _copy(tiny, tmp_path / "run.pt")
    assert start_from(checkpoint, dataset="mnist-sample").config.T == 2  # nothing given: the model's own
    assert start_from(checkpoint, dataset="mnist-sample", fields={"T": 2, "z_size": None}).config.z_size == 2
    with pytest.raises(ValueError, match=r"holds a model with z_size = 2, not z_size = 5: drop") as err:
        start_from(checkpoint, dataset="mnist-sample", fields={"z_size": 5})
    assert "T =" not in str(err.value)  # T was not given: not named
    with pytest.raises(ValueError, match=r"T = 2, enc_size = 8, dec_size = 8, z_size = 2, not T = 64, enc_size = 256"):
        start_from(checkpoint, dataset="mnist-sample", preset="mnist")
    with pytest.raises(ValueError, match="a DrawConfig has no classes"):
        start_from(checkpoint, dataset="mnist-sample", fields={"classes": 3})


def test_resuming_says_when_a_given_model_is_not_used_and_the_command_line_agrees(tiny, tmp_path, capsys):
    other = _copy(tiny, tmp_path / "other.pt")
    checkpoint = tmp_path / "run.pt"
    from drawviz.model import DrawConfig
    from drawviz.train import train

    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    train(DrawConfig(**TINY), x, steps=2, batch_size=32, device="cpu", checkpoint=checkpoint, progress=False)
    start = start_from(checkpoint, other, dataset="mnist-sample", words=CLI)
    assert start.source == checkpoint and not start.given and start.step == 2
    assert f"drawviz: resuming {checkpoint}; --init-from {other} is not used" in capsys.readouterr().err
    # an untouched copy of the given model is that model: nothing to say, and it counts as started from it
    copy = _copy(other, tmp_path / "copy.pt")
    again = start_from(copy, other, dataset="mnist-sample")
    assert again.given and again.source == other and capsys.readouterr().err == ""

    proc = _cli("--dataset", "mnist-sample", "--checkpoint", checkpoint, "--init-from", other, "--steps", 3, "--batch-size", 32)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"drawviz: resuming {checkpoint}; --init-from {other} is not used" in proc.stderr
    assert '"step": 3' in proc.stdout


def test_a_failed_start_leaves_no_copy_from_the_command_line_or_the_notebook(tiny, tmp_path):
    leg = tmp_path / "leg.pt"
    # a dataset that does not fit the model: refused before anything is copied
    proc = _cli("--dataset", "cifar10-sample", "--init-from", tiny, "--checkpoint", leg, "--steps", 4)
    assert proc.returncode == 2 and "takes images of shape (1, 28, 28)" in proc.stderr and "(3, 32, 32)" in proc.stderr
    assert not leg.exists()
    error = _notebook(tmp_path, dataset="cifar10-sample", checkpoint=str(leg), checkpoint_in=str(tiny), steps=4)
    assert error is not None and "takes images of shape (1, 28, 28)" in error, error
    assert not leg.exists()
    # a training that cannot start (a batch larger than the 800 training images): the copy made is removed
    error = _notebook(tmp_path, checkpoint=str(leg), checkpoint_in=str(tiny), steps=4, batch_size=5000)
    assert error is not None and "batch_size 5000 is larger than the training set" in error, error
    assert not leg.exists()


def test_new_model_defaults_size_a_new_model_only(tiny, tmp_path):
    defaults = pm.inspect_notebook(str(NOTEBOOKS / "train.ipynb"))
    assert {k: defaults[k]["default"] for k in ("preset", "T", "overrides", "new_model")} == {
        "preset": "None",
        "T": "None",
        "overrides": "None",
        "new_model": '{"T": 8}',
    }
    new = start_from(tmp_path / "new.pt", dataset="mnist-sample", new_model={"T": 3, "z_size": 4})
    assert (new.config.T, new.config.z_size, new.state, new.source) == (3, 4, None, None)
    given = start_from(tmp_path / "new.pt", dataset="mnist-sample", fields={"T": 5}, new_model={"T": 3})
    assert given.config.T == 5  # what is given outranks the new-model defaults
    assert start_from(tmp_path / "new.pt", dataset="cluttered-mnist-sample").config.T == 8  # the dataset's preset: a classifier
    checkpoint = _copy(tiny, tmp_path / "run.pt")
    resumed = start_from(checkpoint, dataset="mnist-sample", new_model={"T": 8, "z_size": 100})
    assert (resumed.config.T, resumed.config.z_size) == (2, 2)  # never compared with a model, never applied to it
    # the notebook's defaults (new_model T = 8, T None) resume the T = 2 model, and with its steps show it as it is
    assert _notebook(tmp_path, checkpoint=str(checkpoint)) is None
    assert json.loads((tmp_path / "train.json").read_text())["config"]["T"] == 2
    shown = tmp_path / "shown.pt"
    assert _notebook(tmp_path, checkpoint=str(shown), checkpoint_in=str(tiny)) is None
    assert shown.read_bytes() == tiny.read_bytes()  # a given model with the steps asked for: copied, shown, not trained


def test_init_from_the_checkpoint_itself_is_refused_by_both(tiny, tmp_path):
    model = _copy(tiny, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"checkpoint_in .*m\.pt is the checkpoint itself"):
        start_from(model, model, dataset="mnist-sample", words=NOTEBOOK)
    error = _notebook(tmp_path, checkpoint=str(model), checkpoint_in=str(model))
    assert error is not None and "is the checkpoint itself: training would write into the model it starts from" in error
    proc = _cli("--dataset", "mnist-sample", "--init-from", model, "--checkpoint", model, "--steps", 1)
    assert proc.returncode == 2 and f"--init-from {model} is the --checkpoint itself" in proc.stderr
    assert model.read_bytes() == tiny.read_bytes()

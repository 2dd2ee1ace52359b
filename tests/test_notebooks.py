"""Every notebook runs top to bottom under papermill with small parameters on CPU, on real MNIST."""

import json
import math
from pathlib import Path

import pytest

import papermill as pm
import nbformat

from drawviz.metrics import Attention, Blur, Trained
from drawviz.report import NOTEBOOKS

SMALL = {"T": 4, "steps": 20, "batch_size": 32, "n_samples": 12, "device": "cpu", "seed": 0}


def run(name: str, out: Path, **parameters) -> nbformat.NotebookNode:
    target = out / f"{name}.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(target),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    nb = nbformat.read(target, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    return nb


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """train.ipynb on 2,000 MNIST digits for 20 steps: its checkpoint feeds the other notebooks."""
    root = str(data_root)
    out = tmp_path_factory.mktemp("notebooks")
    nb = run(
        "train",
        out,
        dataset="mnist",
        data_root=root,
        limit=2000,
        test_limit=200,
        eval_every=10,
        checkpoint=str(out / "model.pt"),
        metrics_out=str(out / "train.json"),
        **SMALL,
    )
    return {"root": root, "out": out, "checkpoint": str(out / "model.pt"), "nb": nb}


def test_every_notebook_is_parameterised():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3", path.name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: one cell tagged 'parameters'"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name}: commit it clean"
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} >= {"train", "attention", "error_images", "interventions", "blur"}


def test_train(trained):
    metrics = Trained.read(trained["out"] / "train.json")  # what the report reads (drawviz.metrics)
    assert math.isfinite(metrics.nll_bound) and metrics.nll_bound > 0
    assert metrics.step == SMALL["steps"] and metrics.config["T"] == SMALL["T"]
    assert len(metrics.kl_per_step) == SMALL["T"]
    assert "MNIST" in metrics.source
    assert Path(trained["checkpoint"]).exists()
    assert images(trained["nb"]) >= 2  # the loss / NLL-bound curves and the KL per step


def test_train_resumes_from_a_checkpoint(trained, tmp_path):
    # checkpoint_in: start from a given model, write elsewhere, continue up to `steps`
    run(
        "train",
        tmp_path,
        dataset="mnist",
        data_root=trained["root"],
        limit=2000,
        test_limit=100,
        eval_every=5,
        checkpoint=str(tmp_path / "more.pt"),
        checkpoint_in=trained["checkpoint"],
        metrics_out=str(tmp_path / "m.json"),
        **{**SMALL, "steps": SMALL["steps"] + 5},
    )
    assert json.loads((tmp_path / "m.json").read_text())["step"] == SMALL["steps"] + 5


def test_attention(trained, tmp_path):
    nb = run(
        "attention",
        tmp_path,
        dataset="mnist",
        data_root=trained["root"],
        checkpoint=trained["checkpoint"],
        n_show=2,
        glimpse_steps=[1, 4],
        metrics_out=str(tmp_path / "attention.json"),
        **SMALL,
    )
    assert images(nb) >= 5
    windows = Attention.read(tmp_path / "attention.json")
    assert 0 < windows.write_footprint and 0 <= windows.write_off_image <= 1 and windows.steps.endswith(f"-{SMALL['T']}")
    html = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert sum("anim" in "".join(h) and "data:image/png;base64" in "".join(h) for h in html) == 2, (
        "a static scrubber for reconstructions and one for samples"
    )
    widgets = [
        o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets, "the live scrubber is displayed"


def test_error_images(trained, tmp_path):
    nb = run(
        "error_images",
        tmp_path,
        dataset="mnist",
        data_root=trained["root"],
        checkpoint=trained["checkpoint"],
        n_show=3,
        metrics_out=str(tmp_path / "errors.json"),
        **SMALL,
    )
    assert images(nb) >= 4
    summary = json.loads((tmp_path / "errors.json").read_text())
    assert len(summary["mean_abs_error_per_step"]) == SMALL["T"]
    assert 0 <= summary["read_contains_peak_share"] <= 1


def test_interventions(trained, tmp_path):
    # the small model (T steps) as the attention model; no reference or one-shot model given
    nb = run(
        "interventions",
        tmp_path,
        dataset="mnist",
        data_root=trained["root"],
        checkpoint=trained["checkpoint"],
        reference_checkpoint=None,
        one_shot_checkpoint=None,
        n_images=6,
        step=2,
        live=False,
        metrics_out=str(tmp_path / "interventions.json"),
        **SMALL,
    )
    assert images(nb) >= 5  # two intervention grids, what each step buys, edit areas, samples
    metrics = json.loads((tmp_path / "interventions.json").read_text())
    effects = {row["intervention"]: row["value"] for row in metrics["interventions"]}
    assert len(effects) == 6 and all(math.isfinite(v) for v in effects.values())
    assert "read window moved off the image at step 2" in effects
    assert [row["model"] for row in metrics["one_shot_vs_draw"]] == ["DRAW, attention"]


def test_blur_across_datasets(trained, tmp_path):
    # Two "datasets" with models: MNIST and the shipped sample, both through the same checkpoint.
    models = [
        {"name": "mnist", "dataset": "mnist", "checkpoint": trained["checkpoint"]},
        {"name": "sample", "dataset": "mnist-sample", "checkpoint": trained["checkpoint"]},
    ]
    nb = run(
        "blur", tmp_path, models=models, data_root=trained["root"], n_show=4, metrics_out=str(tmp_path / "blur.json"), **SMALL
    )
    assert images(nb) >= 4
    metrics = Blur.read(tmp_path / "blur.json")
    for name in ("mnist", "sample"):
        assert set(metrics.runs[name]) == {
            f"{k}/{m}" for k in ("reconstructions", "samples") for m in ("laplacian_variance", "high_frequency_share")
        }
    text = "".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", []))
    assert "MNIST/raw" in text and "mnist_sample.npz" in text, "the notebook says which data each figure shows"


@pytest.mark.parametrize("name", ["train", "attention", "error_images", "interventions", "blur"])
def test_every_parameter_line_parses(name):
    # papermill skips a parameter whose line it cannot parse (e.g. a comment holding "="),
    # and then silently ignores the value a report passes for it
    cell = next(
        c for c in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells if "parameters" in c.metadata.get("tags", [])
    )
    assigned = {
        line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and not line.lstrip().startswith("#")
    }
    declared = set(pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb")))
    assert assigned == declared, f"papermill does not see {sorted(assigned - declared)}"
    assert {"dataset", "data_root", "device", "seed", "checkpoint"} <= declared


def test_a_notebook_shows_the_shipped_model_from_any_folder_and_writes_nowhere_else(tmp_path):
    """Issue 32, case 9: started from another folder, attention.ipynb's default is still the shipped model."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "attention.ipynb"),
        str(target),
        parameters={"n_samples": 4, "n_show": 1, "n_figure": 1, "device": "cpu"},
        kernel_name="python3",
        cwd=str(elsewhere),
        progress_bar=False,
    )
    text = target.read_text()
    assert "model T = 64" in text and "STAND-IN" not in text
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "models").exists()


def test_a_checkpoint_the_user_named_that_is_missing_is_an_error_not_a_quiet_stand_in(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="no checkpoint at"):
        pm.execute_notebook(
            str(NOTEBOOKS / "error_images.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"checkpoint": "models/mnsit.pt", "device": "cpu"},  # a typo
            kernel_name="python3",
            cwd=str(tmp_path),
            progress_bar=False,
        )
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "dataset, preset, condition, label",
    [
        ("mnist-sample", "mnist-label", "label", 7),
        ("fashion-mnist-sample", "fashion-mnist-label", "label", "Dress"),  # a garment asked for by name
        ("captioned-mnist-sample", "captioned-mnist", "caption", 7),
    ],
)
def test_draw_this_draws_what_is_asked_and_judges_it(tmp_path, dataset, preset, condition, label):
    from drawviz.metrics import Asked

    nb = run(
        "draw_this",
        tmp_path,
        dataset=dataset,
        preset=preset,
        label=label,
        checkpoint=str(tmp_path / "model.pt"),
        train_if_missing=True,
        T=4,
        steps=10,
        n_show=2,
        n_per_class=2,
        n_judged=2,
        live=False,
        metrics_out=str(tmp_path / "draw_this.json"),
    )
    record = Asked.read(tmp_path / "draw_this.json")
    assert record.condition == condition and record.drawings == 20 and 0 <= record.right <= 1
    assert (record.held_out_right is not None) == (record.first_on_own_word is not None) == (condition == "caption")
    assert images(nb) == (5 if condition == "caption" else 2)  # the drawing, (the alignment,) the grid, (2 on words)
    frames = [
        str(o.get("data", {}).get("text/html", "")).count("data:image/png;base64") for c in nb.cells for o in c.get("outputs", [])
    ]
    assert 4 in frames  # the static scrubber: one frame per step
    if dataset.startswith("fashion"):  # the grid's rows and the judged table name the garments
        shown = "".join(str(o) for c in nb.cells for o in c.get("outputs", []))
        assert "Ankle boot" in shown and "asked for {'label': 'Dress'}; judged by models/fashion-judge.pt" in shown

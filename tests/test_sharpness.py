"""Sharpness measures and what the blur page says in words: a run's name is shown as text (issue 32, case 2)."""

import json

from drawviz import report, sharpness

HOSTILE = "<img src=y onerror=alert(4)>![x](http://evil.example/p.png)"


def test_a_hostile_run_name_reaches_the_disagreements_as_text():
    notes = sharpness.disagreements(
        {
            HOSTILE: {"samples/laplacian_variance": 0.5, "samples/high_frequency_share": 1.5},
            "mnist": {"samples/laplacian_variance": 0.9, "samples/high_frequency_share": 0.8},
        }
    )
    text = " ".join(notes)
    assert notes and "<img" not in text and "![x](http" not in text and "&lt;img" in text


def test_the_index_escapes_a_config_field_from_a_notebook_record(tmp_path):
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "train.json").write_text(json.dumps({"nll_bound": 80.0, "config": {"T": HOSTILE}}))
    from drawviz.metrics import Trained

    result = {
        "run": "r",
        "dataset": "mnist-sample",
        "notebooks": {},
        "status": "ok",
        "train": Trained.read(out / "r" / "train.json"),
    }
    index = report.write_index([result], out, None, tmp_path / "runs.yaml", None).read_text()
    assert "<img src=y" not in index and "&lt;img src=y" in index

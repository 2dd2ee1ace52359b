"""The notebook → report contract: each notebook writes a typed record (drawviz.metrics) that the
report reads back by field, so a renamed or missing number is an error where it is made."""

import json

import nbformat
import pytest

from drawviz import metrics, report
from drawviz.report import NOTEBOOKS


def test_a_record_reads_back_what_was_written_and_nothing_where_there_is_no_file(tmp_path):
    written = metrics.Trained(
        nll_bound=88.72,
        bits_per_dim=0.163,
        images=10_000,
        step=14_376,
        epochs=15.3,
        config={"T": 64},
        kl_per_step=[1.5, float("nan")],
    )
    path = written.write(tmp_path / "train.json")
    back = metrics.Trained.read(path)
    assert back.nll_bound == 88.72 and back.config == {"T": 64} and back.step == 14_376
    assert back.kl_per_step == [1.5, None]  # NaN is not JSON: it is written as null
    assert json.loads(path.read_text())["epochs"] == 15.3  # plain JSON, keyed by field
    assert metrics.Trained.read(tmp_path / "none.json") is None
    (tmp_path / "half.json").write_text('{"nll_bound": 8')
    assert metrics.Attention.read(tmp_path / "half.json") is None


def test_a_file_from_another_version_reads_what_this_one_knows(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"write_footprint": 0.42, "a_future_measure": 1}))
    assert metrics.Attention.read(tmp_path / "a.json").write_footprint == 0.42


def test_a_record_refuses_a_field_it_does_not_declare():
    with pytest.raises(TypeError):
        metrics.Attention(write_footprint=0.4, write_footprnt_px=3.0)


@pytest.mark.parametrize("notebook", sorted(metrics.RECORDS))
def test_every_notebook_writes_its_record(notebook):
    # the notebook builds the record of drawviz.metrics and writes it to metrics_out: nothing else
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4).cells)
    assert f"from drawviz.metrics import {metrics.RECORDS[notebook].__name__}" in source
    assert "write_json(metrics_out" not in source


def test_the_index_shows_the_numbers_of_the_records(tmp_path):
    result = {
        "run": "mnist",
        "dataset": "mnist",
        "status": "ok",
        "notebooks": {},
        "train": metrics.Trained(
            nll_bound=88.72,
            bits_per_dim=0.1633,
            step=14_376,
            epochs=15.34,
            cpu_hours=3.42,
            images=10_000,
            trained_on="mnist",
            likelihood="bernoulli",
            binarization="stochastic, fixed seed",
            config={"T": 64},
        ),
        "attention": metrics.Attention(
            write_footprint=0.42, write_spread_px=2.42, write_off_image=0.001, edit_area=0.101, edit_area_reference=0.9
        ),
        "sharpness": {"samples/laplacian_variance": 0.5},
    }
    index = report.write_index([result], tmp_path, None, tmp_path / "runs.yaml", None).read_text()
    for shown in (
        "88.7",
        "0.163 bits/dim",
        "14,376 steps",
        "15.3 epochs, 3.4 CPU h",
        "10,000",
        "(binarised)",
        "0.42 of the width",
        "centres spread 2.4 px",
        "0 % off the image",
        "0.10",
        "samples 0.5",
    ):
        assert shown in index, shown

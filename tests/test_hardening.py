"""What a careless user or an attacker tries (issue 21): each case behaves as a demanding user expects:
a clear error that says what to do, a refusal, or what was meant; never a silently wrong number or lost work."""

import html
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import mistune
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from drawviz import DRAW, DrawConfig, data, files, report
from drawviz.comparisons import intervention_effects
from drawviz.interventions import InterventionError, freeze_window, run_with_hooks, scale_gamma, set_window, set_z, zero_write
from drawviz.model import InputError
from drawviz.text import markdown_table, markdown_text
from drawviz.checkpoints import CheckpointError, export_checkpoint, load_checkpoint, save_checkpoint
from drawviz.train import train

SMALL = DrawConfig(T=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3)
ROOT = Path(__file__).resolve().parent.parent
ATTACKS = [
    "[x](javascript:alert(1))",
    "![t](http://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "`code` **bold** _it_ # head",
]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DRAW(SMALL).eval()


@pytest.fixture(scope="module")
def x():
    return (torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()


# ----------------------------------------------------------------------------- 1. markup in strings


@pytest.mark.parametrize("value", ATTACKS)
def test_a_string_on_a_page_renders_as_the_text_it_is(value):
    rendered = mistune.html(f"Model: {markdown_text(value)} (T = 4).")
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    assert html.unescape(value) in html.unescape(rendered)  # the reader sees exactly the string


@pytest.mark.parametrize("value", ["1) a list", "1. a list", "- a list", "# a heading"])
def test_a_string_opening_a_line_starts_no_block(value):
    rendered = mistune.html(markdown_text(value))
    assert rendered.startswith("<p>") and value in html.unescape(rendered)


def test_parentheses_stay_unescaped_where_they_cannot_make_a_link():
    assert markdown_text("AMD EPYC (AVX2), 1 thread(s)") == "AMD EPYC (AVX2), 1 thread(s)"


def test_a_bar_inside_a_table_cell_keeps_the_cell_whole():
    frame = pd.DataFrame({"effect": ["final error −log D(x | c_T) change"], "value | nats": [2.0]})
    rendered = mistune.create_markdown(plugins=["table"])(markdown_table(frame, index=False))
    assert rendered.count("<td>") == 2 and "−log D(x | c_T) change</td>" in rendered
    assert "<th>value | nats</th>" in rendered


def test_checkpoint_metadata_in_a_model_card_is_text(tmp_path, mnist_train_2k, data_root):
    path = tmp_path / "m.pt"
    train(SMALL, mnist_train_2k.images[:64], steps=2, batch_size=32, progress=False, checkpoint=path, dataset="mnist")
    state = load_checkpoint(path)
    state["train_args"]["hardware"]["name"] = ATTACKS[0] + ATTACKS[1]
    state["train_args"]["legs"][0]["machine"] = ATTACKS[1]
    evil = tmp_path / "evil.pt"
    save_checkpoint(evil, model=DRAW(SMALL), step=state["step"], history=state["history"], train_args=state["train_args"])
    from drawviz.card import model_card

    card = model_card(evil, data_root=data_root, images=8, command=ATTACKS[2])
    rendered = mistune.html(card)
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert f"torch <code>{torch.__version__}</code>" in rendered  # the version reads as itself, not 2\.14\.1\+cu130


# ----------------------------------------------------------------------------- 2, 10. export


def test_export_onto_its_own_source_is_refused_and_the_source_kept(tmp_path, mnist_train_2k):
    path = tmp_path / "m.pt"
    train(SMALL, mnist_train_2k.images[:64], steps=2, batch_size=32, progress=False, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="another output"):
        export_checkpoint(path, tmp_path / "." / "m.pt", half=True)
    assert path.read_bytes() == before and load_checkpoint(path)["optimizer"] is not None


@pytest.mark.parametrize("bad, match", [(7e4, "float16 holds at most"), (float("nan"), "NaN or infinite")])
def test_export_refuses_weights_it_would_store_broken(tmp_path, bad, match):
    m = DRAW(SMALL)
    with torch.no_grad():
        m.q.weight[0, 0] = bad
    save_checkpoint(tmp_path / "m.pt", model=m, step=1)
    with pytest.raises(CheckpointError, match=match):
        export_checkpoint(tmp_path / "m.pt", tmp_path / "out.pt", half=True)
    assert not (tmp_path / "out.pt").exists()


# ----------------------------------------------------------------------------- 3. one training per file


def test_a_second_training_on_a_checkpoint_in_use_is_refused_naming_who_holds_it(tmp_path, mnist_train_2k):
    path = tmp_path / "m.pt"
    seen = []

    def second_run(row):
        if row["step"] == 2 and not seen:
            with pytest.raises(CheckpointError, match=f"process {os.getpid()}"):
                train(SMALL, mnist_train_2k.images[:64], steps=10, batch_size=32, progress=False, checkpoint=path)
            seen.append(True)

    result = train(
        SMALL, mnist_train_2k.images[:64], steps=4, batch_size=32, progress=False, checkpoint=path, callbacks=[second_run]
    )
    assert seen and result.step == 4 == load_checkpoint(path)["step"]
    # released at the end: the next leg may start
    assert train(SMALL, mnist_train_2k.images[:64], steps=6, batch_size=32, progress=False, checkpoint=path).step == 6


# ----------------------------------------------------------------------------- 4. full disk


def test_a_page_written_on_a_full_disk_leaves_the_old_page_and_no_partial(tmp_path):
    page = tmp_path / "index.html"
    files.write_text(page, "<p>good</p>")
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        from drawviz import files
        try:
            files.write_text({str(page)!r}, "x" * 1_000_000)
        except files.WriteError as err:
            print("CLEAR:", err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "CLEAR:" in out.stdout and "previous file there is intact" in out.stdout, out.stdout + out.stderr
    assert page.read_text() == "<p>good</p>" and sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]


def test_concurrent_writers_of_one_file_never_mix(tmp_path):
    path = tmp_path / "m.json"
    threads = [threading.Thread(target=files.write_json, args=(path, {"i": i, "pad": "x" * 50_000})) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert json.loads(path.read_text())["i"] in range(8) and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


# ----------------------------------------------------------------------------- 6, 8, 11. the report


def _runs(tmp_path, text):
    f = tmp_path / "runs.yaml"
    f.write_text(textwrap.dedent(text))
    return f


@pytest.mark.parametrize("name", ["comparison", "data-comparison", "index.html", "data.html"])
def test_run_names_the_report_writes_itself_are_refused_before_anything_runs(tmp_path, name):
    with pytest.raises(ValueError, match="cannot be named"):
        report.load_runs(_runs(tmp_path, f"- {{name: {name}, dataset: mnist-sample}}\n"), None)


@pytest.mark.parametrize(
    "run, match",
    [
        ("{name: a, dataset: 5}", "dataset must be a name"),
        ("{name: a, dataset: mnist-sample, model: 123}", "model must be"),
        ("{name: a, dataset: nope, optional: true}", "nope"),
        ("{name: a, dataset: mnist-sample, optional: maybe}", "true or false"),
        ("{name: a, dataset: mnist-sample, notebooks: train}", "list of names"),
    ],
)
def test_wrong_values_in_a_runs_file_are_found_before_any_run(tmp_path, run, match):
    with pytest.raises(ValueError, match=match):
        report.load_runs(_runs(tmp_path, f"- {run}\n"), None)


def test_a_report_rerun_with_changed_settings_makes_a_new_model(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    run = {"name": "run", "dataset": "mnist-sample", "parameters": {"T": 2}}
    report._set_aside_if_changed(run, out, out / "model.pt", print)
    (out / "model.pt").write_bytes(b"the T = 2 model")
    report._set_aside_if_changed(run, out, out / "model.pt", print)  # unchanged: resumed
    assert (out / "model.pt").exists()
    lines = []
    report._set_aside_if_changed(dict(run, parameters={"T": 4}), out, out / "model.pt", lines.append)
    assert not (out / "model.pt").exists() and (out / "model.previous.pt").read_bytes() == b"the T = 2 model"
    assert "settings changed" in lines[0] and "T" in lines[0]


def test_a_failed_notebook_is_explained_in_one_line_not_by_a_quote():
    class Failed(Exception):
        ename, evalue = "ValueError", 'the dataset "x" is not there\nmore\n"'

    assert report._reason(Failed("papermill's many lines\n\"")) == 'ValueError: the dataset "x" is not there'
    assert report._reason(RuntimeError("\n\n")) == "RuntimeError"


def test_a_garbage_scheduler_address_is_a_clear_error(tmp_path, capsys):
    runs = _runs(tmp_path, "- {name: a, dataset: mnist-sample, notebooks: [train]}\n")
    code = report.main(["--runs", str(runs), "--out", str(tmp_path / "out"), "--scheduler", "garbage"])
    assert code == 2 and "could not run on Dask" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 7, 14, 15. interventions


@pytest.mark.parametrize(
    "hook",
    [
        lambda: set_window("read", 5, g_x=3.0),
        lambda: freeze_window("write", 99),
        lambda: set_z({50: torch.zeros(3, 4)}),
        lambda: zero_write([2, 9]),
        lambda: scale_gamma("write", 2.0, 7),
    ],
)
def test_an_intervention_at_a_step_the_model_does_not_have_is_refused(model, x, hook):
    with pytest.raises(InterventionError, match="T = 4"):
        run_with_hooks(model, x, hooks=[hook()])


@pytest.mark.parametrize("fields", [{"sigma2": 0.0}, {"g_x": float("inf")}, {"gamma": -1.0}, {"delta": float("nan")}])
def test_a_window_no_model_could_write_is_refused(fields):
    with pytest.raises(InterventionError, match="no window the model could write"):
        set_window("write", 2, **fields)


def test_the_z_swap_needs_two_images(model, x):
    with pytest.raises(ValueError, match="at least 2 images"):
        intervention_effects(model, x[:1], 2)


def test_numpy_steps_images_and_z_are_taken_as_meant(model, x):
    plain = run_with_hooks(model, x, hooks=[set_window("read", 2, g_x=5.0)])
    as_numpy = run_with_hooks(model, x.numpy(), hooks=[set_window("read", np.int64(2), g_x=np.float32(5.0))])
    np.testing.assert_array_equal(plain.canvas, as_numpy.canvas)
    z = np.zeros((3, 4), dtype=np.float64)
    traced = run_with_hooks(model, x, hooks=[set_z({np.int64(3): z})])
    assert np.all(traced.z[2] == 0)
    with pytest.raises(InterventionError, match="integers"):
        set_window("read", 2.0, g_x=1.0)
    with pytest.raises(InterventionError, match="the one step"):
        freeze_window("write", [2, 3])


def test_images_without_a_channel_axis_are_blamed_not_the_target(model, x):
    with pytest.raises(InputError, match="add the channel axis"):
        run_with_hooks(model, x[:, 0])


# ----------------------------------------------------------------------------- 12. corrupt data


@pytest.mark.parametrize("damage", ["truncate", "empty", "no-labels"])
def test_a_damaged_bundled_sample_says_to_reinstall(tmp_path, monkeypatch, damage):
    assets = tmp_path / "assets"
    shutil.copytree(ROOT / "drawviz" / "assets", assets)
    sample = assets / data.SAMPLES["mnist-sample"][0]
    if damage == "truncate":
        sample.write_bytes(sample.read_bytes()[:5000])
    elif damage == "empty":
        sample.write_bytes(b"")
    else:
        with np.load(ROOT / "drawviz" / "assets" / sample.name) as f:
            np.savez(sample, images=f["images"])
    monkeypatch.setattr(data, "_ASSETS", assets)
    with pytest.raises(data.DatasetNotFoundError, match="reinstall drawviz"):
        data.load("mnist-sample", "test")


def test_a_truncated_cifar10_cache_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWVIZ_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("airplane", "cat"):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, "JPEG", quality=95)
            info = tarfile.TarInfo(f"cifar10-jpg/test/{name}/0000.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    first = data.load("cifar10", "test", tmp_path).images
    cache = tmp_path / "cache" / "cifar10-jpg-test.npz"
    cache.write_bytes(cache.read_bytes()[:100])  # a write killed half-way
    assert torch.equal(data.load("cifar10", "test", tmp_path).images, first)
    assert np.load(cache)["images"].shape == (2, 3, 32, 32)  # and the cache is whole again


def test_history_into_a_new_folder_is_written(tmp_path, data_root):
    history = tmp_path / "new" / "folder" / "h.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "drawviz",
            "train",
            "--T",
            "2",
            "--steps",
            "2",
            "--limit",
            "64",
            "--test-limit",
            "32",
            "--batch-size",
            "32",
            "--checkpoint",
            str(tmp_path / "m.pt"),
            "--history",
            str(history),
            "--no-progress",
            "--data-root",
            str(data_root),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert history.read_text().splitlines()[0].startswith("step,epoch,loss")


# ----------------------------------------------------------------------------- 13. memory


def test_a_recording_too_large_for_free_memory_is_refused_with_what_it_needs(model, monkeypatch):
    from drawviz import probes, trace

    monkeypatch.setattr(trace, "_available_memory", lambda: 2**30)  # 1 GiB free (what the trace's memory check reads)
    needed = trace.trace_bytes(DrawConfig(), 10_000) * trace.PEAK["chunked"] / 2**30
    with pytest.raises(MemoryError, match=rf"about {needed:.1f} GiB.*may use 1\.0 GiB more.*record at most about"):
        probes.record(DRAW(DrawConfig()), torch.zeros(10_000, 1, 28, 28))


def test_a_large_recording_runs_in_chunks_with_the_numbers_of_one_pass(model, x):
    from drawviz import probes

    images = x.repeat(5, 1, 1, 1)  # 15 images
    whole, chunked = probes.record(model, images, seed=3), probes.record(model, images, seed=3, chunk=4)
    for name in ("canvas", "x_hat", "glimpse", "write_patch", "kl", "z", "h_enc", "h_dec", "edit_area"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-5, atol=1e-6, err_msg=name)
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-6) and chunked.frame.shape == whole.frame.shape


# ----------------------------------------------------------------------------- 9, 11 (the index)


def test_a_cards_reference_is_named_by_what_it_is():
    from drawviz.card import _what_model

    assert _what_model(DrawConfig(), "m.pt").startswith("the attention model")
    assert _what_model(DrawConfig(attention=False), "n.pt").startswith("the no-attention model")
    assert _what_model(DrawConfig(T=1, attention=False), "v.pt").startswith("the one-shot VAE")


def test_a_failed_rerun_shows_no_numbers_of_the_run_before(tmp_path):
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "train.json").write_text(json.dumps({"nll_bound": 80.0, "step": 9999}))  # the last run's
    result = report.run_one(
        {"name": "r", "dataset": "mnist", "parameters": {"T": 2, "steps": 2}},
        out,
        str(tmp_path / "no-data-here"),
        ["train"],
        "cpu",
        lambda line: None,
    )
    assert result["status"] == "failed" and result["train"] is None
    index = report.write_index([result], out, None, tmp_path / "runs.yaml", None).read_text()
    assert "9999" not in index and "80.0" not in index and "DatasetNotFoundError" in index


def test_a_lost_dask_task_says_why_in_the_index(tmp_path):
    lost = {
        "run": "r",
        "dataset": "mnist-sample",
        "notebooks": {},
        "status": "failed",
        "error": "KilledWorker: the worker running run-r died",
    }
    index = report.write_index([lost], tmp_path, None, tmp_path / "runs.yaml", None).read_text()
    assert "KilledWorker: the worker running run-r died" in index

"""Model cards: what a checkpoint says is shown as text, and a card's table keeps its cells (issue 32, case 3);
a classifier's card gives its error beside the paper's Table 1."""

import re

import pytest

from drawviz import card
from drawviz.checkpoints import save_checkpoint
from drawviz.classifier import ClassifierConfig, GlimpseClassifier
from drawviz.model import DRAW, DrawConfig

HOSTILE = "<img src=y onerror=alert(4)>"


def test_checkpoint_metadata_reaches_a_card_as_text():
    recipe = {"decay": HOSTILE, "final": 0.1, "lr": 1e-3, "warmup": 0, "batch_size": 64, "clip": 10.0}
    recipe.update(beta1=0.9, beta2=0.999, adam_eps=1e-8)
    assert "<img" not in card._recipe({"recipe": recipe}) and "<img" not in card._short_recipe(recipe)
    assert "<img" not in card._where([{"machine": "m", "isa": HOSTILE, "threads": 1}])


# issue 21
def test_a_whole_card_shows_hostile_checkpoint_metadata_and_command_as_text(tmp_path, mnist_train_2k, data_root):
    import mistune
    import torch

    from drawviz.checkpoints import load_checkpoint
    from drawviz.train import train

    attacks = ["[x](javascript:alert(1))", "![t](http://evil.example/x.png)", "<img src=x onerror=alert(1)>"]
    config = DrawConfig(T=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3)
    path = tmp_path / "m.pt"
    train(config, mnist_train_2k.images[:64], steps=2, batch_size=32, progress=False, checkpoint=path, dataset="mnist")
    state = load_checkpoint(path)
    state["train_args"]["hardware"]["name"] = attacks[0] + attacks[1]
    state["train_args"]["legs"][0]["machine"] = attacks[1]
    evil = tmp_path / "evil.pt"
    save_checkpoint(evil, model=DRAW(config), step=state["step"], history=state["history"], train_args=state["train_args"])
    rendered = mistune.html(card.model_card(evil, data_root=data_root, images=8, command=attacks[2]))
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered
    assert f"torch <code>{torch.__version__}</code>" in rendered  # the version reads as itself, not 2\.14\.1\+cu130


def test_a_cards_reference_is_named_by_what_it_is():
    """Issue 21: a card names its reference model by what its config says it is."""
    assert card._what_model(DrawConfig(), "m.pt").startswith("the attention model")
    assert card._what_model(DrawConfig(attention=False), "n.pt").startswith("the no-attention model")
    assert card._what_model(DrawConfig(T=1, attention=False), "v.pt").startswith("the one-shot VAE")


def test_a_pipe_in_a_code_span_does_not_split_the_cards_table(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", model=DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)))
    page = card.model_card(path, images=8, command="python -m drawviz train | tee log", data_root=None)
    row = next(line for line in page.splitlines() if line.startswith("| command |"))
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 4 and "tee log" in cells[2]  # "", "command", the command, ""


def test_a_classifiers_card_gives_its_error_beside_the_papers_table_1(tmp_path):
    model = GlimpseClassifier(ClassifierConfig(T=4, enc_size=8))
    path = save_checkpoint(tmp_path / "c.pt", model=model, train_args={"dataset": "cluttered-mnist-sample"})
    page = card.model_card(path, images=20)
    assert "| test error | **" in page and "on all 200 test images" in page
    assert (
        "Differentiable RAM (DRAW), 4 glimpses, 12×12 4.18 %" in page
        and "8 glimpses" not in page.split("Table 1")[1].split("\n")[0]
    )
    assert "| where it looks (drawviz.looking) |" in page and "held at the centre" in page


def test_a_card_destination_that_cannot_take_it_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    """Issue 32, case 12: a folder, a binary page or a read-only place fails at once, in one line."""
    from drawviz.__main__ import main

    monkeypatch.setattr(card, "model_card", lambda *a, **k: pytest.fail("measured before checking --out/--into"))
    binary = tmp_path / "page.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    for flags in (["--out", str(tmp_path)], ["--into", str(binary)]):
        assert main(["card", "models/mnist.pt", *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("drawviz: error:") and "Traceback" not in err


def test_a_two_digit_card_reads_the_drawing_order_by_change_and_by_ink(tmp_path):
    model = DRAW(DrawConfig(height=60, width=60, T=3, enc_size=8, dec_size=8, z_size=2))
    path = save_checkpoint(tmp_path / "two.pt", model=model, train_args={"dataset": "two-digit-mnist-sample"})
    page = card.model_card(path, images=10)
    row = next(line for line in page.splitlines() if line.startswith("| drawing order (drawviz.order) |"))
    by_change, by_ink = row.split("<br>")
    assert "by change: drawn one digit at a time" in by_change and "of 10 test reconstructions" in by_change
    assert "by ink: drawn one digit at a time" in by_ink and "final ink" in by_ink


def test_a_run_trained_on_fresh_scenes_says_so_from_the_step_it_began():
    legs = [
        {"start_step": 0, "end_step": 100, "start_seconds": 0, "end_seconds": 60, "fresh_optimizer": True},
        {"start_step": 100, "end_step": 200, "start_seconds": 60, "end_seconds": 120, "fresh_scenes": True},
    ]
    assert card._fresh_scenes(legs) == "; from step 100 its digits in new places, with new distractors, each epoch"
    assert card._fresh_scenes(legs[:1]) == ""
    assert "from step" not in card._fresh_scenes(legs[1:])


def test_a_card_of_8_bit_data_puts_the_bound_beside_its_same_data_gaussians(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWVIZ_CACHE", str(tmp_path / "cache"))
    model = DRAW(DrawConfig(height=32, width=32, channels=3, T=2, enc_size=8, dec_size=8, z_size=2, likelihood="logistic"))
    path = save_checkpoint(tmp_path / "c.pt", model=model, train_args={"dataset": "cifar10-sample"})
    page = card.model_card(path, images=8)
    row = next(line for line in page.splitlines() if line.startswith("| same-data anchors (drawviz.anchors) |"))
    bound = float(re.search(r"\(([\d.]+) bits/dim; reconstruction", page).group(1))
    full, diagonal = (float(v) for v in re.search(r"full-covariance Gaussian ([\d.]+) and a diagonal one ([\d.]+)", row).groups())
    assert full < diagonal and f"DRAW {bound:.2f} bits/dim" in row  # an untrained model: far behind both
    behind = float(re.search(r"\*\*([\d.]+) bits/dim behind\*\* the full-covariance Gaussian", row).group(1))
    assert behind == pytest.approx(bound - full, abs=0.011)
    binary = save_checkpoint(tmp_path / "m.pt", model=DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)))
    assert "same-data anchors" not in card.model_card(binary, images=8, data_root=None)  # binarised: no Gaussian


def test_two_cards_written_into_one_page_at_once_both_land(tmp_path):
    import threading
    import time

    from drawviz.files import exclusive

    page = tmp_path / "README.md"
    page.write_text("# Models\n")
    held, release = threading.Event(), threading.Event()

    def writer_already_there():  # holds the page as a card being written does, then adds its own
        with exclusive(page, "a model card"):
            held.set()
            release.wait(5)
            page.write_text(card.into_page(page.read_text(), "## `a.pt` — model a\n\n| | |\n|---|---|\n| x | 1 |\n"))

    thread = threading.Thread(target=writer_already_there)
    thread.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    began = time.monotonic()
    card.into_file(page, "## `b.pt` — model b\n\n| | |\n|---|---|\n| y | 2 |\n")  # waits for the page, then writes
    thread.join()
    text = page.read_text()
    assert "model a" in text and "model b" in text and time.monotonic() - began >= 0.25

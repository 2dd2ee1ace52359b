"""DRAW told what to draw (drawviz.conditional, issue 34): a class label or a caption, attended word by word as
alignDRAW does; with no condition it is DRAW; the condition is recorded and can be swapped midway."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from drawviz import captions, data, interventions, kinds, probes
from drawviz.__main__ import main
from drawviz.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from drawviz.conditional import ConditionalConfig, ConditionalDRAW, grown_from
from drawviz.evaluation import evaluate
from drawviz.fast import make_fast
from drawviz.model import DRAW, DrawConfig, InputError
from drawviz.train import train

SMALL = DrawConfig(T=6, enc_size=32, dec_size=32, z_size=4)
LABEL = ConditionalConfig(**{**SMALL.to_dict(), "prior": "learned"}, condition="label")
CAPTION = ConditionalConfig(
    60, 60, 1, T=6, enc_size=32, dec_size=32, z_size=4, read_n=3, write_n=3,
    condition="caption", embed_size=8, caption_size=16, align_size=16,
)  # fmt: skip


def _caption(first, where, second=None, n=1):
    return torch.from_numpy(captions.tokens(captions.caption(first, where, second)))[None].repeat(n, 1)


@pytest.mark.parametrize("prior", ["standard", "learned"])
def test_with_the_condition_removed_it_is_draw_the_same_parameters_and_the_same_numbers(prior):
    plain = DrawConfig(**{**SMALL.to_dict(), "prior": prior})
    torch.manual_seed(0)
    draw = DRAW(plain)
    torch.manual_seed(0)
    none = ConditionalDRAW(ConditionalConfig(**plain.to_dict(), condition="none", enters="decoder"))
    assert list(none.state_dict()) == list(draw.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(none.state_dict().values(), draw.state_dict().values()))
    x = torch.rand(4, 1, 28, 28)
    seed = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(none(x, generator=seed()).loss, draw(x, generator=seed()).loss)
    assert torch.equal(none.generate(3, generator=seed()), draw.generate(3, generator=seed()))
    with pytest.raises(InputError, match="takes no condition"):
        none(x, labels=torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("enters", ["decoder", "prior", "both"])
def test_the_label_changes_the_drawing_wherever_it_enters(enters):
    torch.manual_seed(0)
    model = ConditionalDRAW(ConditionalConfig(**{**LABEL.to_dict(), "enters": enters}))
    for p in model.parameters():  # the prior's layer starts at zero (N(0, I)); move it so that the label is felt
        torch.nn.init.normal_(p, std=0.3)
    eps = model.sample_eps(2, torch.Generator().manual_seed(0))
    threes, sevens = model.generate(2, eps=eps, labels=[3, 3]), model.generate(2, eps=eps, labels=[7, 7])
    assert not torch.allclose(threes[-1], sevens[-1])
    assert torch.equal(threes, model.generate(2, eps=eps, labels=[3, 3]))  # the label and ε fix the drawing


def test_the_caption_alignment_sums_to_one_over_the_words_at_every_step():
    torch.manual_seed(0)
    model = ConditionalDRAW(CAPTION)
    ids = torch.cat([_caption(3, "left", 5), _caption(7, "top right")])
    for trace in (probes.run(model, torch.rand(2, 1, 60, 60), labels=ids), probes.run(model, n=2, labels=ids)):
        alpha = trace["alignment"]
        assert alpha.shape == (CAPTION.T, 2, captions.LENGTH)
        assert (alpha >= 0).all() and abs(alpha.sum(-1) - 1).max() < 1e-5
    assert trace["condition"].shape == (CAPTION.T, 2, captions.LENGTH, 2 * CAPTION.caption_size)


def test_swapping_the_caption_midway_changes_what_is_drawn_after_the_swap_and_nothing_before():
    torch.manual_seed(0)
    model = ConditionalDRAW(CAPTION)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    asked, other, swap_at = _caption(3, "left", 5, n=2), _caption(8, "bottom left", n=2), 4
    plain = probes.run(model, n=2, labels=asked, seed=0)
    swapped = interventions.run_with_hooks(
        model, n=2, labels=asked, seed=0, hooks=[interventions.swap_condition(model, other, swap_at)]
    )
    before, after = slice(0, swap_at - 1), slice(swap_at - 1, None)  # steps 1..3, then 4..T
    assert (plain.canvas[before] == swapped.canvas[before]).all()
    assert (abs(plain.canvas[after] - swapped.canvas[after]).max((1, 2, 3, 4)) > 1e-4).all()
    # from the swap on, the steps see the other caption, encoded as the model encodes it
    assert torch.equal(torch.from_numpy(swapped["condition"][swap_at - 1]), model.given(other, 2).detach())


def test_a_hook_on_the_alignment_makes_it_follow_one_word():
    torch.manual_seed(0)
    model = ConditionalDRAW(CAPTION)
    trace = interventions.run_with_hooks(model, n=1, labels=_caption(3, "left", 5), hooks=[interventions.attend_word(2)])
    assert (trace["alignment"][:, 0, 2] == 1).all()  # "3" is the caption's third word


def test_a_condition_the_model_cannot_take_is_refused_saying_what_it_takes():
    model = ConditionalDRAW(CAPTION)
    x = torch.rand(2, 1, 60, 60)
    with pytest.raises(InputError, match=r"give labels=, caption token ids \(batch, 12\).*captions.tokens"):
        model(x)
    with pytest.raises(InputError, match=r"caption token ids \(batch, 12\)"):
        model(x, labels=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(InputError, match="outside the 22 words"):
        model(x, labels=torch.full((2, 12), 22))
    with pytest.raises(captions.UnknownWord, match="'seven' is not in the vocabulary of 22 words: the digit"):
        captions.tokens("the digit seven is on the left of the digit 5 .")
    with pytest.raises(InputError, match="outside classes 0..9"):
        ConditionalDRAW(LABEL).generate(1, labels=[10])
    with pytest.raises(ValueError, match="give prior='learned'"):
        ConditionalConfig(prior="standard", enters="both")


def test_the_fast_path_refuses_it_and_a_checkpoint_round_trips_with_its_kind(tmp_path):
    model = ConditionalDRAW(LABEL)
    with pytest.raises(ValueError, match=r"DRAW only, not ConditionalDRAW.*fast=False"):
        make_fast(model)
    path = save_checkpoint(tmp_path / "label.pt", model=model, step=3)
    assert load_checkpoint(path)["kind"] == "conditional"
    again = model_from_checkpoint(path, device="cpu")
    assert type(again) is ConditionalDRAW and again.config == LABEL
    x, labels, eps = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3]), model.sample_eps(3, torch.Generator().manual_seed(0))
    assert torch.equal(again(x, eps, labels=labels).loss, model.eval()(x, eps, labels=labels).loss)


def test_trained_on_labels_it_learns_and_the_true_label_explains_the_digits_better_than_a_wrong_one():
    train_set, test_set = data.load("mnist-sample", "train"), data.load("mnist-sample", "test")
    result = train(LABEL, train_set, test_set, steps=150, progress=False, eval_every=1000)
    right = evaluate(result.model, test_set, binarize=True)
    wrong = evaluate(result.model, test_set, labels=(test_set.labels + 1) % 10, binarize=True)
    assert right["nll_bound"] < wrong["nll_bound"]  # the label is used: the right one costs fewer nats
    assert math.isfinite(result.history["test_nll_bound"].dropna().iloc[-1])


def test_the_command_line_trains_a_captioned_model_on_the_captions(tmp_path, capsys):
    checkpoint = str(tmp_path / "captions.pt")
    argv = ["--dataset", "captioned-mnist-sample", "--checkpoint", checkpoint, "--no-progress", "--drawing-steps", "3"]
    assert main(["train", *argv, "--steps", "4", "--batch-size", "16"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["step"] == 4 and math.isfinite(trained["nll_bound"])
    state = load_checkpoint(checkpoint)
    assert state["kind"] == "conditional" and state["config"].condition == "caption"
    assert kinds.of(model_from_checkpoint(checkpoint, device="cpu")).name == "conditional"


def test_drawviz_sample_writes_a_grid_or_the_images_and_refuses_what_the_model_cannot_draw(tmp_path, capsys):
    label = save_checkpoint(tmp_path / "label.pt", model=ConditionalDRAW(LABEL), step=1)
    caption = save_checkpoint(tmp_path / "caption.pt", model=ConditionalDRAW(CAPTION), step=1)
    plain = save_checkpoint(tmp_path / "draw.pt", model=DRAW(SMALL), step=1)
    assert main(["sample", str(label), "--n", "5", "--label", "7", "--out", str(tmp_path / "sevens.npz")]) == 0
    images = np.load(tmp_path / "sevens.npz")["images"]
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    asked = "the digit 3 is on the left of the digit 5 ."
    assert main(["sample", str(caption), "--n", "4", "--caption", asked, "--out", str(tmp_path / "a.png")]) == 0
    picture = plt.imread(tmp_path / "a.png")
    assert picture.shape[:2] == (2 * (2 * 60 + 2), 2 * (2 * 60 + 2))  # a 2×2 grid with a 2-pixel gap, enlarged twice
    assert main(["sample", str(plain), "--n", "2", "--out", str(tmp_path / "plain.png")]) == 0
    capsys.readouterr()
    refused = {
        (
            str(caption),
            "--caption",
            "the digit seven is on the left of the digit 5 .",
        ): "'seven' is not in the vocabulary of 22 words",
        (str(label), "--caption", asked): "by label: give --label K, a class 0..9",
        (str(label), "--label", "10"): "no class of this model: give a number 0..9\n",  # a digit is its own name
        (str(caption),): 'by caption: give --caption "the digit 3',
        (str(plain), "--label", "3"): "draws without a condition: leave out --label",
    }
    for argv, message in refused.items():
        assert main(["sample", *argv, "--out", str(tmp_path / "x.png")]) == 2
        assert message in capsys.readouterr().err
    assert main(["sample", str(label), "--label", "1", "--out", str(tmp_path / "x.gif")]) == 2
    assert "write a .png or an .npz file" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_fashion_model_is_asked_for_a_garment_by_its_number_or_its_name(tmp_path, capsys):
    garments = save_checkpoint(
        tmp_path / "garments.pt", model=ConditionalDRAW(LABEL), step=1, train_args={"dataset": "fashion-mnist-sample"}
    )
    assert main(["sample", str(garments), "--n", "2", "--label", "Dress", "--out", str(tmp_path / "a.npz")]) == 0
    assert "2 samples of 3 (Dress)" in capsys.readouterr().out
    by_number = main(["sample", str(garments), "--n", "2", "--label", "3", "--out", str(tmp_path / "b.npz")])
    assert by_number == 0 and (np.load(tmp_path / "a.npz")["images"] == np.load(tmp_path / "b.npz")["images"]).all()
    assert main(["sample", str(garments), "--label", "frog", "--out", str(tmp_path / "c.png")]) == 2
    assert "give a number 0..9 or a name: 0 T-shirt/top, 1 Trouser" in capsys.readouterr().err


@pytest.mark.parametrize("enters", ["decoder", "prior", "both"])
def test_grown_from_a_trained_draw_it_starts_as_that_draw_whatever_it_is_asked(enters):
    torch.manual_seed(0)
    draw = DRAW(SMALL)
    for p in draw.parameters():
        torch.nn.init.normal_(p, std=0.2)  # as if trained: no zero to hide behind
    grown = grown_from(draw, ConditionalConfig(**{**LABEL.to_dict(), "enters": enters}))
    x, eps = torch.rand(3, 1, 28, 28), draw.sample_eps(3, torch.Generator().manual_seed(0))
    for labels in ([0, 1, 2], [9, 9, 9]):
        torch.testing.assert_close(grown(x, eps, labels=torch.tensor(labels)).loss, draw(x, eps).loss)
        torch.testing.assert_close(grown.generate(3, eps=eps, labels=torch.tensor(labels)), draw.generate(3, eps=eps))
    with pytest.raises(ValueError, match="z_size 4 != 5"):
        grown_from(draw, ConditionalConfig(**{**LABEL.to_dict(), "z_size": 5}))


def test_the_shipped_two_digit_model_grows_into_a_caption_model_that_starts_as_it():
    from pathlib import Path

    from drawviz import data, kinds
    from drawviz.checkpoints import model_from_checkpoint

    draw = model_from_checkpoint(Path(__file__).resolve().parents[1] / "models" / "two-digit-mnist.pt", device="cpu")
    grown = grown_from(draw, kinds.preset("captioned-mnist-from-two-digit"))
    scenes = data.load("captioned-mnist-sample", "test")
    x, eps = scenes.images[:4].round(), draw.sample_eps(4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(grown(x, eps, labels=scenes.captions[:4]).loss, draw(x, eps).loss)


@pytest.mark.parametrize(
    "shipped, preset, dataset",
    [("mnist.pt", "mnist-label", "mnist-sample"), ("fashion-mnist.pt", "fashion-mnist-label", "fashion-mnist-sample")],
)
def test_each_label_preset_grows_from_its_shipped_model_and_starts_as_it(shipped, preset, dataset):
    from pathlib import Path

    from drawviz import data, kinds
    from drawviz.checkpoints import model_from_checkpoint

    draw = model_from_checkpoint(Path(__file__).resolve().parents[1] / "models" / shipped, device="cpu")
    grown = grown_from(draw, kinds.preset(preset))
    some = data.load(dataset, "test")
    x = some.images[:4] if draw.config.likelihood == "logistic" else some.images[:4].round()
    eps = draw.sample_eps(4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(grown(x, eps, labels=some.labels[:4]).loss, draw(x, eps).loss)


@pytest.mark.parametrize("config, dataset", [(LABEL, "mnist-sample"), (CAPTION, "captioned-mnist-sample")])
def test_its_card_says_what_it_is_told_and_how_often_it_draws_it(tmp_path, config, dataset):
    from drawviz.card import model_card

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", model=ConditionalDRAW(config), train_args={"dataset": dataset})
    text = model_card(path, images=40)
    assert ("the class (10), an embedding of 16" if config.condition == "label" else "a caption of 12 words") in text
    assert "drawn as asked (drawviz.asked, models/judge.pt)" in text
    if config.condition == "label":
        assert "the label's worth" in text and "per class 0: " in text
        assert "test images as their class (the ceiling)" in text  # what the judge itself reads right
    else:
        assert "follows the words?" in text and "seen" in text and "held out" in text
        assert "| where the alignment sits | " in text and "seen captions: the digits' names " in text

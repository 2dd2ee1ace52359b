"""Training in legs across sessions: a shipped model resumes with its history, its epochs and its legs,
the totals add up, a changed recipe is recorded, and the campaign figure marks the published points."""

import json
import math
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from drawviz import campaign, plots
from drawviz.model import DrawConfig
from drawviz.card import into_page, model_card
from drawviz.checkpoints import export_checkpoint, load_checkpoint, save_checkpoint, settings_of
from drawviz.model import DRAW
from drawviz.train import train

SMALL = DrawConfig(T=3, enc_size=32, dec_size=32, z_size=8)


@pytest.fixture(scope="module")
def images(mnist_train_2k):
    return mnist_train_2k.images[:128]


@pytest.fixture
def shipped(tmp_path, images):
    """A model as drawviz ships one: trained 8 steps at batch 32 (2 epochs of 128 images), exported
    without its optimiser state."""
    train(
        SMALL,
        images,
        images[:64],
        steps=8,
        batch_size=32,
        eval_every=4,
        progress=False,
        dataset="mnist",
        checkpoint=tmp_path / "run.pt",
    )
    return export_checkpoint(tmp_path / "run.pt", tmp_path / "shipped.pt", keep_every=1)


def test_resuming_a_shipped_model_continues_its_history_epochs_and_legs(tmp_path, images, shipped):
    leg2 = tmp_path / "leg2.pt"
    leg2.write_bytes(shipped.read_bytes())
    # another batch size: its 8 steps are 1 epoch of 128 images at 16, not 2 as at 32
    result = train(SMALL, images, images[:64], steps=16, batch_size=16, eval_every=4, rewarm=4, progress=False, checkpoint=leg2)
    h = result.history
    assert h["step"].tolist() == list(range(1, 17))  # one history, the first leg's rows kept
    assert h["epoch"].iloc[7] == pytest.approx(2.0) and h["epoch"].iloc[-1] == pytest.approx(3.0)
    # a fresh Adam on trained weights warms up again: 1/4, 2/4, 3/4, then the full rate
    assert h["lr"].iloc[8:12].tolist() == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    legs = campaign.legs_of(load_checkpoint(leg2))
    assert [(leg["start_step"], leg["end_step"]) for leg in legs] == [(0, 8), (8, 16)]
    assert legs[1]["fresh_optimizer"] and legs[1]["batch_size"] == 16
    assert legs[1]["isa"] == torch.backends.cpu.get_cpu_capability()  # AVX2 or AVX-512: the speed depends on it
    assert legs[1]["start_epoch"] == pytest.approx(2.0) and legs[1]["end_epoch"] == pytest.approx(3.0)
    assert legs[1]["start_seconds"] == pytest.approx(legs[0]["end_seconds"])
    curve = campaign.curve(load_checkpoint(leg2), "small")
    assert curve["leg"].tolist() == [1, 1, 2, 2] and curve["step"].tolist() == [4, 8, 12, 16]
    assert curve["cpu_hours"].is_monotonic_increasing


def test_a_changed_recipe_on_resume_is_recorded_in_its_leg(tmp_path, images, shipped):
    leg2 = tmp_path / "leg2.pt"
    leg2.write_bytes(shipped.read_bytes())
    with pytest.warns(UserWarning, match="another recipe"):
        train(SMALL, images, steps=12, batch_size=32, lr=3e-4, clip=5.0, progress=False, checkpoint=leg2)
    first, second = campaign.legs_of(load_checkpoint(leg2))
    assert (first["recipe"]["lr"], first["recipe"]["clip"]) == (1e-3, 10.0)
    assert (second["recipe"]["lr"], second["recipe"]["clip"]) == (3e-4, 5.0)


def test_a_resume_that_adds_no_step_adds_no_leg(tmp_path, images, shipped):
    again = tmp_path / "again.pt"
    again.write_bytes(shipped.read_bytes())
    train(SMALL, images, steps=8, batch_size=32, progress=False, checkpoint=again)
    assert len(campaign.legs_of(load_checkpoint(again))) == 1


def older(state: dict) -> dict:
    """The checkpoint as drawviz wrote it before legs and image counts were recorded."""
    args = {k: v for k, v in state["train_args"].items() if k not in ("legs", "train_images")}
    return {**state, "train_args": args}


def test_an_older_checkpoint_reads_as_one_reconstructed_leg(shipped):
    state = older(load_checkpoint(shipped))
    (leg,) = campaign.legs_of(state)
    assert leg["reconstructed"] and leg["end_step"] == state["step"] == campaign.totals(state)["steps"]
    assert campaign.totals(state)["epochs"] == pytest.approx(state["history"][-1]["epoch"])


def test_the_card_totals_add_up_over_the_legs(tmp_path, images, shipped, data_root):
    leg2 = tmp_path / "leg2.pt"
    leg2.write_bytes((tmp_path / "run.pt").read_bytes())  # the full checkpoint: leg 2 resumes its Adam
    train(SMALL, images, steps=12, batch_size=32, progress=False, checkpoint=leg2)
    leg3 = tmp_path / "leg3.pt"
    export_checkpoint(leg2, leg3, keep_every=1)
    train(SMALL, images, steps=20, batch_size=64, progress=False, checkpoint=leg3)
    state = load_checkpoint(leg3)
    legs = campaign.legs_of(state)
    assert [leg["end_step"] - leg["start_step"] for leg in legs] == [8, 4, 8]
    card = model_card(leg3, data_root=data_root, images=16)
    # legs 1 and 2 are one run (leg 2 resumed its Adam state); leg 3 started a fresh Adam from the export
    listed = re.findall(r"steps ([\d,]+)–([\d,]+), epochs ([\d.]+)–([\d.]+), ([\d.]+) min", card)
    assert [(a, b) for a, b, *_ in listed] == [("0", "12"), ("12", "20")]
    assert "stopped and resumed once" in card and card.count("fresh Adam") == 1
    assert card.count(f"({torch.backends.cpu.get_cpu_capability()}), ") >= 1  # the legs run here say their ISA
    summed = sum(float(m) for *_, m in listed)
    total = re.search(r"\| in all \| 3 legs in 2 runs: ([\d,]+) steps, ([\d.]+) epochs, [\d.]+ hours \(([\d.]+) min\)", card)
    assert total is not None, card
    assert int(total[1].replace(",", "")) == 20 == int(listed[-1][1])
    assert float(total[2]) == pytest.approx(2 + 1 + 4, abs=0.01)  # 8 steps at 32, 4 at 32, 8 at 64 of 128 images
    assert float(total[3]) == pytest.approx(summed, abs=0.2)  # each figure rounded to 0.1 min


def test_a_run_stopped_and_resumed_reads_as_one_run_of_its_legs():
    state = load_checkpoint("models/cifar10.pt")  # its first 9 legs: four sessions, some stopped and resumed
    runs = campaign.runs_of(state)
    assert [leg for run in runs for leg in run] == campaign.legs_of(state)
    assert all(run[0]["fresh_optimizer"] and not any(leg["fresh_optimizer"] for leg in run[1:]) for run in runs)
    assert [len(run) for run in runs][:4] == [1, 3, 3, 2]  # later legs append runs; these stay


def test_the_campaign_figure_marks_the_anchors_where_they_were_measured():
    curves = pd.DataFrame(
        {
            "model": ["a"] * 3,
            "leg": [1, 1, 2],
            "epoch": [1.0, 5.0, 20.0],
            "cpu_hours": [0.2, 1.0, 4.0],
            "test_nll_bound": [120.0, 100.0, 92.0],
        }
    )
    fig = plots.plot_campaign(curves, campaign.ANCHORS)
    by_epoch, by_hours = fig.axes[:2]
    stars = {
        (float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in by_epoch.get_lines() if line.get_marker() == "*"
    }
    assert stars == {(100.0, 90.5), (300.0, 81.9)}
    levels = lambda ax: sorted(float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_linestyle() == "--")
    assert levels(by_epoch) == levels(by_hours) == [80.97, 87.40]
    model_line = next(line for line in by_epoch.get_lines() if line.get_label() == "a")
    assert list(model_line.get_ydata()) == [120.0, 100.0, 92.0]
    ringed = lambda fig: [list(line.get_ydata()) for line in fig.axes[0].get_lines() if line.get_markersize() == 8]
    assert ringed(fig) == [[]]  # without the rate, no point is called the end of an anneal
    annealed = plots.plot_campaign(curves.assign(lr=[1e-3, 5e-5, 1e-3]), campaign.ANCHORS)
    assert ringed(annealed) == [[100.0]]
    legend = [t.get_text() for t in annealed.axes[0].get_legend().get_texts()]
    assert "end of an anneal" in legend and "jbornschein/draw: 81.9 at 300 epochs" in legend  # who, beside the star
    resumed = [line for line in by_epoch.get_lines() if line.get_linestyle() == ":"]
    assert [float(line.get_xdata()[0]) for line in resumed] == [5.0]  # leg 1 ended there, leg 2 resumed


def test_a_campaign_in_bits_per_dim_puts_curves_and_same_data_levels_on_one_scale():
    dims = 3 * 32 * 32
    per = dims * math.log(2)
    curves = pd.DataFrame(
        {"model": ["a", "a"], "leg": [1, 1], "epoch": [1.0, 2.0], "cpu_hours": [0.5, 1.0], "test_nll_bound": [6 * per, 5 * per]}
    )
    gaussian = pd.DataFrame([{"source": "full-covariance Gaussian", "test_nll_bound": 3.69 * per, "epoch": None}])
    fig = plots.plot_campaign(curves, gaussian, dims=dims)
    by_epoch, by_hours = fig.axes[:2]
    model_line = next(line for line in by_epoch.get_lines() if line.get_label() == "a")
    assert list(model_line.get_ydata()) == pytest.approx([6.0, 5.0]) and by_epoch.get_ylabel() == "test bound, bits/dim"
    assert [float(line.get_ydata()[0]) for line in by_hours.get_lines() if line.get_linestyle() == "--"] == pytest.approx([3.69])
    assert by_hours.get_title() == ""  # only published points (trained on GPUs) lack CPU hours: a level has none to lack
    assert plots.plot_campaign(curves).axes[1].get_title() == ""


def test_the_cli_starts_a_leg_from_a_shipped_model_without_writing_into_it(tmp_path, shipped, data_root):
    before = shipped.read_bytes()
    leg = tmp_path / "runs" / "leg.pt"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "drawviz",
            "train",
            "--init-from",
            str(shipped),
            "--checkpoint",
            str(leg),
            "--steps",
            "10",
            "--limit",
            "128",
            "--test-limit",
            "64",
            "--batch-size",
            "32",
            "--no-progress",
            "--log-every",
            "1",
            "--data-root",
            str(data_root),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert shipped.read_bytes() == before
    assert "step       9" in run.stderr and json.loads(run.stdout)["step"] == 10
    legs = campaign.legs_of(load_checkpoint(leg))
    assert [(leg["start_step"], leg["end_step"]) for leg in legs] == [(0, 8), (8, 10)]


def test_a_leg_that_cannot_start_leaves_no_checkpoint_behind(tmp_path, shipped):
    # a wrong data root is found before the model is copied: fixing it and rerunning starts the leg afresh
    leg = tmp_path / "runs" / "leg.pt"
    command = [sys.executable, "-m", "drawviz", "train", "--init-from", str(shipped), "--checkpoint", str(leg)]
    run = subprocess.run(
        [*command, "--steps", "1", "--data-root", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=600
    )
    assert run.returncode != 0 and "mnist not found" in run.stderr
    assert not leg.exists()


def test_a_legs_new_card_replaces_its_table_and_keeps_what_was_written_about_the_model():
    page = (
        "# Models\n\n## `a.pt` — DRAW with attention, the paper's model (3.9 MB)\n\n| | |\n|---|---|\n"
        "| test NLL bound | **88.72 nats** |\n\nHow it got here: four legs.\n\n"
        "## `b.pt` — another (5.4 MB, float16 weights)\n\n| | |\n|---|---|\n| test NLL bound | 99 |\n"
    )
    card = "## `a.pt` — DRAW with attention (4.0 MB)\n\n| | |\n|---|---|\n| test NLL bound | **84.63 nats** |\n"
    new = into_page(page, card)
    assert "84.63" in new and "88.72" not in new
    assert "## `a.pt` — DRAW with attention, the paper's model (4.0 MB)" in new  # its title kept, its size new
    assert "How it got here: four legs." in new and new.endswith("| test NLL bound | 99 |\n")  # prose, b.pt kept
    assert new.count("## `") == 2
    card_c = card.replace("a.pt", "c.pt")
    other = into_page(new, card_c)  # a model the page has no section for is appended
    assert other.startswith(new.rstrip("\n")) and other.endswith(card_c)


def test_a_legs_start_says_what_minutes_leaves_it_since_minutes_count_all_legs():
    from drawviz.__main__ import _leg_budget

    # a model shipped after 82 minutes, resumed with --minutes 105: 23 minutes, not 105
    assert "23.0 more minutes" in _leg_budget(105, 82.0, None) and "82.0 done" in _leg_budget(105, 82.0, None)
    assert "the last 20 in a cooldown" in _leg_budget(187, 82.0, 20)
    assert "began 5.0 minutes before this leg" in _leg_budget(97, 82.0, 20)
    nothing = _leg_budget(60, 82.0, 20)
    assert "nothing to train" in nothing and "--minutes 142 for 60 more" in nothing


def test_models_compare_where_their_anneals_ended_not_on_a_constant_rate():
    # two runs of one model (a cosine anneal, then a constant leg ending in a cooldown) and a model annealed once
    lr = [1e-3, 3e-4, 1e-4, 5e-5, 1e-3, 1e-3, 2e-4, 5e-5, 1e-3, 5e-5]
    curves = pd.DataFrame(
        {
            "model": ["a"] * 8 + ["b"] * 2,
            "epoch": [1, 2, 3, 4, 5, 6, 7, 8, 1, 2],
            "lr": lr,
            "test_nll_bound": [120, 110, 101, 100, 104, 99, 95, 93, 130, 115],
        }
    )
    ends = campaign.anneal_ends(curves)
    # the last evaluation of each stretch at 10 % of the peak or less; the re-warmed leg's bounds are not ends
    assert list(zip(ends["model"], ends["epoch"], ends["test_nll_bound"])) == [("a", 4, 100), ("a", 8, 93), ("b", 2, 115)]


def test_two_legs_evaluated_only_at_their_cooldown_ends_give_two_anneal_ends():
    # mnist-noattn.pt's legs 5 and 6: one evaluation each, both at 5 % of the rate, the re-warm between them
    # seen only in the per-step rates of the history
    rows = [
        {"step": s, "epoch": s / 10, "seconds": 60.0 * s, "lr": lr, "test_nll_bound": b}
        for s, lr, b in [(10, 1e-3, None), (20, 5e-5, 92.0), (30, 1e-3, None), (40, 5e-5, 90.7)]
    ]
    state = {"step": 40, "history": rows, "train_args": {}}
    ends = campaign.anneal_ends(campaign.curve(state, "m"))
    assert list(ends["test_nll_bound"]) == [92.0, 90.7]


def test_a_cooldown_ends_a_constant_leg_annealed(tmp_path, images):
    # the whole (short) budget is the cooldown: the rate falls with the clock towards recipe.final · lr
    result = train(SMALL, images, steps=None, minutes=0.05, cooldown_minutes=0.05, batch_size=32, final=0.1, progress=False)
    lr, seconds = result.history["lr"], result.history["seconds"]
    assert lr.is_monotonic_decreasing and lr.iloc[0] == pytest.approx(1e-3) and lr.iloc[-1] >= 1e-4
    # each step's rate is the clock's when it starts: final + (1 − final) · (time left / cooldown), times lr
    left = (1 - seconds.shift(fill_value=0.0) / 3.0).clip(0, 1)
    assert lr.to_numpy() == pytest.approx((1e-3 * (0.1 + 0.9 * left)).to_numpy(), rel=0.05)


def test_settings_are_stored_once_and_read_from_one_place(tmp_path, images):
    import torch as _torch

    path = tmp_path / "m.pt"
    train(SMALL, images, steps=3, batch_size=32, lr=5e-4, progress=False, checkpoint=path, dataset="mnist")
    stored = _torch.load(path, weights_only=True)["train_args"]
    assert stored["settings"]["recipe"]["lr"] == 5e-4 and stored["settings"]["dataset"] == "mnist"
    assert not {"batch_size", "lr", "clip", "config", "seed", "dataset", "recipe"} & set(stored)  # no second copy
    settings = settings_of(load_checkpoint(path))
    assert (settings["recipe"]["batch_size"], settings["dataset"], settings["recipe"]["lr"]) == (32, "mnist", 5e-4)
    assert load_checkpoint(path)["train_args"] == stored  # read as written: no second view of the settings
    export_checkpoint(path, tmp_path / "x.pt")
    assert set(_torch.load(tmp_path / "x.pt", weights_only=True)["train_args"]) == set(stored)


@pytest.mark.parametrize("name", ["mnist", "mnist-noattn", "mnist-vae", "fashion-mnist", "cifar10"])
def test_every_shipped_checkpoint_still_reads(name):
    state = load_checkpoint(f"models/{name}.pt")
    settings = settings_of(state)
    assert settings["dataset"] in ("mnist", "fashion-mnist", "cifar10") and settings["recipe"]["batch_size"]
    assert campaign.totals(state)["steps"] == state["step"]
    stored = torch.load(f"models/{name}.pt", weights_only=True)["train_args"]
    assert isinstance(stored["settings"], dict), "every shipped model is in the current layout"


def test_a_checkpoint_with_flat_settings_is_read_into_the_current_layout(tmp_path):
    # as drawviz wrote them before TrainConfig: the settings as flat keys, lr, clip and batch size beside the recipe
    flat = {"dataset": "mnist", "seed": 3, "binarize": "dynamic", "lr": 5e-4, "clip": 1.0, "batch_size": 32, "train_images": 60}
    path = save_checkpoint(tmp_path / "old.pt", model=DRAW(SMALL), train_args=flat)
    args = load_checkpoint(path)["train_args"]
    assert args == {
        "train_images": 60,
        "settings": {"dataset": "mnist", "seed": 3, "binarize": "dynamic", "recipe": {"lr": 5e-4, "clip": 1.0, "batch_size": 32}},
    }


def _falling(per_epoch: float, dataset: str = "mnist") -> dict:
    """A checkpoint's state whose test bound falls ``per_epoch`` nats each epoch for 10 epochs."""
    history = [
        {"step": 100 * e, "epoch": float(e), "seconds": 60.0 * e, "test_nll_bound": 100.0 - per_epoch * e} for e in range(1, 11)
    ]
    config = DrawConfig(height=32, width=32, channels=3) if dataset == "cifar10" else DrawConfig()
    return {"config": config, "step": 1000, "history": history, "train_args": {"settings": {"dataset": dataset}}}


@pytest.mark.parametrize("per_epoch, flat", [(0.29, True), (1.0, False)])
def test_a_curve_has_flattened_when_it_falls_under_the_campaign_rule_over_its_last_five_epochs(per_epoch, flat):
    s = campaign.slope(_falling(per_epoch))
    assert (s["from_epoch"], s["to_epoch"], s["evaluations"]) == (5.0, 10.0, 6)
    assert s["nats_per_epoch"] == pytest.approx(per_epoch)
    assert s["bits_per_dim_per_epoch"] == pytest.approx(per_epoch / (784 * math.log(2)))
    assert s["flat"] is flat


def test_flattening_is_judged_at_the_constant_rate_not_across_the_cooldown_after_it():
    # flat at 1e-3 for 8 epochs (0.1 nats per epoch), then a cooldown that gains 4 nats in two evaluations
    state = _falling(0.1)
    rates = [1e-3] * 8 + [3e-4, 5e-5]
    for row, lr in zip(state["history"], rates):
        row["lr"] = lr
    for row, drop in zip(state["history"][8:], (2.0, 4.0)):
        row["test_nll_bound"] -= drop
    s = campaign.slope(state)
    assert (s["from_epoch"], s["to_epoch"], s["lr"], s["after"]) == (3.0, 8.0, 1e-3, 2)
    assert s["nats_per_epoch"] == pytest.approx(0.1) and s["flat"] is True
    # across the cooldown the same curve would read as falling 1 nat per epoch: not flat
    assert campaign.slope({**state, "history": [{**r, "lr": None} for r in state["history"]]})["flat"] is False


def test_two_cooldown_ends_at_the_same_low_rate_are_not_a_constant_stretch():
    # falling 1 nat per epoch at 1e-3, then two legs whose only evaluations end cooldowns at 5e-05
    state = _falling(1.0)
    for i, row in enumerate(state["history"]):
        row["lr"] = 1e-3 if i < 8 else 5e-5
    s = campaign.slope(state)
    assert (s["lr"], s["after"], s["to_epoch"]) == (1e-3, 2, 8.0) and s["flat"] is False


def test_cifar_flattens_by_bits_per_dim_and_a_dataset_without_a_rule_gets_no_verdict():
    assert campaign.slope(_falling(0.01 * 3072 * math.log(2) * 0.9, "cifar10"))["flat"] is True  # 0.009 bits/dim
    assert campaign.slope(_falling(1.0, "fashion-mnist"))["flat"] is None


def test_a_constant_stretch_shorter_than_five_epochs_is_not_judged():
    # cifar10.pt after a 2-epoch stretch at 5e-4 whose bound rose: neither flat nor falling, too short to say
    state = _falling(-0.05 * 3072 * math.log(2), "cifar10")
    for i, row in enumerate(state["history"]):
        row["lr"] = 5e-5 if i < 7 else 5e-4  # a cooldown end, then three evaluations at the rate over 2 epochs
    s = campaign.slope(state)
    assert (s["from_epoch"], s["to_epoch"], s["span_epochs"]) == (8.0, 10.0, 2.0)
    assert s["flat"] is None and s["bits_per_dim_per_epoch"] == pytest.approx(-0.05)
    from drawviz.card import _flattened

    row = _flattened(state)
    assert row.startswith("not judged by the campaign's rule") and "spans 2.0 epochs" in row
    assert "the bound rose" in row and "-" not in row.split("rose")[1].split("nats")[0]  # a rise, said as one

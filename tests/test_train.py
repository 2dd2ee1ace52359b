"""Training, evaluation and checkpoints: resume exactly, survive SIGKILL, refuse what cannot be used."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from drawviz import data, diagnostics
from drawviz.model import DRAW, DrawConfig
from drawviz.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from drawviz.evaluation import TrainingDiverged, evaluate
from drawviz.train import train

SMALL = DrawConfig(T=3, enc_size=32, dec_size=32, z_size=8)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def images(mnist_train_2k):
    return mnist_train_2k.images[:128]


def test_checkpoint_round_trip(tmp_path, images):
    result = train(SMALL, images, steps=3, batch_size=32, progress=False, checkpoint=tmp_path / "a.pt")
    state = load_checkpoint(tmp_path / "a.pt")
    assert state["step"] == 3 and state["config"] == SMALL and len(state["history"]) == 3
    assert isinstance(state["rng"], torch.Tensor) and state["optimizer"]["state"]
    again = model_from_checkpoint(tmp_path / "a.pt", device="cpu")
    x = images[:8]
    assert model_from_checkpoint(tmp_path / "a.pt").config == SMALL
    for a, b in zip(result.model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    g = lambda: torch.Generator().manual_seed(0)
    assert result.model(x, generator=g()).loss.item() == again(x, generator=g()).loss.item()


def test_resuming_continues_exactly(tmp_path, images):
    # 128 images at batch 32: the run crosses two epoch boundaries, and resumes in the middle
    straight = train(SMALL, images, steps=10, batch_size=32, progress=False, seed=5)
    ckpt = tmp_path / "r.pt"
    first = train(SMALL, images, steps=6, batch_size=32, progress=False, seed=5, checkpoint=ckpt)
    assert first.history["loss"].tolist() == straight.history["loss"].tolist()[:6]
    resumed = train(SMALL, images, steps=10, batch_size=32, progress=False, seed=5, checkpoint=ckpt)
    assert resumed.history["step"].tolist() == list(range(1, 11))
    assert resumed.history["loss"].tolist() == straight.history["loss"].tolist()
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, images):
    ckpt = tmp_path / "n.pt"

    def poison(row):
        if row["step"] == 3:
            with torch.no_grad():
                model.q.weight.fill_(float("nan"))

    model = DRAW(SMALL)
    with pytest.raises(TrainingDiverged, match="step 4.*last good checkpoint"):
        train(model, images, steps=10, batch_size=32, progress=False, checkpoint=ckpt, checkpoint_every=1, callbacks=[poison])
    state = load_checkpoint(ckpt)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    # without a checkpoint written yet, the message names none
    model = DRAW(SMALL)
    with pytest.raises(TrainingDiverged, match="No checkpoint was written") as err:
        train(
            model,
            images,
            steps=10,
            batch_size=32,
            progress=False,
            checkpoint=tmp_path / "none.pt",
            checkpoint_every=100,
            callbacks=[poison],
        )
    assert "last good" not in str(err.value)


def test_resuming_with_another_learning_rate_applies_it_and_says_so(tmp_path, images):
    ckpt = tmp_path / "lr.pt"
    train(SMALL, images, steps=4, batch_size=32, lr=1e-3, progress=False, checkpoint=ckpt)
    with pytest.warns(UserWarning, match="lr 0.001 -> 0.0001"):
        result = train(SMALL, images, steps=8, batch_size=32, lr=1e-4, progress=False, checkpoint=ckpt)
    assert result.history["lr"].iloc[4:].tolist() == pytest.approx([1e-4] * 4)


def test_ctrl_c_saves_every_completed_step(tmp_path, images):
    def interrupt(row):
        if row["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            SMALL,
            images,
            steps=10,
            batch_size=32,
            progress=False,
            checkpoint=tmp_path / "k.pt",
            checkpoint_every=100,
            callbacks=[interrupt],
        )
    assert load_checkpoint(tmp_path / "k.pt")["step"] == 2


def test_a_checkpoint_for_another_config_is_refused_naming_the_difference(tmp_path, images):
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, model=DRAW(SMALL))
    with pytest.raises(CheckpointError, match="T: checkpoint 3 vs model 4.*model_from_checkpoint"):
        train(
            DRAW(DrawConfig(T=4, enc_size=32, dec_size=32, z_size=8)),
            images,
            steps=1,
            batch_size=32,
            progress=False,
            checkpoint=ckpt,
        )


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", model=DRAW(SMALL))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    (tmp_path / "noise.pt").write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="not a readable drawviz checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a drawviz checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")


def test_a_second_training_on_a_checkpoint_in_use_is_refused_naming_who_holds_it(tmp_path, images):
    """Issue 21: one training per checkpoint file."""
    path = tmp_path / "m.pt"
    seen = []

    def second_run(row):
        if row["step"] == 2 and not seen:
            with pytest.raises(CheckpointError, match=f"process {os.getpid()}"):
                train(SMALL, images[:64], steps=10, batch_size=32, progress=False, checkpoint=path)
            seen.append(True)

    result = train(SMALL, images[:64], steps=4, batch_size=32, progress=False, checkpoint=path, callbacks=[second_run])
    assert seen and result.step == 4 == load_checkpoint(path)["step"]
    # released at the end: the next leg may start
    assert train(SMALL, images[:64], steps=6, batch_size=32, progress=False, checkpoint=path).step == 6


# issue 14
def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: a file where the folder should be does it instead
        blocker = tmp_path / "file"
        blocker.write_text("")
        target = blocker / "m.pt"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "m.pt"
    with pytest.raises(CheckpointError, match="cannot write"):
        train(SMALL, torch.rand(8, 1, 28, 28), steps=1000, batch_size=4, checkpoint=target, progress=False)


def _cli(*args):
    return [sys.executable, "-m", "drawviz", *args]


def test_sigkill_mid_run_loses_only_the_steps_since_the_last_checkpoint(tmp_path, data_root):
    ckpt = tmp_path / "kill.pt"
    # checkpointing every step keeps the process writing most of the time: kills land mid-write too
    args = [
        "train",
        "--dataset",
        "mnist",
        "--data-root",
        str(data_root),
        "--limit",
        "256",
        "--test-limit",
        "64",
        "--drawing-steps",
        "2",
        "--batch-size",
        "32",
        "--checkpoint",
        str(ckpt),
        "--checkpoint-every",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    last = 0
    for kill in range(3):
        proc = subprocess.Popen(_cli(*args, "--steps", "100000"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists() and load_checkpoint(ckpt)["step"] > last + 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05 + 0.07 * kill)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        state = load_checkpoint(ckpt)  # always a complete checkpoint, whatever the moment of death
        assert state["step"] >= last
        assert [row["step"] for row in state["history"]] == list(range(1, state["step"] + 1))
        last = state["step"]
    # finish the run: it resumes from the last checkpoint, ignoring any half-written temporary file
    done = subprocess.run(
        _cli(*args, "--steps", str(last + 3), "--history", str(tmp_path / "h.csv")),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["step"] == last + 3
    import pandas as pd

    history = pd.read_csv(tmp_path / "h.csv")
    assert history["step"].tolist() == list(range(1, last + 4))


def test_evaluate_cli_reports_nats_and_bits_per_dim(tmp_path, data_root, images):
    ckpt = tmp_path / "e.pt"
    train(
        SMALL,
        images,
        steps=2,
        batch_size=32,
        progress=False,
        checkpoint=ckpt,
        train_args={"dataset": "mnist", "data_root": str(data_root)},
    )
    out = subprocess.run(
        _cli("evaluate", str(ckpt), "--test-limit", "100", "--no-progress"), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert metrics["images"] == 100 and metrics["binarized"] is True
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll_bound"] / (784 * math.log(2)))
    bad = subprocess.run(_cli("evaluate", str(tmp_path / "missing.pt")), capture_output=True, text=True)
    assert bad.returncode == 2 and "no checkpoint at" in bad.stderr


def test_short_training_on_2000_real_digits_lowers_the_test_bound(mnist_train_2k, mnist_test):
    config = DrawConfig.preset("mnist", T=8)
    test = mnist_test.images[:1000]
    model = DRAW(config)
    before = evaluate(model, test, binarize=True)["nll_bound"]
    result = train(model, mnist_train_2k, test, steps=250, batch_size=64, progress=False, seed=0)
    after = result.final_nll_bound
    print(f"test NLL bound on 1,000 statically binarised MNIST test digits: {before:.1f} -> {after:.1f} nats")
    assert before > 500  # ≈ 784 ln 2 before training
    assert after < 220 and before - after > 300


def test_training_on_the_fast_path_follows_the_reference(images):
    reference = train(SMALL, images, steps=4, batch_size=32, progress=False, seed=2)
    fast = train(SMALL, images, steps=4, batch_size=32, progress=False, seed=2, fast=True)
    assert fast.history["loss"].to_numpy() == pytest.approx(reference.history["loss"].to_numpy(), rel=1e-4)


def test_bf16_training_follows_the_fp32_curve(mnist_train_2k, mnist_test):
    """The bfloat16-GEMM option trains as well as fp32 from the same start on real digits."""
    config = DrawConfig.preset("mnist", T=6, enc_size=128, dec_size=128, z_size=32)
    test = mnist_test.images[:500]
    bounds = {}
    for bf16 in (False, True):
        result = train(config, mnist_train_2k, test, steps=120, batch_size=64, progress=False, seed=0, fast=True, bf16=bf16)
        bounds[bf16] = result.final_nll_bound
        assert result.history["loss"].iloc[-10:].mean() < result.history["loss"].iloc[:10].mean() - 200
    print(f"test NLL bound after 120 steps: fp32 {bounds[False]:.1f}, bf16 GEMMs {bounds[True]:.1f} nats")
    assert bounds[True] == pytest.approx(bounds[False], rel=0.03)


def test_export_keeps_the_weights_and_drops_the_optimiser(tmp_path, images):
    result = train(SMALL, images, steps=6, batch_size=32, progress=False, checkpoint=tmp_path / "full.pt")
    out = subprocess.run(
        _cli("export", str(tmp_path / "full.pt"), "--out", str(tmp_path / "slim.pt"), "--keep-every", "3"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    slim = load_checkpoint(tmp_path / "slim.pt")
    assert slim["optimizer"] is None and [row["step"] for row in slim["history"]] == [3, 6]
    assert (tmp_path / "slim.pt").stat().st_size < (tmp_path / "full.pt").stat().st_size / 2
    for a, b in zip(result.model.state_dict().values(), model_from_checkpoint(tmp_path / "slim.pt").state_dict().values()):
        assert torch.equal(a, b)
    resumed = train(SMALL, images, steps=8, batch_size=32, progress=False, checkpoint=tmp_path / "slim.pt")
    assert resumed.step == 8


def test_a_half_precision_export_loads_as_float32_with_rounded_weights(tmp_path, images):
    from drawviz.checkpoints import export_checkpoint

    result = train(SMALL, images, steps=3, batch_size=32, progress=False, checkpoint=tmp_path / "full.pt")
    export_checkpoint(tmp_path / "full.pt", tmp_path / "half.pt", half=True)
    state = load_checkpoint(tmp_path / "half.pt")
    assert state["weights_dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in state["model"].values())
    model = model_from_checkpoint(tmp_path / "half.pt", device="cpu")
    for (name, a), b in zip(result.model.state_dict().items(), model.state_dict().values()):
        assert b.dtype == torch.float32
        assert torch.equal(b, a.half().float()), name  # exactly the float16 rounding, nothing else
    x = images[:64]
    full = evaluate(result.model, x, binarize=True)["nll_bound"]
    assert evaluate(model, x, binarize=True)["nll_bound"] == pytest.approx(full, rel=1e-3)
    with pytest.raises(ValueError, match="keep_every"):
        export_checkpoint(tmp_path / "full.pt", tmp_path / "x.pt", keep_every=0)


def test_sigterm_saves_the_completed_steps_and_exits(tmp_path, data_root):
    ckpt = tmp_path / "term.pt"
    proc = subprocess.Popen(
        _cli(
            "train",
            "--dataset",
            "mnist",
            "--data-root",
            str(data_root),
            "--limit",
            "256",
            "--test-limit",
            "64",
            "--drawing-steps",
            "2",
            "--batch-size",
            "32",
            "--steps",
            "100000",
            "--checkpoint",
            str(ckpt),
            "--checkpoint-every",
            "7",
            "--no-progress",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # wait until it is inside the training loop
    seen = load_checkpoint(ckpt)["step"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint holds every completed step" in err
    state = load_checkpoint(ckpt)  # saved on SIGTERM, between two steps
    assert state["step"] >= seen and [r["step"] for r in state["history"]] == list(range(1, state["step"] + 1))


@pytest.mark.parametrize("delay", [0.0, 0.37, 1.1])
def test_ctrl_c_at_any_moment_saves_once_and_resumes_exactly(tmp_path, data_root, delay):
    """A real SIGINT, sent at a random moment (mid-step, mid-write): the checkpoint holds whole steps
    and the RNG state of the next one, so stop + resume equals a straight run, bit for bit."""
    common = (
        "--dataset",
        "mnist",
        "--data-root",
        str(data_root),
        "--limit",
        "256",
        "--test-limit",
        "64",
        "--drawing-steps",
        "2",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "3",
        "--no-progress",
    )
    ckpt = tmp_path / "int.pt"
    proc = subprocess.Popen(
        _cli("train", *common, "--steps", "100000", "--checkpoint", str(ckpt)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    stopped = load_checkpoint(ckpt)["step"]
    total = stopped + 4
    assert (
        subprocess.run(_cli("train", *common, "--steps", str(total), "--checkpoint", str(ckpt)), capture_output=True).returncode
        == 0
    )
    straight = tmp_path / "straight.pt"
    assert (
        subprocess.run(
            _cli("train", *common, "--steps", str(total), "--checkpoint", str(straight)), capture_output=True
        ).returncode
        == 0
    )
    a, b = load_checkpoint(ckpt), load_checkpoint(straight)
    assert a["step"] == b["step"] == total
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert not list(tmp_path.glob("*.tmp*")), "no partial write left behind"


# ----------------------------------------------------------------------------- the recipe and time budgets


def test_the_recipe_schedule_gives_the_documented_rates():
    from drawviz.recipe import RECIPES, Recipe

    anneal = RECIPES["anneal"]  # peak 1e-3, 100 warm-up steps, cosine to 5 %
    assert anneal.rate(0, 0.0) == pytest.approx(1e-5)  # warm-up: (step + 1) / warmup of the peak
    assert anneal.rate(49, 0.0) == pytest.approx(5e-4)
    assert anneal.rate(99, 0.0) == pytest.approx(1e-3)
    assert anneal.rate(5000, 0.5) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert anneal.rate(9999, 1.0) == pytest.approx(5e-5)
    assert anneal.rate(9999, 7.0) == pytest.approx(5e-5)  # past the horizon: stays at the floor
    linear = Recipe(lr=2e-3, decay="linear", final=0.0)
    assert [linear.rate(s, p) for s, p in ((0, 0.0), (10, 0.25), (20, 1.0))] == pytest.approx([2e-3, 1.5e-3, 0.0])
    assert all(RECIPES["constant"].rate(s, p) == 1e-3 for s, p in ((0, 0.0), (500, 0.5), (10**6, 1.0)))
    assert Recipe.named("anneal", lr=3e-3, clip=None).lr == 3e-3  # None keeps the recipe's value
    with pytest.raises(ValueError, match="decay"):
        Recipe(decay="exponential")
    with pytest.raises(ValueError, match="lr"):
        Recipe(lr=-1e-3)
    with pytest.raises(ValueError, match="unknown recipe"):
        Recipe.named("fastest")


def test_a_command_lines_recipe_flags_change_the_named_recipe_and_unset_ones_keep_it():
    import argparse

    from drawviz.recipe import RECIPES, Recipe

    # the train command's and time_to_quality's flags alike: --final-lr is the recipe's final; no --beta1 here
    flags = argparse.Namespace(recipe="anneal", lr=2e-3, final_lr=0.1, batch_size=None, warmup=None, decay=None, clip=None)
    recipe = Recipe.from_flags(flags)
    assert (recipe.lr, recipe.final) == (2e-3, 0.1)
    assert (recipe.batch_size, recipe.warmup, recipe.decay, recipe.beta1) == (64, 100, "cosine", RECIPES["anneal"].beta1)


def test_training_applies_the_schedule_and_saves_the_recipe(tmp_path, images):
    from drawviz.recipe import Recipe

    recipe = Recipe(lr=2e-3, warmup=2, decay="linear", final=0.5, batch_size=32, beta1=0.5)
    result = train(SMALL, images, steps=6, recipe=recipe, progress=False, checkpoint=tmp_path / "r.pt")
    expected = [recipe.rate(s, s / 6) for s in range(6)]
    assert result.history["lr"].tolist() == pytest.approx(expected)
    state = load_checkpoint(tmp_path / "r.pt")
    assert Recipe.from_dict(state["train_args"]["settings"]["recipe"]) == recipe
    assert state["optimizer"]["param_groups"][0]["betas"] == [0.5, 0.999] or tuple(
        state["optimizer"]["param_groups"][0]["betas"]
    ) == (0.5, 0.999)
    assert state["train_args"]["train_images"] == len(images)  # what it trained on travels with it


def test_a_time_budget_stops_on_time_and_counts_training_only(tmp_path, images):
    from drawviz.recipe import Recipe

    recipe = Recipe(lr=1e-3, decay="cosine", final=0.05, batch_size=32)
    result = train(
        SMALL, images, steps=None, minutes=0.05, recipe=recipe, progress=False, test_images=images[:64], eval_every_minutes=0.02
    )
    h = result.history
    per_step = h["seconds"].diff().median()
    assert 3.0 <= h["seconds"].iloc[-1] < 3.0 + 10 * per_step + 1.0  # stops at the first step past 3 s
    assert h["test_nll_bound"].notna().sum() >= 3  # every 1.2 s of training, and at the end
    assert math.isfinite(h["test_nll_bound"].iloc[-1])
    # the schedule's horizon is the time budget: from the peak at 0 s down near the floor at the end
    assert h["lr"].iloc[0] == 1e-3 and h["lr"].is_monotonic_decreasing and h["lr"].iloc[-1] < 0.3e-3


def test_the_time_to_quality_benchmark_writes_its_curve(tmp_path, data_root):
    out = tmp_path / "ttq"
    cmd = [
        sys.executable,
        "benchmarks/time_to_quality.py",
        "--label",
        "tiny",
        "--T",
        "2",
        "--minutes",
        "0.08",
        "--eval-every-minutes",
        "0.04",
        "--test-limit",
        "200",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import pandas as pd

    curve = pd.read_csv(out / "tiny.csv")
    assert len(curve) >= 2 and curve["minutes"].iloc[-1] >= 0.08
    assert curve["test_nll_bound"].is_monotonic_decreasing or curve["test_nll_bound"].iloc[-1] < 600
    meta = json.loads((out / "tiny.json").read_text())
    assert meta["recipe"]["decay"] == "cosine" and meta["steps"] == curve["step"].iloc[-1]
    assert (out / "time_to_quality.png").stat().st_size > 10_000


def test_a_model_card_measures_what_it_states(tmp_path, data_root, images, mnist_test, capsys):
    from drawviz.__main__ import main
    from drawviz.recipe import Recipe

    config = DrawConfig(T=3, enc_size=32, dec_size=32, z_size=8, read_n=2, write_n=3)
    ckpt = tmp_path / "m.pt"
    train(
        config,
        images,
        steps=4,
        recipe=Recipe(lr=2e-3, warmup=2, decay="cosine"),
        batch_size=32,
        progress=False,
        checkpoint=ckpt,
        train_args={"dataset": "mnist"},
    )
    noattn = tmp_path / "n.pt"
    train(
        DrawConfig(T=3, enc_size=32, dec_size=32, z_size=8, attention=False),
        images,
        steps=2,
        batch_size=32,
        progress=False,
        checkpoint=noattn,
        train_args={"dataset": "mnist"},
    )
    assert (
        main(
            [
                "card",
                str(ckpt),
                "--reference",
                str(noattn),
                "--test-limit",
                "32",
                "--no-progress",
                "--command-line",
                "python -m drawviz train --drawing-steps 3",
                "--out",
                str(tmp_path / "card.md"),
            ]
        )
        == 0
    )
    card = (tmp_path / "card.md").read_text()
    bound = evaluate(model_from_checkpoint(ckpt, device="cpu"), mnist_test, binarize=True)["nll_bound"]
    assert f"**{bound:.2f} nats**" in card and "all 10,000 test images" in card
    assert "4 steps" in card and "2-step linear warm-up" in card and "cosine decay" in card
    assert "python -m drawviz train --drawing-steps 3" in card and "torch thread" in card
    assert "| write attention" in card and "| read attention" in card and "the no-attention model" in card
    digits = data.binarize(mnist_test.balanced(32, seed=0).images, seed=0)  # the card's diagnostic images
    pens = diagnostics.spread_references(digits, steps=3).set_index("pen").spread_px  # T = 3: all 3 steps
    assert f"anywhere on its ink: {pens['anywhere on the ink']:.1f}" in card  # the spread beside pens without a model
    box = diagnostics.ink_extent(digits)  # the footprint beside the size of what it draws
    assert f"ink spans a median box of {box['width']:.2f} × {box['height']:.2f} of the image" in card
    assert str(data_root) not in card  # no machine's folder as provenance
    assert all(line.count("|") in (0, 3) for line in card.splitlines())  # a well-formed two-column table


def test_resuming_with_another_seed_or_dataset_says_so(tmp_path, images):
    ckpt = tmp_path / "s.pt"
    train(SMALL, images, steps=2, batch_size=32, seed=0, progress=False, checkpoint=ckpt, train_args={"dataset": "a"})
    with pytest.warns(UserWarning, match="seed 1 .*trained with 0.*data order") as said:
        train(SMALL, images, steps=3, batch_size=32, seed=1, progress=False, checkpoint=ckpt, train_args={"dataset": "a"})
    assert said[0].filename == __file__  # the warning points at the call to train(), not inside drawviz
    with pytest.warns(UserWarning, match="dataset 'b'.*other data"):
        train(SMALL, images, steps=4, batch_size=32, seed=1, progress=False, checkpoint=ckpt, train_args={"dataset": "b"})
    # issue 32, case 15: --binarize none on resume changed the data without a word
    with pytest.warns(UserWarning, match="binarize None .*trained with 'dynamic'.*grey values"):
        train(
            SMALL,
            images,
            steps=5,
            batch_size=32,
            seed=1,
            binarize=None,
            progress=False,
            checkpoint=ckpt,
            train_args={"dataset": "b"},
        )


def test_training_settings_are_one_frozen_trainconfig_saved_in_the_checkpoint(tmp_path):
    import dataclasses

    from drawviz.checkpoints import load_checkpoint
    from drawviz.recipe import RECIPES, TrainConfig
    from drawviz.train import train

    settings = TrainConfig(steps=4, seed=3, recipe=RECIPES["anneal"], dataset="mnist-sample")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1
    assert settings.replace(lr=5e-4, batch_size=16).recipe == dataclasses.replace(RECIPES["anneal"], lr=5e-4, batch_size=16)
    assert settings.replace(binarize=None).binarize is None  # None is a value: no binarisation
    assert settings.replace(steps=None, minutes=1.0).steps is None
    with pytest.raises(TypeError, match="unknown training settings.*'stpes'"):
        settings.replace(stpes=5)
    with pytest.raises(ValueError, match="binarize must be"):
        TrainConfig(binarize="sometimes")
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    train(
        DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2),
        x,
        settings=settings,
        batch_size=16,
        device="cpu",
        checkpoint=tmp_path / "m.pt",
        progress=False,
    )
    saved = TrainConfig.from_dict(load_checkpoint(tmp_path / "m.pt")["train_args"]["settings"])
    assert saved == settings.replace(batch_size=16)


def test_an_int8_export_is_a_quarter_the_size_and_within_half_a_step_of_each_weight(tmp_path, images):
    from drawviz.checkpoints import INT8_MIN_SIZE, export_checkpoint

    config = dataclasses.replace(SMALL, enc_size=64, dec_size=64)
    result = train(config, images, steps=3, batch_size=32, progress=False, checkpoint=tmp_path / "full.pt")
    export_checkpoint(tmp_path / "full.pt", tmp_path / "half.pt", half=True)
    export_checkpoint(tmp_path / "full.pt", tmp_path / "int8.pt", int8=True)
    state = load_checkpoint(tmp_path / "int8.pt")
    assert state["weights_dtype"] == "int8" and state["version"] == 2
    assert (tmp_path / "int8.pt").stat().st_size < 0.7 * (tmp_path / "half.pt").stat().st_size
    model = model_from_checkpoint(tmp_path / "int8.pt", device="cpu")
    quantised = 0
    for (name, a), b in zip(result.model.state_dict().items(), model.state_dict().values()):
        assert b.dtype == a.dtype, name
        if a.is_floating_point() and a.dim() >= 2 and a.numel() >= INT8_MIN_SIZE:
            quantised += 1
            step = a.reshape(a.shape[0], -1).abs().amax(dim=1) / 127  # one int8 step per row
            error = (a - b).reshape(a.shape[0], -1).abs().amax(dim=1)
            assert (error <= step / 2 * (1 + 1e-5) + 1e-12).all(), name
            assert not torch.equal(a, b), name
        elif a.is_floating_point():
            assert torch.equal(b, a.half().float()), name
    assert quantised >= 3
    x = images[:64]
    full = evaluate(result.model, x, binarize=True)["nll_bound"]
    assert evaluate(model, x, binarize=True)["nll_bound"] == pytest.approx(full, rel=1e-2)
    with pytest.raises(ValueError, match="choose one"):
        export_checkpoint(tmp_path / "full.pt", tmp_path / "x.pt", half=True, int8=True)

"""One command line: every command a subcommand of `python -m drawviz`, flags spelled alike, old spellings
kept for a release with a message saying the new one."""

import subprocess
import sys
from pathlib import Path

import pytest

from drawviz.__main__ import parser

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "mnist.pt"


def _drawviz(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "drawviz", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_report_is_a_subcommand_like_the_others():
    help_text = parser().format_help()
    for command in ("train", "evaluate", "export", "card", "report"):
        assert command in help_text
    args = parser().parse_args(["report", "--only", "mnist", "--notebooks", "train", "--no-comparison"])
    assert args.only == ["mnist"] and args.notebooks == ["train"] and args.func.__name__ == "_report"


def test_flags_are_lower_case_and_the_test_images_flag_is_one_name():
    for command in ("train", "evaluate", "export", "card", "report"):
        sub = parser()._subparsers._group_actions[0].choices[command]
        shown = [o for a in sub._actions if a.help != "==SUPPRESS==" for o in a.option_strings]
        assert all(o == o.lower() for o in shown), (command, shown)
    assert parser().parse_args(["evaluate", "m.pt", "--test-limit", "7"]).limit == 7
    assert parser().parse_args(["card", "m.pt", "--test-limit", "7"]).images == 7
    assert parser().parse_args(["train", "--drawing-steps", "3"]).T == 3


@pytest.mark.parametrize(
    "argv, new",
    [
        (["train", "--T", "3"], "--drawing-steps"),
        (["evaluate", "m.pt", "--limit", "5"], "--test-limit"),
        (["card", "m.pt", "--images", "9"], "--test-limit"),
    ],
)
def test_a_renamed_flag_is_refused_naming_the_new_spelling(argv, new, capsys):
    with pytest.raises(SystemExit) as exit:
        parser().parse_args(argv)
    assert exit.value.code == 2 and f"{argv[-2]} was renamed {new}" in capsys.readouterr().err


def test_export_writes_the_file_named_by_out_and_needs_it(tmp_path, mnist_train_2k):
    from drawviz.model import DrawConfig
    from drawviz.checkpoints import load_checkpoint
    from drawviz.train import train

    train(
        DrawConfig(T=2, enc_size=16, dec_size=16, z_size=4),
        mnist_train_2k.images[:64],
        steps=2,
        batch_size=32,
        progress=False,
        checkpoint=tmp_path / "m.pt",
    )
    new = _drawviz("export", str(tmp_path / "m.pt"), "--out", str(tmp_path / "a.pt"))
    assert new.returncode == 0, new.stderr
    assert load_checkpoint(tmp_path / "a.pt")["step"] == 2
    none = _drawviz("export", str(tmp_path / "m.pt"))
    assert none.returncode == 2 and "--out" in none.stderr
    positional = _drawviz("export", str(tmp_path / "m.pt"), str(tmp_path / "b.pt"))  # the spelling of old
    assert positional.returncode == 2 and not (tmp_path / "b.pt").exists()


def test_grey_images_are_binarised_for_the_bernoulli_and_kept_as_grey_values_for_the_logistic(tmp_path):
    # the discretised logistic models 8-bit intensities: binarising Fashion-MNIST for it would throw its textures away
    from drawviz import data
    from drawviz.checkpoints import load_checkpoint

    assert data.default_binarize("fashion-mnist") == "dynamic" and data.default_binarize("mnist", "bernoulli") == "dynamic"
    assert data.default_binarize("fashion-mnist", "logistic") is None and data.default_binarize("cifar10", "bernoulli") is None
    common = ["--dataset", "fashion-mnist-sample", "--drawing-steps", "2", "--steps", "2", "--batch-size", "16",
              "--test-limit", "16", "--no-progress"]  # fmt: skip
    for likelihood, expected in (("bernoulli", "dynamic"), ("logistic", None)):
        path = tmp_path / f"{likelihood}.pt"
        done = _drawviz("train", *common, "--likelihood", likelihood, "--checkpoint", str(path))
        assert done.returncode == 0, done.stderr[-2000:]
        assert load_checkpoint(path)["train_args"]["settings"]["binarize"] == expected


def test_init_from_the_checkpoint_itself_is_refused_before_anything_is_written(tmp_path):
    """Issue 32, case 15: --init-from equal to --checkpoint trained into its own source."""
    import shutil

    model = tmp_path / "m.pt"
    shutil.copyfile(SHIPPED, model)
    before = model.read_bytes()
    proc = _drawviz("train", "--dataset", "mnist-sample", "--init-from", str(model), "--checkpoint", str(model), "--steps", "1")
    assert proc.returncode == 2 and "is the --checkpoint itself" in proc.stderr
    assert model.read_bytes() == before


def test_a_start_that_fails_leaves_no_copy_to_shadow_a_later_init_from(tmp_path):
    """Issue 32, case 15: the copy of --init-from made to start from is removed when training cannot start."""
    leg = tmp_path / "leg.pt"
    proc = _drawviz(
        "train",
        "--dataset",
        "mnist-sample",
        "--init-from",
        str(SHIPPED),
        "--checkpoint",
        str(leg),
        "--steps",
        "1",
        "--batch-size",
        "5000",  # larger than the 800 images: refused inside train()
    )
    assert proc.returncode == 2 and "batch_size" in proc.stderr
    assert not leg.exists()


def test_limit_means_class_balanced_images_on_the_command_line_as_in_the_notebooks(tmp_path):
    """Issue 32 (one meaning per word): --limit was the first N on the CLI and class-balanced in the notebooks."""
    from drawviz.checkpoints import load_checkpoint

    ckpt = tmp_path / "m.pt"
    proc = _drawviz(
        "train",
        "--dataset",
        "mnist-sample",
        "--drawing-steps",
        "2",
        "--limit",
        "100",
        "--test-limit",
        "20",
        "--steps",
        "1",
        "--checkpoint",
        str(ckpt),
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert "100 images class-balanced, drawn with seed 0" in load_checkpoint(ckpt)["train_args"]["train_source"]


# issue 21
def test_train_writes_its_history_into_a_folder_that_does_not_exist_yet(tmp_path, data_root):
    history = tmp_path / "new" / "folder" / "h.csv"
    run = _drawviz(
        "train",
        "--drawing-steps",
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
    )
    assert run.returncode == 0, run.stderr
    assert history.read_text().splitlines()[0].startswith("step,epoch,loss")


def test_a_resume_or_a_start_from_a_model_trains_on_that_models_data_when_none_is_named(tmp_path):
    from drawviz.checkpoints import load_checkpoint, settings_of

    first = tmp_path / "cifar.pt"
    common = ["--drawing-steps", "2", "--batch-size", "16", "--test-limit", "16", "--no-progress"]
    made = _drawviz("train", "--dataset", "cifar10-sample", "--checkpoint", str(first), "--steps", "1", *common)
    assert made.returncode == 0, made.stderr[-2000:]
    resumed = _drawviz("train", "--checkpoint", str(first), "--steps", "2", *common)  # no --dataset: the checkpoint's
    assert resumed.returncode == 0 and "cifar10-sample images" in resumed.stderr, resumed.stderr[-2000:]
    started = _drawviz("train", "--init-from", str(first), "--checkpoint", str(tmp_path / "next.pt"), "--steps", "3", *common)
    assert started.returncode == 0, started.stderr[-2000:]
    assert settings_of(load_checkpoint(tmp_path / "next.pt"))["dataset"] == "cifar10-sample"
    new = _drawviz("train", "--checkpoint", str(tmp_path / "new.pt"), "--steps", "1", "--limit", "64", *common)
    assert new.returncode == 0 and "mnist images" in new.stderr  # nothing to go by: MNIST, the paper's

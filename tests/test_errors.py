"""Numbers that would be silently wrong are clear errors instead (issue 14, item 3)."""
import pytest
import torch

from drawviz import data
from drawviz.__main__ import main
from drawviz.model import DRAW, DrawConfig
from drawviz.train import CheckpointError, TrainingDiverged, evaluate, load_checkpoint, save_checkpoint

TINY = DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2, read_n=2, write_n=2)


def test_a_negative_or_zero_evaluation_batch_is_refused():
    x = torch.rand(4, 1, 28, 28)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            evaluate(DRAW(TINY), x, batch_size=bad)


def test_a_model_with_nan_weights_has_no_test_bound():
    model = DRAW(TINY)
    with torch.no_grad():
        model.c0.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="not finite"):
        evaluate(model, torch.rand(4, 1, 28, 28))


def test_negative_limits_are_refused_not_read_as_all_but_the_last():
    for bad in (-5, 0):
        with pytest.raises(ValueError, match="limit"):
            data.load("mnist-sample", "test", limit=bad)
        with pytest.raises(ValueError, match="positive"):
            data.load("mnist-sample", "test").balanced(bad)
    assert main(["train", "--dataset", "mnist-sample", "--limit", "-10", "--steps", "1", "--no-progress"]) == 2


def test_attention_must_be_a_bool():
    with pytest.raises(ValueError, match="attention"):
        DrawConfig(attention="no")  # a non-empty string would have kept attention on


def test_a_checkpoint_with_a_nonsense_step_or_no_weights_does_not_load(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model=DRAW(TINY), optimizer=None, step=3)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "step": "abc"}, tmp_path / "step.pt")
    with pytest.raises(CheckpointError, match="step"):
        load_checkpoint(tmp_path / "step.pt")
    torch.save({k: v for k, v in state.items() if k != "model"}, tmp_path / "nomodel.pt")
    with pytest.raises(CheckpointError, match="without model"):
        load_checkpoint(tmp_path / "nomodel.pt")


def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    import os

    from drawviz.train import train
    if os.geteuid() == 0:  # root writes anywhere: a file where the folder should be does it instead
        blocker = tmp_path / "file"
        blocker.write_text("")
        target = blocker / "m.pt"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "m.pt"
    with pytest.raises(CheckpointError, match="cannot write"):
        train(TINY, torch.rand(8, 1, 28, 28), steps=1000, batch_size=4, checkpoint=target, progress=False)


def test_partial_writes_of_killed_processes_are_removed_on_the_next_save(tmp_path):
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has exited
    stale = tmp_path / f"m.pt.tmp{gone}"
    stale.write_bytes(b"x" * 1000)
    mine = tmp_path / f"m.pt.tmp{os.getppid()}"  # a live process's write in progress: kept
    mine.write_bytes(b"y")
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    assert not stale.exists() and mine.exists() and (tmp_path / "m.pt").exists()


def test_report_and_export_refuse_an_unwritable_output_up_front(tmp_path, capsys):
    from drawviz import report
    from drawviz.train import export_checkpoint

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert report.main(["--out", str(blocker / "reports")]) == 2
    assert "cannot write" in capsys.readouterr().err
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    with pytest.raises(CheckpointError, match="cannot write"):
        export_checkpoint(tmp_path / "m.pt", blocker / "out.pt")

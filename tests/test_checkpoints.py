"""Checkpoints: export replaces only an earlier export of the same model (issue 32, case 5), never its own
source, and never stores weights broken; a checkpoint that makes no sense does not load, and a full disk keeps
the previous one (issues 14 and 21)."""

import subprocess
import sys
import textwrap

import pytest
import torch

from drawviz.checkpoints import CheckpointError, export_checkpoint, load_checkpoint, save_checkpoint
from drawviz.model import DRAW, DrawConfig

TINY = DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)


@pytest.fixture
def trained(tmp_path):
    model = DRAW(TINY)
    optimizer = torch.optim.Adam(model.parameters())
    return save_checkpoint(tmp_path / "run.pt", model=model, optimizer=optimizer, step=3)


def test_export_with_its_arguments_swapped_leaves_the_training_checkpoint_whole(trained, tmp_path):
    shipped = export_checkpoint(trained, tmp_path / "shipped.pt")
    with pytest.raises(CheckpointError, match="training checkpoint.*swapped"):
        export_checkpoint(shipped, trained)
    assert load_checkpoint(trained)["optimizer"] is not None


def test_export_refuses_a_file_that_is_not_a_checkpoint_unless_forced(trained, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    with pytest.raises(CheckpointError, match="not a drawviz checkpoint"):
        export_checkpoint(trained, notes)
    assert notes.read_text() == "# my notes\n"
    export_checkpoint(trained, notes, force=True)
    assert load_checkpoint(notes)["step"] == 3


def test_export_replaces_an_earlier_export_of_the_same_model_but_not_of_another(trained, tmp_path):
    out = export_checkpoint(trained, tmp_path / "shipped.pt")
    export_checkpoint(trained, out)  # a later leg's export over the last one: the usual case
    other = save_checkpoint(tmp_path / "other.pt", model=DRAW(DrawConfig(T=3, enc_size=8, dec_size=8, z_size=2)))
    with pytest.raises(CheckpointError, match="another model"):
        export_checkpoint(other, out)


# issue 21
def test_export_onto_its_own_source_is_refused_and_the_source_kept(tmp_path, mnist_train_2k):
    from drawviz.train import train

    path = tmp_path / "m.pt"
    config = DrawConfig(T=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3)
    train(config, mnist_train_2k.images[:64], steps=2, batch_size=32, progress=False, checkpoint=path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="another output"):
        export_checkpoint(path, tmp_path / "." / "m.pt", half=True)
    assert path.read_bytes() == before and load_checkpoint(path)["optimizer"] is not None


@pytest.mark.parametrize("bad, match", [(7e4, "float16 holds at most"), (float("nan"), "NaN or infinite")])
# issue 21
def test_export_refuses_weights_it_would_store_broken(tmp_path, bad, match):
    m = DRAW(TINY)
    with torch.no_grad():
        m.q.weight[0, 0] = bad
    save_checkpoint(tmp_path / "m.pt", model=m, step=1)
    with pytest.raises(CheckpointError, match=match):
        export_checkpoint(tmp_path / "m.pt", tmp_path / "out.pt", half=True)
    assert not (tmp_path / "out.pt").exists()


def test_report_and_export_refuse_an_unwritable_output_up_front(tmp_path, capsys):
    """Issue 14: both ask checkpoints.check_writable before any work."""
    from drawviz import report

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert report.main(["--out", str(blocker / "reports")]) == 2
    assert "cannot write" in capsys.readouterr().err
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    with pytest.raises(CheckpointError, match="cannot write"):
        export_checkpoint(tmp_path / "m.pt", blocker / "out.pt")


# issue 14
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


@pytest.mark.parametrize("limit", [4096, 2_000_000])  # a few blocks, and half of a real MNIST checkpoint
def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, limit):
    """Issue 14: a file-size limit stands in for a full disk: the write fails part-way, as it would."""
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    before = (tmp_path / "m.pt").read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from drawviz.model import DRAW, DrawConfig
        from drawviz.checkpoints import CheckpointError, save_checkpoint
        try:
            save_checkpoint({str(tmp_path / "m.pt")!r}, model=DRAW(DrawConfig()), step=2)
        except CheckpointError as err:
            print("CLEAR:", err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "CLEAR:" in out.stdout and "previous checkpoint there is intact" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "m.pt").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp*"))

"""Checkpoints: export replaces only an earlier export of the same model (issue 32, case 5)."""

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

"""Files: nothing is ever written through a link drawviz did not create (issue 32, case 1)."""

import os

import pytest

from drawviz import files
from drawviz.checkpoints import CheckpointError, check_writable


def test_a_planted_lock_link_is_refused_and_its_target_left_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / ".run.pt.lock")
    with pytest.raises(files.WriteError, match="symbolic link"):
        with files.exclusive(tmp_path / "run.pt", "training"):
            pass
    assert victim.read_text() == "precious"


def test_the_writability_probe_never_opens_what_is_already_there(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    os.symlink(victim, tmp_path / ".run.pt.writable4242")
    with pytest.raises(CheckpointError):
        check_writable(tmp_path / "run.pt")
    assert victim.read_text() == "precious"

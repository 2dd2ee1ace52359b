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


def test_a_filesystem_without_locks_is_worked_on_unlocked_with_a_warning(tmp_path, monkeypatch):
    """Issue 32, case 10: NFS without lock support said 'OSError: [Errno 37] No locks available' and stopped."""
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match="does not support file locks"):
        with files.exclusive(tmp_path / "run.pt", "training"):
            ran = True
    assert ran


def test_a_lock_left_by_another_user_is_taken_read_only_and_still_excludes(tmp_path, monkeypatch):
    """Issue 32, case 10: another user's leftover .x.pt.lock (0644) gave everyone else a PermissionError."""
    lock = tmp_path / ".run.pt.lock"
    lock.write_text("process 1 (long gone)")
    real_open = os.open

    def as_another_user(path, flags, *args):  # root may write anything: pretend the file is someone else's
        if str(path) == str(lock) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", as_another_user)
    with files.exclusive(tmp_path / "run.pt", "training"):
        with pytest.raises(files.InUse):
            with files.exclusive(tmp_path / "run.pt", "training"):
                pass


def test_a_new_lock_is_writable_by_every_user(tmp_path):
    old = os.umask(0o022)
    try:
        with files.exclusive(tmp_path / "run.pt", "training"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / ".run.pt.lock").stat().st_mode & 0o666 == 0o666


def test_a_file_that_is_the_users_link_is_followed_and_the_link_kept(tmp_path):
    """Issue 32, case 11: runs/ linked to a big disk: each save updates the target, the link stays a link."""
    from drawviz.checkpoints import load_checkpoint, save_checkpoint
    from drawviz.model import DRAW, DrawConfig

    disk = tmp_path / "big-disk"
    disk.mkdir()
    (disk / "run.pt").write_bytes(b"")
    link = tmp_path / "run.pt"
    os.symlink(disk / "run.pt", link)
    model = DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2))
    with files.exclusive(link, "training"):
        with pytest.raises(files.InUse):  # the real file is what is held, by either name
            with files.exclusive(disk / "run.pt", "training"):
                pass
        for step in (1, 2):
            save_checkpoint(link, model=model, step=step)
    assert link.is_symlink() and load_checkpoint(disk / "run.pt")["step"] == 2


def test_a_link_owned_by_another_user_is_not_written_through(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "run.pt"
    os.symlink(victim, link)
    real_uid = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real_uid + 4321)  # this process as another user than the link's owner
    with pytest.raises(files.WriteError, match="another user"):
        files.write_text(link, "overwritten")
    assert victim.read_text() == "precious"

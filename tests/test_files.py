"""Files: nothing is ever written through a link drawviz did not create (issue 32, case 1); a write is
whole or not there: a full disk leaves the previous file, concurrent writers never mix, and partial writes of
killed processes are cleared (issues 14 and 21)."""

import json
import os
import subprocess
import sys
import textwrap
import threading

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


# ----------------------------------------------------------------------------- full disks, concurrent and killed writers


def test_a_page_written_on_a_full_disk_leaves_the_old_page_and_no_partial(tmp_path):
    """Issue 21: a file-size limit stands in for a full disk; the write fails part-way, as it would."""
    page = tmp_path / "index.html"
    files.write_text(page, "<p>good</p>")
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        from drawviz import files
        try:
            files.write_text({str(page)!r}, "x" * 1_000_000)
        except files.WriteError as err:
            print("CLEAR:", err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "CLEAR:" in out.stdout and "previous file there is intact" in out.stdout, out.stdout + out.stderr
    assert page.read_text() == "<p>good</p>" and sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]


def test_concurrent_writers_of_one_file_never_mix_nor_share_a_partial_file(tmp_path):
    """Issues 14 and 21: threads writing one file, large contents many times over: no write fails on another's
    partial file, the file is always one writer's whole last write, and no partial file is left."""
    path = tmp_path / "m.json"
    errors = []

    def writer(k):
        try:
            for i in range(30):
                files.write_json(path, {"writer": k, "i": i, "pad": "x" * 50_000})
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    last = json.loads(path.read_text())
    assert last["writer"] in range(8) and last["i"] == 29 and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


# issue 14
def test_partial_writes_of_killed_processes_are_removed_on_the_next_save(tmp_path):
    from drawviz.checkpoints import save_checkpoint
    from drawviz.model import DRAW, DrawConfig

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()  # a pid that has exited
    stale = tmp_path / f"m.pt.tmp{gone}"
    stale.write_bytes(b"x" * 1000)
    mine = tmp_path / f"m.pt.tmp{os.getppid()}"  # a live process's write in progress: kept
    mine.write_bytes(b"y")
    save_checkpoint(tmp_path / "m.pt", model=DRAW(DrawConfig(T=2, enc_size=8, dec_size=8, z_size=2)), step=1)
    assert not stale.exists() and mine.exists() and (tmp_path / "m.pt").exists()

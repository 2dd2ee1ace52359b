"""Numbers that would be silently wrong are clear errors instead (issue 14, item 3)."""

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from drawviz import data
from drawviz.__main__ import main
from drawviz.model import DRAW, DrawConfig
from drawviz.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from drawviz.evaluation import TrainingDiverged, evaluate

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

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()  # a pid that has exited
    stale = tmp_path / f"m.pt.tmp{gone}"
    stale.write_bytes(b"x" * 1000)
    mine = tmp_path / f"m.pt.tmp{os.getppid()}"  # a live process's write in progress: kept
    mine.write_bytes(b"y")
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    assert not stale.exists() and mine.exists() and (tmp_path / "m.pt").exists()


def test_report_and_export_refuse_an_unwritable_output_up_front(tmp_path, capsys):
    from drawviz import report
    from drawviz.checkpoints import export_checkpoint

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert report.main(["--out", str(blocker / "reports")]) == 2
    assert "cannot write" in capsys.readouterr().err
    save_checkpoint(tmp_path / "m.pt", model=DRAW(TINY), step=1)
    with pytest.raises(CheckpointError, match="cannot write"):
        export_checkpoint(tmp_path / "m.pt", blocker / "out.pt")


def test_raw_tracebacks_become_clear_errors(tmp_path):
    from drawviz import probes
    from drawviz.model import InputError
    from drawviz.device import pick_device

    model = DRAW(TINY)
    with pytest.raises(InputError, match="images are torch.float64 but the model is torch.float32"):
        model(torch.rand(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(InputError, match="positive number of samples"):
        probes.record_generation(model, -1)
    with pytest.raises(InputError, match=r"\(T, batch, z_size\) = \(2, 3, 2\)"):
        model(torch.rand(3, 1, 28, 28), eps=torch.randn(2, 3, 5))
    with pytest.raises(InputError, match="eps must have shape"):
        model.generate(3, eps=torch.randn(2, 1, 2))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def test_a_truncated_dataset_file_is_called_corrupt_not_missing(tmp_path, data_root):
    import shutil

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copyfile(data_root / "MNIST" / "raw" / f, raw / f)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(ValueError, match="unreadable"):
        data.load("mnist", "test", tmp_path)
    archive = tmp_path / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    archive.parent.mkdir()
    whole = archive.with_suffix(".whole")
    with tarfile.open(whole, "w:gz") as tar:  # the JPEG copy's layout, with noise images that do not compress
        for k in range(40):
            buf = io.BytesIO()
            Image.fromarray(np.random.default_rng(k).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
            info = tarfile.TarInfo(f"cifar10-jpg/test/{'cat' if k % 2 else 'dog'}/{k:04d}.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    archive.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    import os

    os.environ["DRAWVIZ_CACHE"] = str(tmp_path / "cache")
    try:
        with pytest.raises(ValueError, match="truncated or corrupt"):
            data.load("cifar10", "test", tmp_path)
    finally:
        del os.environ["DRAWVIZ_CACHE"]


def test_concurrent_json_writers_never_share_a_temporary_file(tmp_path):
    import json
    import threading as th

    from drawviz.report import write_json

    path = tmp_path / "m.json"
    errors = []

    def writer(k):
        try:
            for i in range(30):
                write_json(path, {"writer": k, "i": i})
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [th.Thread(target=writer, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and json.loads(path.read_text())["i"] == 29


@pytest.mark.parametrize("limit", [4096, 2_000_000])  # a few blocks, and half of a real MNIST checkpoint
def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, limit):
    """A file-size limit stands in for a full disk: the write fails part-way, as it would."""
    import subprocess
    import sys
    import textwrap

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

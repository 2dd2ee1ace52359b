"""Shared fixtures. Real MNIST comes from ../shared/data (or $DRAWVIZ_DATA); tests never skip for it."""
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    root = Path(os.environ.get("DRAWVIZ_DATA") or ROOT.parent / "shared" / "data")
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.fail(f"real MNIST not found under {root}: set DRAWVIZ_DATA to the folder holding MNIST/raw "
                    f"(in this project: ../shared/data beside the repository)")
    os.environ["DRAWVIZ_DATA"] = str(root)  # for subprocesses and notebook kernels too
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def mnist_test(data_root):
    from drawviz import data
    return data.load("mnist", "test", data_root)


@pytest.fixture(scope="session")
def mnist_train_2k(data_root):
    from drawviz import data
    return data.load("mnist", "train", data_root, limit=2000)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield

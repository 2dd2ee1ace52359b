"""Shared fixtures. Real MNIST comes from ../shared/data (or $DRAWVIZ_DATA); tests never skip for it."""
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _has_mnist(root: Path) -> bool:
    return (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def _data_root() -> Path:
    """$DRAWVIZ_DATA, else ../shared/data beside the repository (CI), else drawviz's cache, where
    torchvision downloads MNIST once on a fresh clone with internet."""
    candidates = [Path(os.environ["DRAWVIZ_DATA"])] if os.environ.get("DRAWVIZ_DATA") else []
    candidates += [ROOT.parent / "shared" / "data", Path.home() / ".cache" / "drawviz" / "data"]
    root = next((c for c in candidates if _has_mnist(c)), None)
    if root is None:
        root = candidates[-1]
        try:
            from torchvision import datasets
            for train in (True, False):
                datasets.MNIST(str(root), train=train, download=True)
        except Exception as err:  # offline, or the mirrors are down
            pytest.fail(f"real MNIST not found ({', '.join(map(str, candidates))}) and not downloadable ({err}); "
                        f"set DRAWVIZ_DATA to a folder holding MNIST/raw", pytrace=False)
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

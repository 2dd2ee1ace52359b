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
            pytest.fail(
                f"real MNIST not found ({', '.join(map(str, candidates))}) and not downloadable ({err}); "
                f"set DRAWVIZ_DATA to a folder holding MNIST/raw",
                pytrace=False,
            )
    os.environ["DRAWVIZ_DATA"] = str(root)  # for subprocesses and notebook kernels too
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


def _has(root: Path, name: str) -> bool:
    from drawviz import data

    try:
        data.load(name, "test", root, limit=1)
        return True
    except data.DatasetNotFoundError:
        return False


@pytest.fixture(scope="session")
def dataset_root(data_root):
    """dataset_root(name): a data root holding the real `name` test set: the MNIST root when it has it, else
    drawviz's cache, where torchvision downloads it once ("fashion-mnist"). The CIFAR-10 JPEG copy
    ("cifar10-jpeg") is not downloadable: without it the test fails with one line saying where to put it."""
    cache = Path.home() / ".cache" / "drawviz" / "data"

    def find(name: str) -> Path:
        if name == "cifar10-jpeg":
            for root in (data_root, ROOT.parent / "shared" / "data"):
                if (root / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz").exists():
                    return root
            pytest.fail(
                f"this test reads the CIFAR-10 JPEG copy: put cifar10-jpg.tar.gz in {data_root}/CIFAR10-jpeg/ "
                "or set DRAWVIZ_DATA to a folder that has it",
                pytrace=False,
            )
        for root in (data_root, cache):
            if _has(root, name):
                return root
        try:
            from torchvision import datasets

            for train in (True, False):
                {"fashion-mnist": datasets.FashionMNIST}[name](str(cache), train=train, download=True)
        except Exception as err:  # offline, or the mirrors are down
            pytest.fail(
                f"real {name} not found under {data_root} and not downloadable ({err}); "
                f"set DRAWVIZ_DATA to a folder that holds it",
                pytrace=False,
            )
        return cache

    return find


@pytest.fixture(scope="session")
def mnist_test(data_root):
    from drawviz import data

    return data.load("mnist", "test", data_root)


@pytest.fixture(scope="session")
def mnist_train_2k(data_root):
    from drawviz import data

    return data.load("mnist", "train", data_root, limit=2000)


@pytest.fixture(scope="module")
def small_draw():
    """A small untrained DRAW, T = 4 and z_size = 4 (what an intervention's or a recording's checks need)."""
    from drawviz.model import DRAW, DrawConfig

    torch.manual_seed(0)
    return DRAW(DrawConfig(T=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3)).eval()


@pytest.fixture(scope="module")
def three_binary_images():
    """3 random binary 28 x 28 images, for `small_draw`."""
    return (torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield

"""Rebuild the offline samples in drawviz/assets/ from the full datasets (run once; the files are committed).

Each sample holds the first 100 test images of every class (1,000 images), stored interleaved by
class (a0 b0 … j0 a1 b1 …) so that any prefix is class-balanced; ``drawviz.data.load`` splits it
into 200 test and 800 training images.  CIFAR-10 is kept as the JPEG files of the offline copy,
byte for byte (smaller than raw pixels, and decoded to exactly what ``load("cifar10")`` gives).

    python scripts/make_samples.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "drawviz" / "assets"
PER_CLASS = 100


def balanced(labels: np.ndarray) -> np.ndarray:
    """Indices of the first PER_CLASS images of each class, interleaved by class."""
    firsts = [np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)]
    return np.stack(firsts, 1).ravel()  # (rank, class) order


def mnist_like(root: Path, folder: str, out: Path) -> None:
    from torchvision import datasets

    cls = {"MNIST": datasets.MNIST, "FashionMNIST": datasets.FashionMNIST}[folder]
    ds = cls(str(root), train=False, download=False)
    labels = ds.targets.numpy()
    index = balanced(labels)
    np.savez_compressed(out, images=ds.data.numpy()[index], labels=labels[index], index=index)


def cifar10(root: Path, out: Path) -> None:
    archive = root / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    files = {}
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if m.isfile() and len(parts) >= 3 and parts[-3] == "test" and parts[-1].endswith(".jpg"):
                files[(parts[-2], parts[-1])] = tar.extractfile(m).read()
    classes = sorted({c for c, _ in files})
    chosen = []  # interleaved: rank-major, class-minor
    for rank in range(PER_CLASS):
        for label, c in enumerate(classes):
            name = sorted(n for cc, n in files if cc == c)[rank]
            chosen.append((label, f"{c}/{name}", files[(c, name)]))
    blobs = [np.frombuffer(b, dtype=np.uint8) for _, _, b in chosen]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(
        out,
        jpeg=np.concatenate(blobs),
        offsets=offsets,
        labels=np.array([l for l, _, _ in chosen]),
        names=np.array([n for _, n, _ in chosen]),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, required=True)
    root = p.parse_args().data_root
    mnist_like(root, "MNIST", ASSETS / "mnist_sample.npz")
    mnist_like(root, "FashionMNIST", ASSETS / "fashion_mnist_sample.npz")
    cifar10(root, ASSETS / "cifar10_sample.npz")
    for f in sorted(ASSETS.glob("*.npz")):
        print(f"{f.name}: {f.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()

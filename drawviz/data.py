"""Datasets as float tensors in [0, 1], shape (N, C, H, W), read through torchvision's layouts.

The root folder is the ``root`` argument, else the ``DRAWVIZ_DATA`` environment variable,
else ``~/.cache/drawviz/data``.  Nothing is downloaded unless ``download=True``.

- ``mnist``, ``fashion-mnist``: torchvision's ``MNIST/raw`` and ``FashionMNIST/raw`` idx files.
- ``cifar10``: torchvision's ``cifar-10-batches-py``; when absent, the JPEG archive
  ``CIFAR10-jpeg/cifar10-jpg.tar.gz`` (re-encoded at quality 75: slightly smoother than the
  original), decoded once into a cache (``DRAWVIZ_CACHE`` or ``~/.cache/drawviz``); its classes
  come interleaved, so the first n images hold n/10 of each class.
- ``svhn``: ``SVHN/{train,test}_32x32.mat`` (torchvision's files; read with scipy).
- ``mnist-sample``, ``fashion-mnist-sample``, ``cifar10-sample``: shipped with the package (offline):
  1,000 test images each, 100 per class; ``split="test"`` gives 200 of them (20 per class) and
  ``split="train"`` the other 800, so a bound on the test split is on images never trained on.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from . import files as _files
from . import likelihood as _likelihood
from .checks import positive_int

# also DATASETS, GREY and SAMPLES: views of REGISTRY, always current (module __getattr__ below)
__all__ = [
    "ImageSet",
    "Dataset",
    "REGISTRY",
    "register",
    "DatasetNotFoundError",
    "data_root",
    "load",
    "binarize",
    "default_binarize",
    "default_preset",
    "batches",
    "full_name",
    "portable",
]

_ASSETS = Path(__file__).parent / "assets"


@dataclass(frozen=True)
class Dataset:
    """A dataset as one declaration: ``register`` it and load(), the CLI, the report, presets and
    binarisation know it.

    loader(root, train, download) -> (images (N, C, H, W) float in [0, 1], labels (N,), source text), and
    optionally a fourth item: a dict of the ImageSet's other fields (a scene set's ``objects`` and ``pieces``, a
    captioned set's ``captions`` and ``held_out``);
    grey: binarised for a Bernoulli likelihood (the colour sets are not); preset: the preset that fits it,
    of the model kind ``kind`` (drawviz.kinds); aliases: other spellings; sample_of: for an offline sample,
    the dataset it samples; classes: its classes' names in label order (none for digits, each its own name);
    judge: the shipped classifier of its classes (a file in models/, drawviz.judge) that
    reads a conditional model's drawings of them (drawviz.asked.judge_for), None where there is none.
    """

    name: str
    loader: Callable[[Path, bool, bool], tuple]
    grey: bool
    preset: str
    aliases: tuple = ()
    sample_of: Optional[str] = None
    help: str = ""
    kind: str = "draw"
    classes: tuple = ()
    judge: Optional[str] = None


REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add a dataset (or replace one of the same name)."""
    REGISTRY[dataset.name] = dataset
    return dataset


def __getattr__(name: str):
    # the registry's views, always current (a dataset registered later is in them)
    if name == "DATASETS":
        return tuple(REGISTRY)
    if name == "GREY":
        return tuple(k for k, d in REGISTRY.items() if d.grey)
    if name == "SAMPLES":
        return {k: _SAMPLE_FILES[k] for k, d in REGISTRY.items() if d.sample_of and k in _SAMPLE_FILES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where drawviz looked; the message says where and how to get them."""


@dataclass
class ImageSet:
    """Images (N, C, H, W) float32 in [0, 1], their labels (N,), and where they came from.

    objects: for a scene set (drawviz.scenes), one row per pasted piece (``image`` indexes this set);
    None for sets of single images. pieces: what the scenes are made from (drawviz.scenes.Pieces), so that
    ``redrawn`` can place the same digits anew. captions: for a captioned set (drawviz.captions), each image's
    caption as token ids (N, LENGTH), and held_out (N,): whether its (digit, relation, digit) is one training
    never saw."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    source: str
    objects: Optional[pd.DataFrame] = None
    pieces: Optional[object] = None
    captions: Optional[torch.Tensor] = None
    held_out: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, n: Optional[int]) -> "ImageSet":
        """The first n images (as stored)."""
        if n is None or n >= len(self):
            return self
        return self._take(torch.arange(n), self.source)

    def where(self, mask: torch.Tensor, what: str) -> "ImageSet":
        """The images where ``mask`` (len(self),) is True, in order; ``what`` says which in the source (a card names
        the images a bound is on)."""
        if mask.shape != (len(self),) or mask.dtype != torch.bool:
            raise ValueError(f"where() takes a boolean mask of {len(self)} (one per image), got {mask.dtype} {tuple(mask.shape)}")
        return self._take(torch.nonzero(mask)[:, 0], f"{self.source}; {what}")

    def _take(self, chosen: torch.Tensor, source: str) -> "ImageSet":
        """The images at ``chosen``, in that order, with their objects re-indexed to match."""
        objects = None
        if self.objects is not None:
            new = pd.Series(np.arange(len(chosen)), index=chosen.numpy())
            objects = self.objects[self.objects["image"].isin(new.index)].copy()
            objects["image"] = new.loc[objects["image"].to_numpy()].to_numpy()
            objects = objects.sort_values("image", kind="stable", ignore_index=True)
        pick = lambda t: t[chosen] if t is not None else None  # noqa: E731
        return ImageSet(
            self.name,
            self.split,
            self.images[chosen],
            self.labels[chosen],
            source,
            objects,
            self.pieces,
            pick(self.captions),
            pick(self.held_out),
        )

    def redrawn(self, seed) -> "ImageSet":
        """The same digits, each in a new place, with new distractors (drawviz.scenes.redraw): a scene set
        drawn afresh, image for image and label for label. Only scene sets (cluttered-mnist, two-digit-mnist)."""
        if self.pieces is None or self.objects is None:
            raise ValueError(f"{self.name} is not a scene set: only cluttered-mnist and two-digit-mnist can be drawn afresh")
        from . import scenes

        images, objects = scenes.redraw(self.pieces.scene, self.objects, self.pieces.digits, self.pieces.labels, seed)
        fresh = torch.from_numpy(images[:, None]).float().div_(255)
        return ImageSet(self.name, self.split, fresh, self.labels, f"{self.source}, redrawn (seed {seed})", objects, self.pieces)

    def balanced(self, n: Optional[int], seed: int = 0) -> "ImageSet":
        """n images, as equal a number of each class as the set allows, drawn with a fixed seed and
        interleaved by class (so any prefix of the result is balanced too); the source says so.

        What a figure should show instead of "the first n" (the first n of a class-sorted set would
        be one class).
        """
        n = n if n is None else positive_int(n, "n", "a number of images, or None for all")
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        chosen = order[torch.from_numpy(_interleave_classes(self.labels[order].numpy()))[:n]]
        return self._take(chosen, f"{self.source}; {n:,} images class-balanced, drawn with seed {seed}")


def data_root(root: Optional[str | os.PathLike] = None) -> Path:
    if root is None:
        root = os.environ.get("DRAWVIZ_DATA") or Path.home() / ".cache" / "drawviz" / "data"
    return Path(root).expanduser()


def _cache_dir() -> Path:
    return Path(os.environ.get("DRAWVIZ_CACHE") or Path.home() / ".cache" / "drawviz").expanduser()


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"a dataset is named by a string ({', '.join(REGISTRY)}), got {name!r}")
    key = name.lower().replace("_", "-")
    key = next((k for k, d in REGISTRY.items() if key == k or key in d.aliases), key)
    if key not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(REGISTRY)}")
    return key


def _missing(name: str, root: Path, files: list[str], how: str, one_of: bool = False) -> DatasetNotFoundError:
    """files: paths under the data root; one_of: any one of them would do (alternative layouts)."""
    listing = "\n".join(f"  {root / f}" for f in files)
    return DatasetNotFoundError(
        f"{name} not found: expected {'one of these' if one_of else 'these files'}\n{listing}\n"
        f"Point drawviz at the folder that holds {'it' if one_of else 'them'} with data_root=... or the DRAWVIZ_DATA "
        f"environment variable (the data root is now {root}). {how}"
    )


def _split(split: str) -> bool:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split == "train"


def _mnist_like(key: str, root: Path, train: bool, download: bool):
    from torchvision import datasets

    cls, folder = {"mnist": (datasets.MNIST, "MNIST"), "fashion-mnist": (datasets.FashionMNIST, "FashionMNIST")}[key]
    prefix = "train" if train else "t10k"
    try:
        ds = cls(str(root), train=train, download=download)
    except Exception as err:  # torchvision says RuntimeError offline, or a URLError on download
        files = [f"{folder}/raw/{prefix}-images-idx3-ubyte", f"{folder}/raw/{prefix}-labels-idx1-ubyte"]
        if all((root / f).exists() for f in files):
            raise ValueError(
                f"{key}: the files in {root / folder / 'raw'} are there but unreadable (truncated or "
                f"corrupt? {type(err).__name__}: {err}); replace them"
            ) from None
        raise _missing(key, root, files, f"With internet, pass download=True (CLI: --download) to fetch them. ({err})") from None
    images = ds.data.unsqueeze(1).float().div_(255)
    return images, ds.targets.long(), str(root / folder / "raw")


def _cifar10(root: Path, train: bool, download: bool):
    from torchvision import datasets

    batches = root / "cifar-10-batches-py"
    archive = root / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    if batches.exists() or (download and not archive.exists()):
        try:
            ds = datasets.CIFAR10(str(root), train=train, download=download)
        except Exception as err:
            raise _missing(
                "cifar10",
                root,
                [f"{batches.name}/{f}" for f in ("data_batch_1 … data_batch_5", "test_batch", "batches.meta")],
                f"With internet, pass download=True. ({err})",
            ) from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255)
        return images, torch.tensor(ds.targets), str(batches)
    if archive.exists():
        images, labels = _cifar10_jpeg(archive, "train" if train else "test")
        return images.float().div_(255), labels, f"{archive} (JPEG quality 75 re-encoding)"
    raise _missing(
        "cifar10",
        root,
        ["cifar-10-batches-py/ (torchvision's CIFAR-10)", "CIFAR10-jpeg/cifar10-jpg.tar.gz (the JPEG copy)"],
        "With internet, pass download=True to fetch the original.",
        one_of=True,
    )


def _interleave_classes(labels: np.ndarray) -> np.ndarray:
    """An order that cycles through the classes (a0 b0 c0 … a1 b1 …): every prefix is class-balanced.

    The JPEG copy stores each class in its own folder, so its natural order is sorted by class
    (the first 1,000 test images would all be airplanes); within a class the file order is kept.
    """
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels, rank))


def _cifar10_jpeg(archive: Path, split: str):
    """Decode cifar10-jpg/{split}/<class>/*.jpg once (cached as uint8 (N, 3, 32, 32)); classes interleaved."""
    images, labels = _cifar10_jpeg_decoded(archive, split)
    order = _interleave_classes(labels)
    return torch.from_numpy(images[order]), torch.from_numpy(labels[order]).long()


def _cifar10_jpeg_decoded(archive: Path, split: str):
    cache = _cache_dir() / f"cifar10-jpg-{split}.npz"
    if cache.exists():
        try:
            with np.load(cache) as f:
                images, labels = f["images"], f["labels"]
            if images.shape[1:] == (3, 32, 32) and len(images) == len(labels) > 0:
                return images, labels
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass
        cache.unlink(missing_ok=True)  # truncated or foreign (a killed write, a full disk): decode it again
    from PIL import Image

    found = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 3 and parts[-3] == split and parts[-1].endswith(".jpg"):
                    data = tar.extractfile(member).read()
                    found.append((parts[-2], member.name, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))))
    except (EOFError, OSError, tarfile.TarError) as err:
        raise ValueError(f"{archive} is truncated or corrupt ({type(err).__name__}: {err}); fetch it again") from None
    classes = sorted({c for c, _, _ in found})  # alphabetical = torchvision's CIFAR10.classes
    found.sort(key=lambda item: (classes.index(item[0]), item[1]))
    images = np.stack([img for _, _, img in found]).transpose(0, 3, 1, 2).copy()
    labels = np.array([classes.index(c) for c, _, _ in found], dtype=np.int64)
    with _files.atomic(cache) as tmp:
        np.savez(tmp, images=images, labels=labels)
    return images, labels


def _svhn(root: Path, train: bool, download: bool):
    split = "train" if train else "test"
    filename = f"{split}_32x32.mat"
    folder = next((root / d for d in ("SVHN", "svhn") if (root / d / filename).exists()), root / "SVHN")
    if not (folder / filename).exists() and download:
        from torchvision import datasets

        try:
            datasets.SVHN(str(folder), split=split, download=True)
        except Exception as err:
            raise _missing("svhn", root, [f"{folder.name}/{filename}"], f"Download failed: {err}") from None
    if not (folder / filename).exists():
        raise _missing(
            "svhn",
            root,
            [f"{folder.name}/{filename}"],
            "With internet, pass download=True (torchvision fetches the cropped-digit .mat files).",
        )
    from scipy.io import loadmat

    mat = loadmat(folder / filename)  # the layout torchvision reads: X (32, 32, 3, N), y (N, 1)
    if "X" not in mat or "y" not in mat or mat["X"].ndim != 4:
        raise ValueError(f"{folder / filename} is not an SVHN cropped-digits file (needs X (32,32,3,N) and y (N,1))")
    images = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1))).float().div_(255)
    labels = torch.from_numpy(mat["y"].astype(np.int64).ravel() % 10)  # SVHN labels the digit 0 as 10
    return images, labels, str(folder / filename)


_SAMPLE_FILES = {  # shipped with the package: 100 test images per class, interleaved by class (see assets/README.md)
    "mnist-sample": ("mnist_sample.npz", "MNIST test digits"),
    "fashion-mnist-sample": ("fashion_mnist_sample.npz", "Fashion-MNIST test images"),
    "cifar10-sample": ("cifar10_sample.npz", "CIFAR-10 test images from the JPEG copy (quality 75)"),
}
SAMPLE_TEST = 200  # a sample's first 200 images (20 per class) are its test split, the other 800 its training split


def _sample(key: str, train: bool):
    filename, what = _SAMPLE_FILES[key]
    try:
        with np.load(_ASSETS / filename) as f:
            labels = f["labels"]
            if "jpeg" in f:
                from PIL import Image

                jpeg, offsets = f["jpeg"], f["offsets"]
                images = np.stack(
                    [
                        np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))
                        for a, b in zip(offsets[:-1], offsets[1:])
                    ]
                ).transpose(0, 3, 1, 2)
            else:
                images = f["images"][:, None]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetNotFoundError(
            f"the sample shipped with drawviz, {_ASSETS / filename}, is unreadable ({type(err).__name__}: {err}); "
            f"the installation is damaged: reinstall drawviz (or restore the file from the repository)"
        ) from None
    if len(images) != len(labels) or len(labels) <= SAMPLE_TEST:
        raise DatasetNotFoundError(
            f"the sample shipped with drawviz, {_ASSETS / filename}, holds {len(labels)} "
            f"labels and {len(images)} images; reinstall drawviz"
        )
    part = slice(SAMPLE_TEST, None) if train else slice(None, SAMPLE_TEST)
    first, last = (SAMPLE_TEST + 1, len(labels)) if train else (1, SAMPLE_TEST)
    source = (
        f"drawviz/assets/{filename} ({len(labels):,} {what}, 100 per class), "
        f"images {first}-{last} ({(last - first + 1) // 10} per class)"
    )
    return (torch.from_numpy(np.ascontiguousarray(images[part])).float().div_(255), torch.from_numpy(labels[part]).long(), source)


def load(name: str, split: str = "train", root=None, *, limit: Optional[int] = None, download: bool = False) -> ImageSet:
    """Load a whole split as an ImageSet of float images in [0, 1] (not binarised; see ``binarize``)."""
    key = _normalise(name)
    train = _split(split)
    limit = limit if limit is None else positive_int(limit, "limit", "a number of images, or None for all")
    images, labels, source, *extras = REGISTRY[key].loader(data_root(root), train, download)
    return ImageSet(key, split, images, labels, source, **(extras[0] if extras else {})).subset(limit)


def portable(source: str, root=None) -> str:
    """A source description without this machine's data folder: ``<data root>/MNIST/raw`` (for cards and pages)."""
    folder = str(data_root(root))
    return source.replace(folder.rstrip("/") + "/", "<data root>/") if source else source


def declared(name: str) -> Dataset:
    """A dataset's declaration, by any of its names (a clear error for one drawviz does not know)."""
    return REGISTRY[_normalise(name)]


def class_names(name: str, classes: int = 10) -> tuple:
    """The names of a dataset's ``classes`` classes in label order: its declared ones (Fashion-MNIST's garments),
    else each class's number ("7": a digit is its own name)."""
    return declared(name).classes or tuple(str(k) for k in range(classes))


def binarised_as_trained(settings: dict, likelihood: Optional[str]) -> bool:
    """Whether a checkpoint's test images are binarised, as its training images were (its settings, drawviz.checkpoints
    .settings_of; else its dataset's default for its likelihood)."""
    dataset = settings.get("dataset") or "mnist"
    return settings.get("binarize", default_binarize(dataset, likelihood)) is not None


def full_name(name: str) -> str:
    """The full dataset a name stands for: a shipped sample's parent (``cifar10-sample`` -> ``cifar10``)."""
    key = _normalise(name)
    return REGISTRY[key].sample_of or key


def default_binarize(name: str, likelihood: Optional[str] = "bernoulli") -> Optional[str]:
    """Greyscale sets are binarised afresh each batch for a likelihood of 0/1 pixels (the paper's MNIST
    setting); colour, and grey values under a likelihood of intensities (the discretised logistic), are not."""
    if likelihood is None:  # a model of no images (the classifier) reads the intensities as they are
        return None
    return "dynamic" if REGISTRY[_normalise(name)].grey and _likelihood.get(likelihood).binary else None


def default_preset(name: str) -> str:
    """The Table 3 preset that fits a dataset: MNIST's for the greyscale sets."""
    return REGISTRY[_normalise(name)].preset


def binarize(images: torch.Tensor, seed: Optional[int] = 0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Stochastic binarisation: each pixel ~ Bernoulli(intensity).

    With a seed, the result is fixed (a static benchmark set; the paper's fixed binarisation
    of MNIST is not available offline, so drawviz NLL figures use seed 0).
    """
    if generator is None:
        generator = torch.Generator(images.device).manual_seed(seed if seed is not None else 0)
    return torch.bernoulli(images, generator=generator)


def batches(images: torch.Tensor, batch_size: int, *, seed: int, epoch: int, drop_last: bool = True):
    """Index batches of a permutation fixed by (seed, epoch), so a run can resume mid-epoch exactly."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(images.shape[0], generator=g)
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


# ----------------------------------------------------------------------------- the datasets drawviz knows

register(
    Dataset(
        "mnist",
        lambda root, train, download: _mnist_like("mnist", root, train, download),
        grey=True,
        preset="mnist",
        help="MNIST/raw idx files",
        judge="judge.pt",
    )
)
register(
    Dataset(
        "fashion-mnist",
        lambda root, train, download: _mnist_like("fashion-mnist", root, train, download),
        grey=True,
        preset="mnist",
        aliases=("fashionmnist",),
        help="FashionMNIST/raw idx files",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        judge="fashion-judge.pt",
    )
)
register(
    Dataset(
        "cifar10",
        _cifar10,
        grey=False,
        preset="cifar10",
        aliases=("cifar-10", "cifar"),
        help="cifar-10-batches-py, or the JPEG copy CIFAR10-jpeg/cifar10-jpg.tar.gz",
    )
)
register(Dataset("svhn", _svhn, grey=False, preset="svhn", help="SVHN/{train,test}_32x32.mat"))
for _name, _of, _grey in (
    ("mnist-sample", "mnist", True),
    ("fashion-mnist-sample", "fashion-mnist", True),
    ("cifar10-sample", "cifar10", False),
):
    register(
        Dataset(
            _name,
            lambda root, train, download, _key=_name: _sample(_key, train),
            grey=_grey,
            preset=REGISTRY[_of].preset,
            sample_of=_of,
            classes=REGISTRY[_of].classes,
            judge=REGISTRY[_of].judge,
            help="shipped with drawviz (offline)",
        )
    )


def _mnist_digits(key: str, root: Path, train: bool, download: bool, sample: bool):
    """The MNIST split a derived set ``key`` is built from: (digits, labels, where they came from), from the data
    root or, for its offline sample, from the MNIST sample shipped with drawviz."""
    if sample:
        digits, labels, where = _sample("mnist-sample", train)
        return digits, labels, f"{where} of the MNIST sample shipped with drawviz"
    try:
        return _mnist_like("mnist", root, train, download)
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(f"{key} is built from MNIST, and {err}") from None


def _scene(key: str, root: Path, train: bool, download: bool, *, sample: bool = False):
    """A scene set (drawviz.scenes) built from the MNIST split it names, or from the shipped MNIST sample."""
    from . import scenes

    scene = scenes.SCENES[key]
    split = "train" if train else "test"
    digits, labels, where = _mnist_digits(key, root, train, download, sample)
    pieces = scenes.Pieces(scene, _as_bytes(digits), labels.numpy())
    if sample:
        images, objects = scenes.build(scene, pieces.digits, pieces.labels, len(digits), scene.seed + (not train))
    else:
        images, objects = scenes.cached(scene, split, pieces.digits, pieces.labels, _cache_dir(), "mnist")
    first = objects[objects["kind"] == "digit"].groupby("image")["label"].first()
    source = f"{key} built from {where} (drawviz.scenes, seed {scene.seed + (not train)})"
    fields = {"objects": objects, "pieces": pieces}
    return torch.from_numpy(images[:, None]).float().div_(255), torch.from_numpy(first.to_numpy().copy()), source, fields


def _as_bytes(images: torch.Tensor) -> np.ndarray:
    """(N, 1, 28, 28) floats of 8-bit origin back to their uint8 values (N, 28, 28)."""
    return images[:, 0].mul(255).round().to(torch.uint8).numpy()


for _name, _kind, _help in (
    ("cluttered-mnist", "classifier", "100x100 cluttered MNIST, built from MNIST/raw (paper section 4.1)"),
    ("two-digit-mnist", "draw", "two MNIST digits on a 60x60 canvas, built from MNIST/raw (paper section 4.3)"),
):
    register(
        Dataset(
            _name,
            lambda root, train, download, _key=_name: _scene(_key, root, train, download),
            grey=True,
            preset=_name,
            kind=_kind,
            help=_help,
        )
    )
    register(
        Dataset(
            f"{_name}-sample",
            lambda root, train, download, _key=_name: _scene(_key, root, train, download, sample=True),
            grey=True,
            preset=_name,
            kind=_kind,
            sample_of=_name,
            help="built from the MNIST sample shipped with drawviz (offline)",
        )
    )


def _captioned(root: Path, train: bool, download: bool, *, sample: bool = False):
    """MNIST with captions (drawviz.captions) built from the MNIST split it names, or from the shipped sample."""
    from . import captions

    split = "train" if train else "test"
    digits, labels, where = _mnist_digits("captioned-mnist", root, train, download, sample)
    as_bytes, classes = _as_bytes(digits), labels.numpy()
    seed = captions.CAPTIONED.seed + (not train)
    if sample:
        images, objects, extras = captions.build(as_bytes, classes, len(digits), seed, train=train)
    else:
        images, objects, extras = captions.cached(split, as_bytes, classes, _cache_dir(), "mnist")
    first = objects.groupby("image")["label"].first()  # the caption's first digit
    source = f"captioned-mnist built from {where} (drawviz.captions, seed {seed})"
    fields = {
        "objects": objects,
        "captions": torch.from_numpy(np.asarray(extras["captions"], dtype=np.int64)),
        "held_out": torch.from_numpy(np.asarray(extras["held_out"], dtype=bool)),
    }
    return torch.from_numpy(images[:, None]).float().div_(255), torch.from_numpy(first.to_numpy().copy()), source, fields


register(
    Dataset(
        "captioned-mnist",
        lambda root, train, download: _captioned(root, train, download),
        grey=True,
        preset="captioned-mnist",
        kind="conditional",
        help="one or two MNIST digits on a 60x60 canvas placed where a caption says, built from MNIST/raw (alignDRAW)",
        judge="judge.pt",  # each digit, framed where the caption puts it, read by the MNIST judge
    )
)
register(
    Dataset(
        "captioned-mnist-sample",
        lambda root, train, download: _captioned(root, train, download, sample=True),
        grey=True,
        preset="captioned-mnist",
        kind="conditional",
        sample_of="captioned-mnist",
        help="built from the MNIST sample shipped with drawviz (offline)",
        judge="judge.pt",
    )
)

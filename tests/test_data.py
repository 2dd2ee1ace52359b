"""Datasets: real MNIST from ../shared/data, binarisation, SVHN/CIFAR-10 formats, clear errors: a damaged
file is called corrupt, not missing, and a damaged cache is decoded again."""

import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drawviz import data

ROOT = Path(__file__).resolve().parent.parent


def test_mnist_is_read_as_float_images_in_0_1(mnist_test, data_root):
    assert len(mnist_test) == 10_000 and mnist_test.shape == (1, 28, 28)
    assert mnist_test.images.dtype == torch.float32
    assert mnist_test.images.min() == 0 and mnist_test.images.max() == 1
    assert torch.bincount(mnist_test.labels).tolist()[:2] == [980, 1135]  # the official class counts
    train = data.load("mnist", "train", data_root, limit=100)
    assert len(train) == 100


def test_the_root_comes_from_DRAWVIZ_DATA(monkeypatch, data_root):
    monkeypatch.setenv("DRAWVIZ_DATA", str(data_root))
    assert len(data.load("mnist", "test")) == 10_000


def test_mnist_is_binarised_statically_with_a_fixed_seed_and_dynamically_otherwise(mnist_test):
    x = mnist_test.images[:200]
    a, b = data.binarize(x, seed=0), data.binarize(x, seed=0)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, data.binarize(x, seed=1))
    # Bernoulli(intensity): the mean is kept
    assert abs(a.mean().item() - x.mean().item()) < 0.01


@pytest.mark.parametrize(
    "name, shape", [("mnist-sample", (1, 28, 28)), ("fashion-mnist-sample", (1, 28, 28)), ("cifar10-sample", (3, 32, 32))]
)
def test_a_shipped_sample_is_class_balanced_and_split_without_overlap(name, shape):
    train, test = data.load(name, "train"), data.load(name, "test")
    assert (len(train), len(test)) == (800, 200) and train.shape == test.shape == shape
    assert torch.bincount(train.labels).tolist() == [80] * 10
    assert torch.bincount(test.labels).tolist() == [20] * 10
    assert 0 <= train.images.min() and train.images.max() <= 1
    # no test image is also a training image (the test bound is on unseen images)
    flat = lambda s: {bytes((s.images * 255).round().to(torch.uint8).flatten(1)[i].numpy()) for i in range(len(s))}
    assert not flat(train) & flat(test)
    assert "20 per class" in test.source and "80 per class" in train.source
    # any prefix is balanced: the first 10 images are one of each class
    assert sorted(test.labels[:10].tolist()) == list(range(10))


def test_the_samples_are_the_real_test_images(dataset_root):
    cifar = data.load("cifar10", "test", dataset_root("cifar10-jpeg"))
    assert torch.equal(data.load("cifar10-sample", "test").images, cifar.images[:200])
    fashion = data.load("fashion-mnist", "test", dataset_root("fashion-mnist"))
    sample = data.load("fashion-mnist-sample", "test")
    first_of_class = [int(torch.nonzero(fashion.labels == c)[0]) for c in range(10)]
    assert torch.equal(sample.images[:10], fashion.images[first_of_class])


def test_the_cifar10_jpeg_copy_comes_interleaved_by_class_not_sorted(dataset_root):
    test = data.load("cifar10", "test", dataset_root("cifar10-jpeg"))
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert test.labels[:20].tolist() == list(range(10)) * 2  # the first n images hold n/10 of each class
    assert torch.bincount(test.labels[:2000]).tolist() == [200] * 10
    order = data._interleave_classes(np.array([0, 0, 0, 1, 1, 2]))
    assert order.tolist() == [0, 3, 5, 1, 4, 2]  # within a class the stored order is kept


def test_a_missing_dataset_names_the_folder_the_files_and_how_to_get_them(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("mnist", "test", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "t10k-images-idx3-ubyte" in message
    assert "DRAWVIZ_DATA" in message and "download=True" in message
    with pytest.raises(data.DatasetNotFoundError, match="test_32x32.mat"):
        data.load("svhn", "test", tmp_path)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("cifar10", "test", tmp_path)
    lines = str(err.value).splitlines()  # either layout will do, each a full path under the root
    assert "one of these" in lines[0]
    assert lines[1:3] == [
        f"  {tmp_path / 'cifar-10-batches-py'}/ (torchvision's CIFAR-10)",
        f"  {tmp_path / 'CIFAR10-jpeg' / 'cifar10-jpg.tar.gz'} (the JPEG copy)",
    ]
    assert f"the data root is now {tmp_path}" in str(err.value)


def test_unknown_names_and_splits_are_refused():
    with pytest.raises(ValueError, match="choose one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load("mnist", "valid")


def test_negative_limits_are_refused_not_read_as_all_but_the_last():
    """Issue 14; on the command line too."""
    from drawviz.__main__ import main

    for bad in (-5, 0):
        with pytest.raises(ValueError, match="limit"):
            data.load("mnist-sample", "test", limit=bad)
        with pytest.raises(ValueError, match="positive"):
            data.load("mnist-sample", "test").balanced(bad)
    assert main(["train", "--dataset", "mnist-sample", "--limit", "-10", "--steps", "1", "--no-progress"]) == 2


# issue 21
@pytest.mark.parametrize("damage", ["truncate", "empty", "no-labels"])
def test_a_damaged_bundled_sample_says_to_reinstall(tmp_path, monkeypatch, damage):
    assets = tmp_path / "assets"
    shutil.copytree(ROOT / "drawviz" / "assets", assets)
    sample = assets / data.SAMPLES["mnist-sample"][0]
    if damage == "truncate":
        sample.write_bytes(sample.read_bytes()[:5000])
    elif damage == "empty":
        sample.write_bytes(b"")
    else:
        with np.load(ROOT / "drawviz" / "assets" / sample.name) as f:
            np.savez(sample, images=f["images"])
    monkeypatch.setattr(data, "_ASSETS", assets)
    with pytest.raises(data.DatasetNotFoundError, match="reinstall drawviz"):
        data.load("mnist-sample", "test")


# issue 14
def test_a_truncated_dataset_file_is_called_corrupt_not_missing(tmp_path, data_root):
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
    os.environ["DRAWVIZ_CACHE"] = str(tmp_path / "cache")
    try:
        with pytest.raises(ValueError, match="truncated or corrupt"):
            data.load("cifar10", "test", tmp_path)
    finally:
        del os.environ["DRAWVIZ_CACHE"]


def test_svhn_reads_the_torchvision_mat_layout(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(32, 32, 3, 7), dtype=np.uint8)
    y = np.array([[10], [1], [2], [3], [4], [5], [9]], dtype=np.uint8)  # SVHN writes the digit 0 as 10
    (tmp_path / "SVHN").mkdir()
    savemat(tmp_path / "SVHN" / "test_32x32.mat", {"X": X, "y": y})
    svhn = data.load("svhn", "test", tmp_path)
    assert svhn.images.shape == (7, 3, 32, 32)
    assert svhn.labels.tolist() == [0, 1, 2, 3, 4, 5, 9]
    # pixel (row 5, column 9) of image 2, green channel
    assert svhn.images[2, 1, 5, 9].item() == pytest.approx(X[5, 9, 1, 2] / 255)


def test_cifar10_falls_back_to_the_jpeg_archive_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWVIZ_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    archive.parent.mkdir()
    colours = {"airplane": (250, 0, 0), "cat": (0, 250, 0), "truck": (0, 0, 250)}
    with tarfile.open(archive, "w:gz") as tar:
        for name, rgb in colours.items():
            for k in range(2):
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), rgb).save(buf, "JPEG", quality=95)
                info = tarfile.TarInfo(f"cifar10-jpg/test/{name}/{k:04d}.jpg")
                info.size = len(buf.getvalue())
                tar.addfile(info, io.BytesIO(buf.getvalue()))
    cifar = data.load("cifar10", "test", tmp_path)
    assert cifar.images.shape == (6, 3, 32, 32)
    assert cifar.labels.tolist() == [0, 1, 2, 0, 1, 2]  # alphabetical class order, classes interleaved
    assert cifar.images[1, 1].mean() > 0.9 and cifar.images[1, 0].mean() < 0.1  # the cat is green
    assert "JPEG" in cifar.source
    assert (tmp_path / "cache" / "cifar10-jpg-test.npz").exists()
    assert torch.equal(data.load("cifar10", "test", tmp_path).images, cifar.images)  # from the cache


# issue 21
def test_a_truncated_cifar10_cache_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWVIZ_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "CIFAR10-jpeg" / "cifar10-jpg.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("airplane", "cat"):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, "JPEG", quality=95)
            info = tarfile.TarInfo(f"cifar10-jpg/test/{name}/0000.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    first = data.load("cifar10", "test", tmp_path).images
    cache = tmp_path / "cache" / "cifar10-jpg-test.npz"
    cache.write_bytes(cache.read_bytes()[:100])  # a write killed half-way
    assert torch.equal(data.load("cifar10", "test", tmp_path).images, first)
    assert np.load(cache)["images"].shape == (2, 3, 32, 32)  # and the cache is whole again


def test_batches_are_a_permutation_fixed_by_seed_and_epoch():
    x = torch.zeros(10, 1, 2, 2)
    first = data.batches(x, 3, seed=0, epoch=0)
    assert [len(b) for b in first] == [3, 3, 3]
    assert [b.tolist() for b in first] == [b.tolist() for b in data.batches(x, 3, seed=0, epoch=0)]
    assert [b.tolist() for b in first] != [b.tolist() for b in data.batches(x, 3, seed=0, epoch=1)]


def test_a_figure_s_subset_is_class_balanced_seeded_and_says_so():
    sorted_by_class = data.ImageSet(
        "toy", "test", torch.arange(100.0).view(100, 1, 1, 1), torch.arange(10).repeat_interleave(10), "toy source"
    )
    sub = sorted_by_class.balanced(20, seed=0)
    assert torch.bincount(sub.labels).tolist() == [2] * 10  # not 20 images of class 0
    assert sorted(sub.labels[:10].tolist()) == list(range(10))
    assert torch.equal(sub.images, sorted_by_class.balanced(20, seed=0).images)
    assert not torch.equal(sub.images, sorted_by_class.balanced(20, seed=1).images)
    assert "class-balanced" in sub.source and "seed 0" in sub.source
    assert sorted_by_class.balanced(None) is sorted_by_class


def test_the_images_where_a_mask_holds_keep_their_objects_and_say_which():
    scenes = data.load("two-digit-mnist-sample", "test")
    mask = torch.zeros(len(scenes), dtype=torch.bool)
    mask[[3, 7]] = True
    part = scenes.where(mask, "two of them")
    assert torch.equal(part.images, scenes.images[[3, 7]]) and part.source.endswith("; two of them")
    assert part.objects["image"].tolist() == [0, 0, 1, 1]  # re-indexed: each keeps its own two digits
    assert (
        part.objects[["x", "y"]].values.tolist()
        == scenes.objects[scenes.objects["image"].isin([3, 7])][["x", "y"]].values.tolist()
    )
    with pytest.raises(ValueError, match="boolean mask of 200"):
        scenes.where(torch.tensor([3, 7]), "indices are not a mask")


def test_fashion_mnist_names_its_garments_and_a_digit_is_its_own_name():
    assert data.class_names("fashion-mnist") == data.class_names("fashion-mnist-sample")  # a sample has its set's names
    assert data.class_names("fashion-mnist")[9] == "Ankle boot" and len(data.class_names("fashion-mnist")) == 10
    assert data.class_names("mnist") == tuple("0123456789")
    assert data.declared("FashionMNIST").name == "fashion-mnist"  # any of its spellings

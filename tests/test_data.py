"""Datasets: real MNIST from ../shared/data, binarisation, SVHN/CIFAR-10 formats, clear errors."""
import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from drawviz import data


def test_mnist_is_read_as_float_images_in_0_1(mnist_test, data_root):
    assert len(mnist_test) == 10_000 and mnist_test.shape == (1, 28, 28)
    assert mnist_test.images.dtype == torch.float32
    assert mnist_test.images.min() == 0 and mnist_test.images.max() == 1
    assert torch.bincount(mnist_test.labels).tolist()[:2] == [980, 1135]  # the official class counts
    train = data.load("mnist", "train", data_root, limit=100)
    assert len(train) == 100


def test_the_root_comes_from_DRAWVIZ_DATA(monkeypatch, data_root):
    monkeypatch.setenv("DRAWVIZ_DATA", str(data_root))
    assert len(data.load("fashion-mnist", "test")) == 10_000


def test_mnist_is_binarised_statically_with_a_fixed_seed_and_dynamically_otherwise(mnist_test):
    x = mnist_test.images[:200]
    a, b = data.binarize(x, seed=0), data.binarize(x, seed=0)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, data.binarize(x, seed=1))
    # Bernoulli(intensity): the mean is kept
    assert abs(a.mean().item() - x.mean().item()) < 0.01


def test_the_shipped_sample_works_offline():
    sample = data.load("mnist-sample")
    assert len(sample) == 1000 and sample.shape == (1, 28, 28)
    assert 0 <= sample.images.min() and sample.images.max() <= 1


def test_a_missing_dataset_names_the_folder_the_files_and_how_to_get_them(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("mnist", "test", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "t10k-images-idx3-ubyte" in message
    assert "DRAWVIZ_DATA" in message and "download=True" in message
    with pytest.raises(data.DatasetNotFoundError, match="test_32x32.mat"):
        data.load("svhn", "test", tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match="cifar10-jpg.tar.gz"):
        data.load("cifar10", "test", tmp_path)


def test_unknown_names_and_splits_are_refused():
    with pytest.raises(ValueError, match="choose one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load("mnist", "valid")


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
    assert cifar.labels.tolist() == [0, 0, 1, 1, 2, 2]  # alphabetical class order
    assert cifar.images[2, 1].mean() > 0.9 and cifar.images[2, 0].mean() < 0.1  # the cat is green
    assert "JPEG" in cifar.source
    assert (tmp_path / "cache" / "cifar10-jpg-test.npz").exists()
    assert torch.equal(data.load("cifar10", "test", tmp_path).images, cifar.images)  # from the cache


def test_batches_are_a_permutation_fixed_by_seed_and_epoch():
    x = torch.zeros(10, 1, 2, 2)
    first = data.batches(x, 3, seed=0, epoch=0)
    assert [len(b) for b in first] == [3, 3, 3]
    assert [b.tolist() for b in first] == [b.tolist() for b in data.batches(x, 3, seed=0, epoch=0)]
    assert [b.tolist() for b in first] != [b.tolist() for b in data.batches(x, 3, seed=0, epoch=1)]

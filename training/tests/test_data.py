import shutil

import pytest
from torchvision.datasets import MNIST

from training.nn.data import MNIST_FILES, MnistUnavailable, mnist_load


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there


@pytest.fixture
def test_set_copy(mnist_dir, tmp_path):
    """A data folder holding MNIST's four original files (.gz), as `make data` leaves it."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(mnist_dir / "MNIST" / "raw" / name, raw / name)
    return tmp_path


def test_a_corrupt_download_names_the_file_and_what_to_delete(test_set_copy, offline):
    gz = test_set_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:5000])  # an interrupted copy
    with pytest.raises(MnistUnavailable) as caught:
        mnist_load(data_dir=test_set_copy, train=False)
    message = str(caught.value)
    assert f"{gz} is not the original file" in message and "Delete it and run again" in message
    assert "labels" not in message  # the good file is not blamed


def test_a_damaged_unpacked_file_names_the_file_and_what_to_delete(test_set_copy, offline):
    assert len(mnist_load(data_dir=test_set_copy, train=False)) == 10_000  # unpacks the .gz files
    unpacked = test_set_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    unpacked.write_bytes(unpacked.read_bytes()[:-10])
    with pytest.raises(MnistUnavailable) as caught:
        mnist_load(data_dir=test_set_copy, train=False)
    message = str(caught.value)
    assert f"{unpacked} is damaged (9,998 bytes, 10,008 expected)" in message and "Delete it" in message
    unpacked.unlink()  # as the message says
    assert len(mnist_load(data_dir=test_set_copy, train=False)) == 10_000

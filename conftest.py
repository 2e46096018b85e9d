"""Fixtures for every app's tests."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from recognizer.registry import active_model_forget

SHARED_MNIST = Path(settings.BASE_DIR).parent / "shared" / "mnist" / "MNIST"


@pytest.fixture(autouse=True)
def isolated_models(settings, tmp_path):
    """Each test publishes into its own model folder; the shipped model serves until it does."""
    settings.MODEL_DIR = tmp_path / "models"
    active_model_forget()
    cache.clear()  # throttle counters
    yield settings.MODEL_DIR
    active_model_forget()


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data folder holding MNIST: the project's own, else a copy of ../shared, else downloaded."""
    own = Path(settings.MNIST_DIR)
    if (own / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists():
        return own
    folder = tmp_path_factory.mktemp("data")
    if SHARED_MNIST.exists():
        shutil.copytree(SHARED_MNIST, folder / "MNIST")
    return folder  # training.data downloads MNIST here when it is missing

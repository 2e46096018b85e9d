"""Fixtures for the recognizer's tests."""

import pytest

from recognizer.servingform import ServingNet


@pytest.fixture
def serving_nets_built(monkeypatch) -> list[ServingNet]:
    """Every serving net (ONNX Runtime sessions, checked on the probe drawings) made during the
    test, in order: the real ServingNet, watched."""
    built: list[ServingNet] = []
    make = ServingNet.__init__

    def watched(self, form, **kwargs):
        make(self, form, **kwargs)
        built.append(self)

    monkeypatch.setattr(ServingNet, "__init__", watched)
    return built

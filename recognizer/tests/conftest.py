"""Fixtures for the recognizer's tests."""

import pytest

from recognizer.onnx_net import OnnxNet


@pytest.fixture
def serving_nets_built(monkeypatch) -> list[OnnxNet]:
    """Every serving net (ONNX export and quantization) built during the test, in order: the
    real OnnxNet, watched."""
    built: list[OnnxNet] = []
    build = OnnxNet.__init__

    def watched(self, net):
        build(self, net)
        built.append(self)

    monkeypatch.setattr(OnnxNet, "__init__", watched)
    return built

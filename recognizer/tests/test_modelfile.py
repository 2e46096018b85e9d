"""A model file: weights and metadata in one safetensors file, checked when loaded; the serving
net built from it on first use."""

import threading

import numpy as np
import pytest
import torch

from recognizer import onnx_net
from recognizer.modelfile import ModelUnavailable, model_from_bytes, model_load, model_save, model_to_bytes
from recognizer.tests.versions import tiny_net


def test_loaded_weights_and_metadata_round_trip(tmp_path):
    net = tiny_net(3)
    model_save(net=net, metadata={"version": "x", "mnist_test_accuracy": 0.99}, path=tmp_path / "m.safetensors")
    loaded = model_load(path=tmp_path / "m.safetensors")
    assert loaded.describe()["mnist_test_accuracy"] == 0.99
    assert loaded.net.width == 8
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, loaded.net.state_dict()[name])


def test_a_version_made_of_digits_stays_a_string():
    loaded = model_from_bytes(model_to_bytes(net=tiny_net(0), metadata={"version": "1"}), source="test")
    assert loaded.version == "1" and loaded.describe()["version"] == "1"


def test_a_missing_model_file_gives_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="nowhere.safetensors cannot be read"):
        model_load(path=tmp_path / "nowhere.safetensors")


def test_a_corrupt_model_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"this is not safetensors")
    with pytest.raises(ModelUnavailable, match="broken.safetensors is not a usable DigitNet"):
        model_load(path=path)


def test_a_file_with_weights_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    model_save(net=tiny_net(0), metadata={"version": "x"}, path=path)
    data = path.read_bytes().replace(b'"width":"8"', b'"width":"9"')
    path.write_bytes(data)
    with pytest.raises(ModelUnavailable, match="not a usable DigitNet"):
        model_load(path=path)


def test_a_file_without_a_version_is_refused():
    with pytest.raises(ModelUnavailable, match="has no version"):
        model_from_bytes(model_to_bytes(net=tiny_net(0), metadata={}), source="test")


@pytest.mark.parametrize("temperature", ["0", "-1", "inf", "nan", "warm"])
def test_a_file_with_an_unusable_temperature_is_refused(temperature):
    data = model_to_bytes(net=tiny_net(0), metadata={"version": "x", "temperature": temperature})
    with pytest.raises(ModelUnavailable, match="unusable temperature"):
        model_from_bytes(data, source="test")


def test_weights_that_are_not_finite_are_refused():
    net = tiny_net(0)
    with torch.no_grad():
        net.head[-1].bias[3] = float("nan")
    with pytest.raises(ModelUnavailable, match="not finite numbers .* in head"):
        model_from_bytes(model_to_bytes(net=net, metadata={"version": "x"}), source="test")


def test_weights_are_never_unpickled(tmp_path, monkeypatch):
    model_save(net=tiny_net(0), metadata={"version": "x"}, path=tmp_path / "m.safetensors")

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load unpickles; model files are read with safetensors")

    monkeypatch.setattr(torch, "load", no_pickles)
    assert model_load(path=tmp_path / "m.safetensors").version == "x"


def test_a_saved_file_is_readable_by_every_process_and_leaves_no_temporary_file(tmp_path):
    model_save(net=tiny_net(0), metadata={"version": "x"}, path=tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644
    assert [path.name for path in tmp_path.iterdir()] == ["m.safetensors"]


# -- the serving net ------------------------------------------------------------------------


def test_loading_a_model_for_the_admin_builds_no_serving_net(settings, serving_nets_built):
    loaded = model_load(path=settings.SHIPPED_MODEL)
    loaded.describe(), loaded.version, loaded.temperature
    assert serving_nets_built == [] and loaded.serving_problem is None


def test_the_serving_net_is_built_once_however_many_threads_ask_for_it(settings, serving_nets_built):
    loaded = model_load(path=settings.SHIPPED_MODEL)
    nets, start = [], threading.Barrier(4)

    def ask():
        start.wait()
        nets.append(loaded.serving_net())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(serving_nets_built) == 1
    assert len(nets) == 4 and all(net is serving_nets_built[0] for net in nets)


def test_a_serving_net_that_cannot_be_built_gives_a_clear_error_every_time_and_is_tried_once(settings, monkeypatch):
    loaded = model_load(path=settings.SHIPPED_MODEL)
    tries = []

    def broken_exporter(*args, **kwargs):
        tries.append(1)
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(torch.onnx, "export", broken_exporter)
    for _ in range(2):
        with pytest.raises(ModelUnavailable, match="could not be prepared for serving: the exporter broke"):
            loaded.serving_net()
    assert len(tries) == 1
    assert "the exporter broke" in loaded.serving_problem


def _drawings_as_inputs() -> torch.Tensor:
    """The test digits drawn as strokes at three sizes, normalised inputs."""
    from recognizer.preprocessing import normalize, strokes_to_input
    from recognizer.tests.drawings import STROKES, strokes

    images = [strokes_to_input(strokes(d, height=h)).image for d in STROKES for h in (0.15, 0.4, 0.8)]
    return normalize(torch.from_numpy(np.stack(images)))


def test_the_serving_net_reads_drawings_as_the_trained_net_does_in_8_bits(settings):
    loaded = model_load(path=settings.SHIPPED_MODEL)
    images = _drawings_as_inputs()
    with torch.inference_mode():
        expected = torch.softmax(loaded.net(images) / loaded.temperature, dim=1)
    serving = loaded.serving_net()
    served = torch.softmax(torch.from_numpy(serving(images)) / loaded.temperature, dim=1)
    assert serving.precision == "int8"
    assert (served.argmax(1) == expected.argmax(1)).all()
    assert (served - expected).abs().max() < 0.05  # confidence shown to the user moves little
    assert not loaded.net.training  # and the trained net is left as it was


def test_a_net_whose_8_bit_weights_read_differently_is_served_with_7_bit_weights(settings, monkeypatch):
    quantize = onnx_net._quantize
    other = model_load(path=settings.SHIPPED_MODEL).net
    with torch.no_grad():  # the same net with its answers moved one digit on
        other.head[-1].weight.copy_(other.head[-1].weight.roll(1, dims=0))
        other.head[-1].bias.copy_(other.head[-1].bias.roll(1))
    stranger = onnx_net._export(other)

    def saturating(model, calibration, *, reduce_range=False):
        # As on a processor whose 8-bit products overflow: the 8-bit copy answers like another net.
        return quantize(model if reduce_range else stranger, calibration, reduce_range=reduce_range)

    monkeypatch.setattr(onnx_net, "_quantize", saturating)
    loaded = model_load(path=settings.SHIPPED_MODEL)
    images = _drawings_as_inputs()
    with torch.inference_mode():
        expected = loaded.net(images).argmax(1)
    serving = loaded.serving_net()
    assert serving.precision == "int8" and serving.reduce_range
    assert (torch.from_numpy(serving(images)).argmax(1) == expected).all()


def test_a_net_whose_8_bit_copy_reads_differently_is_served_in_32_bit_floats(settings, monkeypatch):
    monkeypatch.setattr(onnx_net, "MIN_AGREEMENT", 1.01)  # no 8-bit copy can agree this well
    loaded = model_load(path=settings.SHIPPED_MODEL)
    images = torch.randn(8, 1, 28, 28)
    with torch.inference_mode():
        expected = loaded.net(images)
    serving = loaded.serving_net()
    assert serving.precision == "float32"
    assert torch.allclose(torch.from_numpy(serving(images)), expected, atol=1e-4)

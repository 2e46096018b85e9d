"""A model file: weights and metadata in one safetensors file, checked when loaded (what it is
served as: test_servingform.py)."""

import pytest
import torch

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

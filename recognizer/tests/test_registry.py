import os
import threading

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from digitsite import files
from recognizer import registry
from recognizer.models import ModelVersion
from recognizer.net import DigitNet
from recognizer.registry import (
    ModelUnavailable,
    active_model,
    active_model_problem,
    model_activate,
    model_load,
    model_publish,
    model_save,
    model_versions,
)
from recognizer.tests.drawings import drawn


def tiny_net(seed: int) -> DigitNet:
    torch.manual_seed(seed)
    return DigitNet(width=8).eval()


def publish(version: str, *, seed: int = 0, activate: bool = True):
    return model_publish(net=tiny_net(seed), metadata={"version": version, "trained_at": f"2099-01-0{seed + 1}"}, activate=activate)


def test_the_shipped_model_is_active_until_another_is_published(settings):
    assert active_model().version == model_load(path=settings.SHIPPED_MODEL).version
    publish("v1")
    assert active_model().version == "v1"


def test_a_published_model_serves_from_the_next_request_without_a_restart():
    api = APIClient()
    publish("v1", seed=0)
    first = api.post("/api/predict/", {"image": drawn(7)}, format="json").json()
    publish("v2", seed=1)
    second = api.post("/api/predict/", {"image": drawn(7)}, format="json").json()
    assert (first["model"], second["model"]) == ("v1", "v2")
    assert first["probabilities"] != second["probabilities"]  # really other weights


def test_model_is_loaded_once_and_reused_while_the_active_version_is_unchanged():
    publish("v1")
    assert active_model() is active_model()


def test_loaded_weights_and_metadata_round_trip(tmp_path):
    net = tiny_net(3)
    model_save(net=net, metadata={"version": "x", "mnist_test_accuracy": 0.99}, path=tmp_path / "m.safetensors")
    loaded = model_load(path=tmp_path / "m.safetensors")
    assert loaded.describe()["mnist_test_accuracy"] == 0.99
    assert loaded.net.width == 8
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, loaded.net.state_dict()[name])


def test_an_active_row_that_cannot_load_keeps_the_last_good_model_serving_and_health_says_why(isolated_models):
    publish("v1")
    assert active_model().version == "v1"
    # e.g. a bad manual restore of the database, behind the registry's back
    ModelVersion.objects.create(version="v2", data=b"\x00" * 100)
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)
    assert active_model().version == "v1"
    assert "not a usable DigitNet" in active_model_problem()
    health = APIClient().get("/api/health/").json()
    assert health["status"] == "degraded" and health["model"]["version"] == "v1"


def test_a_row_that_cannot_load_is_never_activated():
    publish("v1")
    ModelVersion.objects.create(version="v2", data=b"not safetensors")
    with pytest.raises(ModelUnavailable, match="not a usable DigitNet"):
        model_activate(version="v2")
    assert list(ModelVersion.objects.filter(active=True).values_list("version", flat=True)) == ["v1"]
    assert active_model().version == "v1" and active_model_problem() is None


def test_a_process_with_an_empty_model_folder_fetches_the_active_version_from_the_database(settings, tmp_path):
    publish("v1")
    registry.active_model_forget()  # another machine: a folder of its own, nothing loaded yet
    settings.MODEL_DIR = tmp_path / "another-machine"
    assert active_model().version == "v1"
    assert model_load(path=tmp_path / "another-machine" / "versions" / "v1.safetensors").version == "v1"  # its local copy


def test_a_damaged_local_copy_is_fetched_again_from_the_database(isolated_models):
    publish("v1")
    registry.active_model_forget()
    (isolated_models / "versions" / "v1.safetensors").write_bytes(b"\x00" * 10)
    assert active_model().version == "v1" and active_model_problem() is None
    assert model_load(path=isolated_models / "versions" / "v1.safetensors").version == "v1"


def test_exactly_one_version_is_active_in_the_database():
    publish("v1")
    publish("v2", seed=1)
    model_activate(version="v1")
    assert list(ModelVersion.objects.filter(active=True).values_list("version", flat=True)) == ["v1"]
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(version="v2").update(active=True)


def test_a_corrupt_model_file_with_nothing_to_fall_back_to_gives_a_clear_error(settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "broken.safetensors"
    settings.SHIPPED_MODEL.write_bytes(b"this is not safetensors")
    with pytest.raises(ModelUnavailable, match="broken.safetensors is not a usable DigitNet"):
        active_model()


def test_a_missing_model_file_gives_a_clear_error(settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "nowhere.safetensors"
    with pytest.raises(ModelUnavailable, match="nowhere.safetensors cannot be read"):
        active_model()


def test_a_file_with_weights_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    model_save(net=tiny_net(0), metadata={"version": "x"}, path=path)
    data = path.read_bytes().replace(b'"width":"8"', b'"width":"9"')
    path.write_bytes(data)
    with pytest.raises(ModelUnavailable, match="not a usable DigitNet"):
        model_load(path=path)


def test_a_failed_write_leaves_the_active_model_untouched(isolated_models, monkeypatch):
    publish("v1")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)  # under write_atomically
    with pytest.raises(OSError):
        publish("v2", seed=1)
    assert list(ModelVersion.objects.values_list("version", "active")) == [("v1", True)]
    assert not list(isolated_models.rglob("*.tmp"))  # no half-written leftovers
    assert active_model().version == "v1"


@pytest.mark.django_db(transaction=True)  # the reader thread has a connection of its own: it sees commits
def test_readers_never_see_a_half_written_model_while_models_are_published(isolated_models):
    publish("v0")
    seen, errors, done = set(), [], threading.Event()

    def read():
        while not done.is_set():
            try:
                seen.add(active_model().version)
            except Exception as error:  # a torn read would surface here
                errors.append(error)
        connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 15):
            publish(f"v{i}", seed=i % 7)
    finally:  # a failed publish must not leave the reader spinning: pytest would never exit
        done.set()
        reader.join()
    assert errors == []
    assert active_model().version == "v14"
    assert len(seen) > 1


def test_earlier_versions_are_kept_and_can_be_activated_again(settings):
    publish("v1", seed=0)
    publish("v2", seed=1)
    versions = [m.version for m in model_versions()]
    assert versions[-2:] == ["v1", "v2"]
    assert model_load(path=settings.SHIPPED_MODEL).version in versions
    model_activate(version="v1")
    assert active_model().version == "v1"
    model_activate(version=model_load(path=settings.SHIPPED_MODEL).version)  # back to the shipped one
    assert active_model().version == model_load(path=settings.SHIPPED_MODEL).version


def test_a_candidate_is_kept_but_not_activated():
    publish("v1")
    publish("v2", seed=1, activate=False)
    assert active_model().version == "v1"
    assert "v2" in [m.version for m in model_versions()]


@pytest.mark.parametrize("version", ["nope", "../../etc/passwd"])
def test_activating_an_unknown_version_is_refused(version):
    with pytest.raises(ModelUnavailable):
        model_activate(version=version)


def test_activate_model_command_lists_versions_and_switches(capsys):
    publish("v1", seed=0)
    publish("v2", seed=1)
    call_command("activate_model")
    listing = capsys.readouterr().out
    assert "* v2" in listing and "  v1" in listing
    call_command("activate_model", "v1")
    assert active_model().version == "v1"
    with pytest.raises(CommandError, match="no model version"):
        call_command("activate_model", "v9")


def test_weights_are_never_unpickled(isolated_models, monkeypatch):
    publish("v1")

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load unpickles; model files are read with safetensors")

    monkeypatch.setattr(torch, "load", no_pickles)
    registry.active_model_forget()
    assert active_model().version == "v1"
    assert os.path.getsize(isolated_models / "versions" / "v1.safetensors") > 0


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
    served = torch.softmax(torch.from_numpy(loaded.fast(images)) / loaded.temperature, dim=1)
    assert loaded.fast.precision == "int8"
    assert (served.argmax(1) == expected.argmax(1)).all()
    assert (served - expected).abs().max() < 0.05  # confidence shown to the user moves little
    assert not loaded.net.training  # and the trained net is left as it was


def test_a_net_whose_8_bit_weights_read_differently_is_served_with_7_bit_weights(settings, monkeypatch):
    from recognizer import onnx_net

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
    assert loaded.fast.precision == "int8" and loaded.fast.reduce_range
    assert (torch.from_numpy(loaded.fast(images)).argmax(1) == expected).all()


def test_a_net_whose_8_bit_copy_reads_differently_is_served_in_32_bit_floats(settings, monkeypatch):
    from recognizer import onnx_net

    monkeypatch.setattr(onnx_net, "MIN_AGREEMENT", 1.01)  # no 8-bit copy can agree this well
    loaded = model_load(path=settings.SHIPPED_MODEL)
    images = torch.randn(8, 1, 28, 28)
    with torch.inference_mode():
        expected = loaded.net(images)
    assert loaded.fast.precision == "float32"
    assert torch.allclose(torch.from_numpy(loaded.fast(images)), expected, atol=1e-4)

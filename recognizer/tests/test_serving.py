"""The model a process serves: the active version, switched without a restart; the last good
model serves when the active one cannot."""

import hashlib
import logging
import threading

import pytest
import torch
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from recognizer.modelfile import ModelUnavailable, model_from_bytes, model_load, model_save, model_to_bytes
from recognizer.models import ModelVersion
from recognizer.serving import active_model, active_model_forget, active_model_problem
from recognizer.services import digit_predict
from recognizer.publishing import model_publish
from recognizer.store import active_version_hint_key, model_activate, model_versions, shipped_model, version_path
from recognizer.tests.drawings import draw, drawn, png
from recognizer.tests.versions import publish, tiny_net

PREDICT, HEALTH = "/api/predict/", "/api/health/"


def test_the_shipped_model_is_active_until_another_is_published(settings):
    assert active_model().version == model_load(path=settings.SHIPPED_MODEL).version
    publish("v1")
    assert active_model().version == "v1"


def test_a_published_model_serves_from_the_next_request_without_a_restart():
    api = APIClient()
    publish("v1", seed=0)
    first = api.post(PREDICT, {"image": drawn(7)}, format="json").json()
    publish("v2", seed=1)
    second = api.post(PREDICT, {"image": drawn(7)}, format="json").json()
    assert (first["model"], second["model"]) == ("v1", "v2")
    assert first["probabilities"] != second["probabilities"]  # really other weights


def test_model_is_loaded_once_and_reused_while_the_active_version_is_unchanged():
    publish("v1")
    assert active_model() is active_model()


def test_an_active_row_that_cannot_load_keeps_the_last_good_model_serving_and_health_says_why():
    publish("v1")
    assert active_model().version == "v1"
    # e.g. a bad manual restore of the database, behind the store's back
    ModelVersion.objects.create(version="v2", data=b"\x00" * 100)
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)
    assert active_model().version == "v1"
    assert "not a usable DigitNet" in active_model_problem()
    health = APIClient().get(HEALTH).json()
    assert health["status"] == "degraded" and health["model"]["version"] == "v1"


def test_a_process_with_an_empty_model_folder_fetches_the_active_version_from_the_database(settings, tmp_path):
    publish("v1")
    active_model_forget()  # another machine: a folder of its own, nothing loaded yet
    settings.MODEL_DIR = tmp_path / "another-machine"
    assert active_model().version == "v1"
    assert model_load(path=tmp_path / "another-machine" / "versions" / "v1.safetensors").version == "v1"  # its local copy


def test_a_damaged_local_copy_is_fetched_again_from_the_database(isolated_models):
    publish("v1")
    active_model_forget()
    (isolated_models / "versions" / "v1.safetensors").write_bytes(b"\x00" * 10)
    assert active_model().version == "v1" and active_model_problem() is None
    assert model_load(path=isolated_models / "versions" / "v1.safetensors").version == "v1"


def test_a_corrupt_model_file_with_nothing_to_fall_back_to_gives_a_clear_error(settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "broken.safetensors"
    settings.SHIPPED_MODEL.write_bytes(b"this is not safetensors")
    with pytest.raises(ModelUnavailable, match="broken.safetensors is not a usable DigitNet"):
        active_model()
    assert "broken.safetensors is not a usable DigitNet" in active_model_problem()


def test_a_missing_model_file_gives_a_clear_error(settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "nowhere.safetensors"
    with pytest.raises(ModelUnavailable, match="nowhere.safetensors cannot be read"):
        active_model()


def test_the_active_model_is_served_without_unpickling(isolated_models, monkeypatch):
    publish("v1")

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load unpickles; model files are read with safetensors")

    monkeypatch.setattr(torch, "load", no_pickles)
    active_model_forget()
    assert APIClient().post(PREDICT, {"image": drawn(7)}, format="json").json()["model"] == "v1"


@pytest.mark.django_db(transaction=True)  # the reader thread has a connection of its own: it sees commits
def test_readers_never_see_a_half_written_model_while_models_are_published():
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


# -- integrity: a local copy serves only if it is the one the database records ------------------


def test_a_local_copy_altered_but_still_a_valid_model_is_fetched_again_and_the_published_weights_serve(isolated_models, caplog):
    shipped = shipped_model()  # a real model, so the served one must read a real digit
    path = model_publish(net=shipped.net, metadata={**shipped.metadata, "version": "v1"}, activate=True)
    published = model_from_bytes(bytes(ModelVersion.objects.get(version="v1").data), source="the database")
    altered = model_load(path=path)
    with torch.no_grad():
        altered.net.features[0].weight.neg_()  # the first conv layer's weights negated
    model_save(net=altered.net, metadata=altered.metadata, path=path)
    assert model_load(path=path).version == "v1"  # still a valid model file, same version name
    altered_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    active_model_forget()  # a process starting on this machine, or loading v1 for the first time
    with caplog.at_level(logging.WARNING, logger="recognizer.store"):
        served = active_model()
    recorded = ModelVersion.objects.get(version="v1").sha256
    assert altered_digest != recorded
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("model version v1" in w and altered_digest in w and recorded in w for w in warnings), warnings
    assert served.version == "v1" and active_model_problem() is None
    served_weights, published_weights = served.net.state_dict(), published.net.state_dict()
    assert served_weights.keys() == published_weights.keys()
    assert all(torch.equal(served_weights[name], published_weights[name]) for name in published_weights)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded  # the copy rewritten
    guess = digit_predict(image=png(draw(7)))
    assert (guess.model, guess.digit) == ("v1", 7)


def test_a_row_whose_bytes_do_not_match_their_hash_is_refused_and_the_last_good_model_keeps_serving(settings, tmp_path):
    publish("v1")
    assert active_model().version == "v1"
    publish("v2", seed=1, activate=False)
    # The row's bytes swapped for another valid model behind the store's back; its hash kept.
    swapped = model_to_bytes(net=tiny_net(2), metadata={"version": "v2"})
    ModelVersion.objects.filter(version="v2").update(data=swapped)
    with pytest.raises(ModelUnavailable, match="model version v2 in the database does not match its recorded SHA-256"):
        model_activate(version="v2")
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)  # made active behind its back
    settings.MODEL_DIR = tmp_path / "another-machine"  # with no copy of v2: it must use the database's bytes
    assert active_model().version == "v1"
    assert "model version v2 in the database does not match its recorded SHA-256" in active_model_problem()
    assert not version_path("v2").exists()  # bytes that are not the published ones are never copied
    health = APIClient().get(HEALTH).json()
    assert health["status"] == "degraded" and health["model"]["version"] == "v1"


def test_a_copy_that_cannot_be_checked_is_not_served_and_is_checked_again_once_the_database_answers(settings):
    publish("v1")
    active_model_forget()  # a process starting while...
    settings.CACHE_URL = "shared"  # ...the shared cache still names the active version...
    cache.set(active_version_hint_key(), "v1")
    with connection.cursor() as cursor:  # ...but the versions' table cannot be read
        cursor.execute("ALTER TABLE recognizer_modelversion RENAME TO recognizer_modelversion_gone")
    assert active_model().version == shipped_model().version
    assert "cannot check model version v1 against the database" in active_model_problem()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE recognizer_modelversion_gone RENAME TO recognizer_modelversion")
    assert active_model().version == "v1" and active_model_problem() is None


# -- the serving net: built by the first guess, not by loading --------------------------------


def test_the_active_model_builds_its_serving_net_on_the_first_guess_and_keeps_it(serving_nets_built):
    model_activate(version=shipped_model().version)  # the real shipped model
    api = APIClient()
    api.get("/")  # the page names the active model
    assert api.get(HEALTH).json()["status"] == "ok"
    model_versions()  # as the admin and activate_model list them
    assert serving_nets_built == []
    for _ in range(3):
        assert api.post(PREDICT, {"image": drawn(7)}, format="json").json()["digit"] == 7
    assert len(serving_nets_built) == 1 and active_model().serving_net() is serving_nets_built[0]


@pytest.mark.django_db(transaction=True)  # the activation commits, as in the admin
def test_activating_in_this_process_serves_the_version_without_building_its_serving_net(serving_nets_built):
    publish("v1")
    assert active_model().version == "v1"
    publish("v2", seed=1, activate=False)
    activated = model_activate(version="v2")
    assert active_model() is activated  # not loaded again
    assert serving_nets_built == []


def test_a_model_whose_serving_net_cannot_be_built_answers_503_and_health_says_why(monkeypatch):
    def broken_exporter(*args, **kwargs):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(torch.onnx, "export", broken_exporter)
    api = APIClient()
    predict = api.post(PREDICT, {"image": drawn(7)}, format="json")
    assert predict.status_code == 503 and "could not be prepared for serving: the exporter broke" in predict.json()["message"]
    health = api.get(HEALTH)
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert "the exporter broke" in health.json()["problem"]

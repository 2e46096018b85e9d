"""The model a process serves: the active version, switched without a restart; the last good
model serves when the active one cannot."""

import hashlib
import logging
import threading

import pytest
import torch
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from recognizer import servingform
from recognizer.modelfile import ModelUnavailable, model_load, model_to_bytes
from recognizer.models import ModelVersion
from recognizer.publishing import model_publish
from recognizer.services import digit_predict
from recognizer.serving import active_model, active_model_forget, active_model_problem
from recognizer.servingform import ServingForm, serving_form_from_bytes, serving_form_to_bytes
from recognizer.store import SERVING_SUFFIX, active_version_hint_key, model_activate, model_versions, shipped_model, version_path
from recognizer.tests.drawings import draw, drawn, png
from recognizer.tests.versions import publish, tiny_net

PREDICT, HEALTH = "/api/predict/", "/api/health/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


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
    data, form = b"\x00" * 100, b"\x00" * 50
    ModelVersion.objects.create(version="v2", data=data, sha256=sha256(data), serving_form=form, serving_sha256=sha256(form))
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)
    assert active_model().version == "v1"
    assert "serving form version v2 in the database is not usable" in active_model_problem()
    health = APIClient().get(HEALTH).json()
    assert health["status"] == "degraded" and health["model"]["version"] == "v1"


def test_a_process_with_an_empty_model_folder_fetches_the_active_version_from_the_database(settings, tmp_path):
    publish("v1")
    active_model_forget()  # another machine: a folder of its own, nothing loaded yet
    settings.MODEL_DIR = tmp_path / "another-machine"
    assert active_model().version == "v1"
    copy = (tmp_path / "another-machine" / "versions" / "v1.serving.zip").read_bytes()  # its local copy
    assert sha256(copy) == ModelVersion.objects.get(version="v1").serving_sha256


def test_a_damaged_local_copy_is_fetched_again_from_the_database(isolated_models):
    publish("v1")
    active_model_forget()
    (isolated_models / "versions" / "v1.serving.zip").write_bytes(b"\x00" * 10)
    assert active_model().version == "v1" and active_model_problem() is None
    assert sha256((isolated_models / "versions" / "v1.serving.zip").read_bytes()) == ModelVersion.objects.get(version="v1").serving_sha256


def test_a_corrupt_model_file_with_nothing_to_fall_back_to_gives_a_clear_error(settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "broken.safetensors"
    settings.SHIPPED_MODEL.write_bytes(b"this is not safetensors")
    (tmp_path / "broken.serving.zip").write_bytes(b"this is not a serving form")
    with pytest.raises(ModelUnavailable, match="broken.serving.zip is not usable"):
        active_model()
    assert "broken.serving.zip is not usable" in active_model_problem()


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


def test_a_local_copy_altered_but_still_a_valid_form_is_fetched_again_and_the_published_form_serves(isolated_models, caplog):
    shipped = model_load(path=settings.SHIPPED_MODEL)  # a real model, so the served one must read a real digit
    model_publish(net=shipped.net, metadata={**shipped.metadata, "version": "v1"}, activate=True)
    path = version_path("v1", suffix=SERVING_SUFFIX)
    published = serving_form_from_bytes(path.read_bytes(), source="copy")
    # Still a valid serving form of v1's weights, same version, but not the bytes published.
    altered = ServingForm(manifest=published.manifest, graphs=published.graphs, probe=255 - published.probe)
    path.write_bytes(serving_form_to_bytes(form=altered))
    altered_digest = sha256(path.read_bytes())
    active_model_forget()  # a process starting on this machine, or loading v1 for the first time
    with caplog.at_level(logging.WARNING, logger="recognizer.store"):
        served = active_model()
    recorded = ModelVersion.objects.get(version="v1").serving_sha256
    assert altered_digest != recorded
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("model version v1" in w and altered_digest in w and recorded in w for w in warnings), warnings
    assert served.version == "v1" and active_model_problem() is None
    assert (served.form.probe == published.probe).all()
    assert sha256(path.read_bytes()) == recorded  # the copy rewritten
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
    # And its serving form swapped for another valid one (v1's), its hash kept.
    ModelVersion.objects.filter(version="v2").update(serving_form=ModelVersion.objects.get(version="v1").serving_form)
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)  # made active behind its back
    settings.MODEL_DIR = tmp_path / "another-machine"  # with no copy of v2: it must use the database's bytes
    assert active_model().version == "v1"
    assert "the serving form of model version v2 in the database does not match its recorded SHA-256" in active_model_problem()
    assert not version_path("v2", suffix=SERVING_SUFFIX).exists()  # bytes that are not the published ones are never copied
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


# -- the serving net: ONNX Runtime sessions made on first use, not by loading -----------------


def test_the_active_model_makes_its_serving_net_on_first_use_and_keeps_it(serving_nets_built):
    model_activate(version=shipped_model().version)  # the real shipped model
    api = APIClient()
    api.get("/")  # the page names the active model
    model_versions()  # as the admin and activate_model list them
    assert serving_nets_built == []
    health = api.get(HEALTH).json()
    assert health["status"] == "ok" and health["model"]["precision"] == "int8" and health["model"]["precision_note"] is None
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


def test_a_model_whose_serving_net_cannot_be_made_answers_503_and_health_says_why(monkeypatch):
    def refused(*args, **kwargs):
        raise RuntimeError("ONNX Runtime refused the graph")

    monkeypatch.setattr(servingform, "session_make", refused)
    api = APIClient()
    predict = api.post(PREDICT, {"image": drawn(7)}, format="json")
    assert predict.status_code == 503 and "could not be prepared for serving: ONNX Runtime refused the graph" in predict.json()["message"]
    health = api.get(HEALTH)
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert "ONNX Runtime refused the graph" in health.json()["problem"]

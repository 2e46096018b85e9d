"""Faults an unlucky operator meets: broken weights, unreadable or deleted model files."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from recognizer.modelfile import model_load
from recognizer.models import ModelVersion
from recognizer.serving import active_model
from recognizer.store import shipped_form_path
from recognizer.tests.drawings import drawn
from recognizer.tests.versions import publish
from testing.server import drop_root_file_powers

PREDICT, HEALTH = "/api/predict/", "/api/health/"


def rewritten(data: bytes, change, **metadata) -> bytes:
    """A model file's bytes with each tensor replaced by change(tensor), metadata kept (or changed)."""
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    tensors = {name: change(tensor) for name, tensor in safetensors_load(data).items()}
    return safetensors_save(tensors, metadata={**header["__metadata__"], **metadata})


def rewrite_weights(path, change) -> None:
    """The model file at `path` with each tensor replaced by change(tensor), metadata kept."""
    path.write_bytes(rewritten(path.read_bytes(), change))


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda t: torch.full_like(t, float("nan")) if t.is_floating_point() else t, "not finite"),
        (lambda t: torch.full_like(t, float("inf")) if t.is_floating_point() else t, "not finite"),
        # Random bytes read as float32: finite but huge, they overflow in the first layers.
        (lambda t: (torch.rand_like(t) * 2 - 1) * 3e38 if t.is_floating_point() else t, "outputs that are not finite"),
    ],
    ids=["nan", "inf", "huge random"],
)
def test_weights_that_are_not_finite_are_refused_and_the_last_good_model_serves(isolated_models, change, reason):
    publish("v1")
    api = APIClient()
    assert api.post(PREDICT, {"image": drawn(7)}, format="json").json()["model"] == "v1"
    good = (isolated_models / "versions" / "v1.safetensors").read_bytes()
    bad = rewritten(good, change, version="v2")  # a row from before serving forms, its hash recorded
    ModelVersion.objects.create(version="v2", data=bad, sha256=hashlib.sha256(bad).hexdigest())
    with pytest.raises(CommandError, match=reason):
        call_command("activate_model", "v2")  # refused: no serving form can be built from it...
    call_command("build_serving_forms")  # ...nor by the worker
    assert not ModelVersion.objects.get(version="v2").serving_sha256
    ModelVersion.objects.update(active=False)
    ModelVersion.objects.filter(version="v2").update(active=True)  # ...so made active behind its back

    response = api.post(PREDICT, {"image": drawn(7)}, format="json")
    assert response.status_code == 200 and response.json()["model"] == "v1"
    assert all(0 <= p <= 1 for p in response.json()["probabilities"])
    health = api.get(HEALTH).json()
    assert health["status"] == "degraded" and "v2 has no serving form" in health["problem"]


def test_shipped_weights_changed_without_rebuilding_their_serving_form_answer_503_json(settings, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(settings.SHIPPED_MODEL.read_bytes())
    rewrite_weights(broken, lambda t: torch.full_like(t, float("nan")) if t.is_floating_point() else t)
    shutil.copy(shipped_form_path(), tmp_path / "broken.serving.zip")  # the form of the weights before
    settings.SHIPPED_MODEL = broken
    response = APIClient().post(PREDICT, {"image": drawn(7)}, format="json")
    assert response.status_code == 503
    assert "built from other weights" in response.json()["message"] and "build_serving_forms" in response.json()["message"]


def test_published_model_files_are_readable_by_other_users(isolated_models):
    publish("v1")
    publish("v2", seed=1, activate=False)
    files = list((isolated_models / "versions").glob("*"))
    assert sorted(path.name for path in files) == ["v1.safetensors", "v1.serving.zip", "v2.safetensors", "v2.serving.zip"]
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o644}


def test_deleting_the_local_copies_fetches_the_active_model_again_from_the_database(isolated_models):
    publish("v1")
    api = APIClient()
    assert api.get(HEALTH).json()["model"]["version"] == "v1"
    shutil.rmtree(isolated_models)
    from recognizer.serving import active_model_forget

    active_model_forget()  # a restarted process
    health = api.get(HEALTH).json()
    assert health["status"] == "ok" and health["model"]["version"] == "v1"
    assert (isolated_models / "versions" / "v1.serving.zip").exists()  # what a web process keeps


def test_a_kept_candidate_on_a_fresh_site_leaves_the_shipped_model_active_and_health_ok(isolated_models, settings):
    publish("v1", activate=False)
    health = APIClient().get(HEALTH).json()
    assert health["status"] == "ok" and health["problem"] is None
    assert health["model"]["version"] == model_load(path=settings.SHIPPED_MODEL).version == active_model().version


UNREADABLE_FOLDER = textwrap.dedent(
    """
    import json, os
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from recognizer.serving import active_model_forget
    from recognizer.store import model_dir
    from recognizer.tests.drawings import drawn
    from recognizer.tests.versions import publish

    call_command("migrate", verbosity=0)
    setup_test_environment()
    client, seen = Client(), {}

    def look(step):
        predict = client.post("/api/predict/", {"image": drawn(7)}, content_type="application/json")
        health = client.get("/api/health/")
        seen[step] = {"predict": [predict.status_code, predict.json()], "health": [health.status_code, health.json()]}

    publish("v1")
    look("readable")
    os.chmod(model_dir(), 0)
    try:
        os.listdir(model_dir())
        seen["denied"] = False
    except PermissionError:
        seen["denied"] = True
    look("unreadable")
    active_model_forget()  # as a process started while the folder is unreadable
    look("unreadable, fresh process")
    os.chmod(model_dir(), 0o755)
    active_model_forget()
    look("readable again")
    print(json.dumps(seen))
    """
)


def test_an_unreadable_model_folder_still_serves_the_active_model_from_the_database(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "digitsite.settings",
        "DATABASE_URL": "",  # a database file of its own
        "DIGITSITE_CACHE_URL": "",
        "DIGITSITE_VAR_DIR": str(tmp_path),
        "DIGITSITE_MODEL_DIR": str(tmp_path / "models"),
        "DIGITSITE_SECRET_KEY": "test",
        "DIGITSITE_PREDICT_RATE": "none",
    }
    child = subprocess.run(
        [sys.executable, "-c", UNREADABLE_FOLDER],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        preexec_fn=drop_root_file_powers,  # tests run as root, which reads any file whatever its mode
    )
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["denied"], "the folder stayed readable: the test would prove nothing"
    # The local folder only keeps copies: the model comes from the database, loaded or not.
    for step in ("readable", "unreadable", "unreadable, fresh process", "readable again"):
        code, body = seen[step]["predict"]
        assert code == 200 and body["model"] == "v1", step
        code, body = seen[step]["health"]
        assert code == 200 and body["status"] == "ok", step
    assert "could not keep a local copy of model v1" in child.stderr

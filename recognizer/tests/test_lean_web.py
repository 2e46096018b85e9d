"""Web processes run on numpy, ONNX Runtime and OpenCV alone (issue 32): no torch, no training code."""

import json
import os
import subprocess
import sys

from testing.server import ROOT

# Modules a web process must never import: torch (about 750 MB resident with its CUDA libraries),
# the ONNX exporter and quantizer, and the training code.
FORBIDDEN = ["torch", "torchvision", "onnx", "safetensors.torch", "training.nn.trainer", "training.steps.pipeline", "recognizer.formbuild", "recognizer.publishing", "recognizer.modelfile"]

WEB_PROCESS = """
import json, os, runpy, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "digitsite.settings"
from django.core.management import call_command
import digitsite.wsgi, digitsite.urls  # the site's entry point; setup imports every app's models, admin and tasks
from django.urls import get_resolver
get_resolver().url_patterns  # every view module
import recognizer.tasks, training.tasks, training.admin, feedback.admin
runpy.run_path("gunicorn.conf.py")
call_command("check")  # what `manage.py migrate` runs on a web machine first
call_command("migrate", verbosity=0)
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")  # outside the test runner, ALLOWED_HOSTS holds no "testserver"
guess = client.post("/api/predict/", {"strokes": [[[100, 100], [300, 300]], [[300, 100], [100, 300]]]}, content_type="application/json")
health = client.get("/api/health/")
from django.contrib.auth.models import User
admin = Client(HTTP_HOST="127.0.0.1")
admin.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
retrain = admin.post("/admin/training/trainingrun/retrain/", {"epochs": "1"})
from training.models import TrainingRun
from recognizer.serving import active_model
# The memory of a sender's corrections (issue 40) on the serving form's features: a real pen digit
# the net misreads, corrected, then drawn again a little elsewhere by the same sender.
from recognizer.pen_digits import pen_digits_strokes
from recognizer.memory import PLAUSIBLE
from recognizer.services import digit_predict
from feedback.services import sample_create
for strokes, label in zip(*pen_digits_strokes()):
    net = digit_predict(strokes=strokes)
    if net.digit is not None and net.digit != label and net.probabilities[label] >= PLAUSIBLE:
        break
sample_create(label=int(label), strokes=strokes, source="anon:lean")
again = digit_predict(strokes=[stroke + 9 for stroke in strokes], source="anon:lean")
print(json.dumps({
    "memory": [bool(again.digit == label), again.reason, bool(digit_predict(strokes=strokes, source="anon:other").digit == net.digit)],
    "guess": guess.status_code, "answer": guess.json(), "health": health.json(),
    "retrain": retrain.status_code, "queued": list(TrainingRun.objects.values_list("status", flat=True)), "precision": active_model().serving_net().precision,
    "imported": [name for name in %r if name in sys.modules],
}))
"""


def test_a_web_process_guesses_and_queues_a_run_without_importing_torch_or_training_code(tmp_path):
    # The shipped model serves (no version in this fresh database): its stored serving form.
    env = {"DIGITSITE_DB_PATH": str(tmp_path / "db.sqlite3"), "DATABASE_URL": "", "DIGITSITE_MODEL_DIR": str(tmp_path / "models"),
           "DIGITSITE_PREDICT_RATE": "none", "PYTHONPATH": str(ROOT)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS % (FORBIDDEN,)], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["guess"] == 200, result["answer"]
    assert result["health"]["status"] == "ok", result["health"]
    assert result["precision"] == "int8"
    assert result["memory"] == [True, "your_correction", True] and result["health"]["model"]["memory"] is True
    assert result["retrain"] == 302 and result["queued"] == ["queued"]  # "Retrain now" only queues
    assert result["imported"] == []

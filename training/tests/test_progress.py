"""What a working run says about the time it has left."""

from datetime import timedelta

import pytest
from django.utils import timezone

from training.models import TrainingRun
from training.runs.progress import Progress
from training.runs.selectors import training_run_typical_seconds
from training.runs.text import time_left_text

pytestmark = pytest.mark.django_db


def test_the_time_left_is_the_elapsed_training_time_scaled_by_the_steps_to_come_plus_judging(monkeypatch):
    run = TrainingRun.objects.create(status="running", in_progress=True, epochs=2)
    progress = Progress(run, log=lambda text: None)
    progress.judging_s = 10.0
    now = [100.0]
    monkeypatch.setattr("training.runs.progress.time.monotonic", lambda: now[0])
    progress.training_step(epoch=1, epochs=2, step=9, steps=100)  # under 5% of the steps: too early to tell
    assert TrainingRun.objects.get().finish_expected_at is None
    now[0] = 130.0
    progress.training_step(epoch=1, epochs=2, step=50, steps=100)  # a quarter done in 30 s: 90 s to go, then 10 s judging
    left = (TrainingRun.objects.get().finish_expected_at - timezone.now()).total_seconds()
    assert 99 < left <= 100
    assert TrainingRun.objects.get().progress == "epoch 1 of 2: step 50 of 100"


def test_past_runs_of_the_same_kind_give_the_estimate_before_the_steps_do():
    assert training_run_typical_seconds(from_scratch=False, epochs=2) is None
    for seconds in (150, 160, 400):
        TrainingRun.objects.create(status="promoted", epochs=2, seconds=seconds, finished_at=timezone.now())
    TrainingRun.objects.create(status="candidate", epochs=2, from_scratch=True, seconds=900, finished_at=timezone.now())
    TrainingRun.objects.create(status="failed", epochs=2, seconds=3, finished_at=timezone.now() - timedelta(days=1))
    assert training_run_typical_seconds(from_scratch=False, epochs=2) == 160
    assert training_run_typical_seconds(from_scratch=True, epochs=2) == 900


@pytest.mark.parametrize(
    "seconds, text",
    [(2, "any moment now"), (-30, "any moment now"), (44, "about 40 s left"), (7, "about 10 s left"), (150, "about 2 min left"), (600, "about 10 min left")],
)
def test_the_time_left_reads_as_roughly_as_it_is_known(seconds, text):
    assert time_left_text(seconds) == text

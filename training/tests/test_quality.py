"""The quality page: how the site's users answered each model version's guesses, each version
beside the one before it."""

import re

import cv2
import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from feedback.models import Sample
from feedback.tests.factories import SampleFactory
from recognizer.labels import CLASSES, NOT_A_DIGIT
from recognizer.services import SURE_THRESHOLD
from training.models import TrainingRun
from training.runs.figures import CELL, confusion_png
from training.runs.selectors import VersionQuality, model_version_before, model_versions_quality

pytestmark = pytest.mark.django_db

OLD, NEW = "20261201-000000-old0", "20261202-000000-new0"


def answers(version: str, pairs: list[tuple[int, int]], confidence: float = 0.99, **fields) -> None:
    """Samples of `version`, one per (guess, label)."""
    for guess, label in pairs:
        SampleFactory(model_version=version, guess=guess, label=label, confidence=confidence, **fields)


@pytest.fixture
def two_versions():
    answers(OLD, [(1, 7), (1, 7), (1, 1), (3, 3)])
    answers(OLD, [(4, 9)], confidence=SURE_THRESHOLD - 0.01)
    answers(NEW, [(1, 7), (7, 7), (7, 7), (1, 1), (3, 3), (3, 3)])
    answers(NEW, [(1, 1)], confidence=0.5)
    answers(NEW, [(0, 6)], status=Sample.Status.REJECTED)  # a reviewer said the answer was untrue
    TrainingRun.objects.create(status="promoted", epochs=2, base_version=OLD, model_version=NEW)


def test_a_versions_quality_counts_confirmed_and_corrected_guesses_by_digit_and_the_not_sure_ones(two_versions):
    old, new = model_versions_quality()
    assert [old.version, new.version] == [OLD, NEW]  # in the order they served
    assert (new.answered, new.confirmed, new.corrected, new.not_sure) == (7, 6, 1, 1)  # the rejected one left out
    assert (old.answered, old.confirmed, old.corrected, old.not_sure) == (5, 2, 3, 1)
    assert old.by_guess()[1] == (1, 1, 2) and new.by_guess()[7] == (7, 2, 0)
    assert old.corrections()[7][1] == 2 and old.corrections()[1][1] == 0  # confirmed guesses are not corrections
    assert model_version_before(version=NEW, served=[OLD, NEW]) == OLD and model_version_before(version=OLD, served=[OLD, NEW]) is None


def test_not_a_digit_answers_are_a_class_of_their_own_and_their_picture_has_a_row_for_them():
    counts = [[0] * CLASSES for _ in range(CLASSES)]
    counts[3][3], counts[NOT_A_DIGIT][3], counts[NOT_A_DIGIT][NOT_A_DIGIT] = 2, 1, 4  # a "3" that was not a digit
    quality = VersionQuality(version=NEW, first_at=timezone.now(), last_at=timezone.now(), not_sure=0, counts=tuple(map(tuple, counts)))
    assert quality.corrections()[NOT_A_DIGIT][3] == 1 and quality.by_guess()[3] == (3, 2, 1)
    assert quality.by_guess()[NOT_A_DIGIT] == (NOT_A_DIGIT, 4, 0) and (quality.confirmed, quality.corrected) == (6, 1)
    with_it = cv2.imdecode(np.frombuffer(confusion_png(quality.corrections()), np.uint8), cv2.IMREAD_COLOR)
    digits_only = cv2.imdecode(np.frombuffer(confusion_png(VersionQuality(**{**quality.__dict__, "counts": ((0,) * CLASSES,) * CLASSES}).corrections()), np.uint8), cv2.IMREAD_COLOR)
    assert with_it.shape[0] == digits_only.shape[0] + CELL  # one more row and column, only when needed


def test_the_quality_page_shows_a_version_beside_the_one_its_run_fine_tuned(admin_client, two_versions):
    page = admin_client.get(reverse("admin:training_trainingrun_quality", args=[NEW])).content.decode()
    assert f"<h1>Model {NEW}: how the users answered</h1>" in page
    assert "the model its" in page and re.search(r"run \d+</a> fine-tuned", page)
    assert re.search(r"<tr><th>corrected</th><td>3 \(60.0%\)</td><td>1 \(14.3%\)</td></tr>", page)  # before, then this model
    # Guessed 1: the old model 1 confirmed, 2 corrected of 3; the new one 2 and 1 of 3.
    assert re.search(r"<tr><th>1</th><td>1</td><td[^>]*>2 of 3</td><td>2</td><td[^>]*>1 of 3</td></tr>", page)
    assert len(re.findall(r'<img src="data:image/png;base64,[^"]+" alt="corrections of ', page)) == 2
    listing = admin_client.get(reverse("admin:training_trainingrun_quality_list")).content.decode()
    assert "60.0% → 14.3%" in listing and reverse("admin:training_trainingrun_quality", args=[NEW]) in listing


def test_a_version_no_one_answered_has_a_quality_page_that_says_so(admin_client):
    page = admin_client.get(reverse("admin:training_trainingrun_quality", args=["20261203-000000-none"]))
    assert page.status_code == 200 and "No one has answered this model" in page.content.decode()


def test_the_runs_list_and_a_runs_page_link_the_model_to_its_quality_page(admin_client, two_versions):
    run = TrainingRun.objects.get()
    url = reverse("admin:training_trainingrun_quality", args=[NEW])
    assert url in admin_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert url in admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()

import random

import cv2
import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from torchvision.datasets import MNIST

from feedback.models import Sample
from feedback.services import sample_create, sample_relabel
from feedback.tests.factories import SampleFactory
from recognizer.modelfile import model_load
from recognizer.services import digit_predict
from recognizer.serving import active_model
from recognizer.store import checkpoint_path, version_path
from recognizer.tests.drawings import CANVAS, png
from training.data import mnist_load
from training.models import TrainingRun
from training.services import blend_keeps
from training.trainer import accuracy, blend

pytestmark = pytest.mark.django_db


TEST_LIMIT = 2000  # MNIST test images the runs here are judged on


def train(mnist_dir, *args: str) -> TrainingRun:
    call_command("train_digits", "--data-dir", str(mnist_dir), "--val-size", "1000", "--test-limit", str(TEST_LIMIT), "--no-progress", *args)
    return TrainingRun.objects.latest("started_at")


def test_train_digits_with_limit_fine_tunes_on_a_real_subset_and_publishes(mnist_dir, isolated_models, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL)
    run = train(mnist_dir, "--limit", "1500", "--epochs", "1", "--mnist-tolerance", "100")

    assert run.status == TrainingRun.Status.PROMOTED and run.error == ""
    assert run.mnist_samples == 1500 and run.base_version == shipped.version
    assert run.mnist_accuracy > 0.97  # fine-tuning keeps what the shipped model knows
    assert active_model().version == run.model_version != shipped.version
    metadata = model_load(path=version_path(run.model_version)).describe()
    assert metadata["mnist_test_accuracy"] == pytest.approx(run.mnist_accuracy, abs=1e-6)
    assert metadata["base_version"] == shipped.version
    assert metadata["temperature"] > 0 and metadata["temperature"] != 1  # calibrated on held-out MNIST
    assert active_model().temperature == metadata["temperature"]
    assert checkpoint_path(run=str(run.pk), name="best").exists() and checkpoint_path(run=str(run.pk), name="latest").exists()
    assert str(checkpoint_path(run=str(run.pk), name="best")).startswith(str(isolated_models))


def test_train_digits_from_scratch_learns_from_a_small_subset(mnist_dir):
    run = train(mnist_dir, "--from-scratch", "--width", "16", "--limit", "2000", "--epochs", "3", "--force")
    assert run.from_scratch and run.epochs == 3
    assert run.mnist_accuracy > 0.8  # far above chance (0.1) after 48 steps on 2000 images
    assert active_model().version == run.model_version


def test_a_model_worse_than_the_tolerance_is_kept_as_a_candidate(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    run = train(mnist_dir, "--from-scratch", "--width", "8", "--limit", "500", "--epochs", "1", "--mnist-tolerance", "0.2")
    assert run.status == TrainingRun.Status.CANDIDATE
    assert "MNIST test got worse beyond its tolerance" in run.decision and "kept as a candidate" in run.decision
    assert active_model().version == shipped  # the better model keeps serving
    assert version_path(run.model_version).exists()  # and the candidate is kept


# A fine-tune at a rate far too high for a converged model: it loses MNIST beyond the tolerance.
RECKLESS = ("--limit", "600", "--epochs", "1", "--no-feedback", "--lr", "0.005", "--mnist-tolerance", "0.1")


def test_a_new_model_that_loses_mnist_is_published_blended_back_toward_the_active_one_as_little_as_passes(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL)
    run = train(mnist_dir, *RECKLESS, "--fallback-keep", "0.05")

    fine_tuned = model_load(path=checkpoint_path(run=str(run.pk), name="best")).net
    published = model_load(path=version_path(run.model_version)).net
    assert run.status == TrainingRun.Status.PROMOTED and active_model().version == run.model_version
    assert run.report["published"] == "blend" and run.mnist_accuracy >= run.mnist_accuracy_before - 0.001
    keeps = blend_keeps(least=0.05)
    kept = next(k for k in keeps if run.decision.startswith(f"Published {k:.0%} of the way from the active model to the new one, which lost"))
    expected = blend(shipped.net, fine_tuned, keep=kept).state_dict()
    assert all(torch.allclose(value, expected[name], atol=1e-6) for name, value in published.state_dict().items())
    # Every blend that kept more of the new weights lost MNIST beyond the tolerance, the fine-tuned model too.
    judged_on = mnist_load(data_dir=mnist_dir, train=False).take(slice(0, TEST_LIMIT))
    for more in [1.0] + keeps[: keeps.index(kept)]:
        assert accuracy(blend(shipped.net, fine_tuned, keep=more), judged_on) < run.mnist_accuracy_before - 0.001


def test_a_blend_that_loses_mnist_too_leaves_the_new_model_a_candidate(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    run = train(mnist_dir, *RECKLESS, "--fallback-keep", "0.9")
    assert run.status == TrainingRun.Status.CANDIDATE and run.report["published"] == "judge"
    assert "MNIST test got worse beyond its tolerance" in run.decision and not run.decision.startswith("Published")
    assert active_model().version == shipped


def test_train_digits_offline_without_mnist_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    with pytest.raises(CommandError, match=r"MNIST is not in .*MNIST/raw.*Put the four original files there"):
        call_command("train_digits", "--data-dir", str(tmp_path), "--no-progress")
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED


def test_train_digits_rejects_bad_flags():
    with pytest.raises(CommandError):
        call_command("train_digits", "--epochs", "0")
    with pytest.raises(CommandError):
        call_command("train_digits", "--augment", "wobble=3")


def eastern_arabic_eight(rng: random.Random) -> bytes:
    """٨, the Eastern Arabic 8: an inverted V. MNIST has none; the shipped model reads it as 1."""
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    height, width = rng.uniform(120, 260), rng.uniform(0.45, 0.8)
    x0, y0 = rng.uniform(60, CANVAS - 60 - width * height), rng.uniform(40, CANVAS - 40 - height)
    apex = (x0 + width * height * rng.uniform(0.4, 0.6), y0)
    left, right = (x0, y0 + height * rng.uniform(0.9, 1.0)), (x0 + width * height, y0 + height * rng.uniform(0.9, 1.0))
    points = np.round(np.array([left, apex, right]) * 16).astype(np.int32)
    cv2.polylines(canvas, [points], False, (0, 0, 0, 255), rng.choice([16, 24, 32]), cv2.LINE_AA, 4)
    return png(canvas)


def test_corrections_teach_the_model_a_kind_of_drawing_it_got_wrong(mnist_dir):
    rng = random.Random(0)
    taught = [eastern_arabic_eight(rng) for _ in range(40)]
    unseen = [eastern_arabic_eight(rng) for _ in range(20)]
    assert sum(digit_predict(image=image).digit == 8 for image in unseen) <= 2  # wrong before

    for image in taught:
        sample_create(image=image, label=8)
    # 3,000 MNIST images an epoch instead of 20,000: the corrections take the share they would have.
    run = train(mnist_dir, "--limit", "3000", "--epochs", "2", "--holdout", "0.2", "--mnist-tolerance", "1", "--feedback-share", "0.15", "--twin")

    assert run.status == TrainingRun.Status.PROMOTED
    assert 0 < run.feedback_holdout < 20 and run.feedback_samples == 40
    # The gate judged a twin that never saw the held-out drawings; the published model learnt them too.
    assert run.report["published"] == "twin" and "the published twin" in run.decision and run.decision.endswith("promoted.")
    assert set(run.samples.all()) == set(Sample.objects.all())
    assert run.feedback_accuracy_before < 0.2 and run.feedback_accuracy > 0.8  # held-out corrections
    assert f"held-out corrections {round(run.feedback_accuracy_before * run.feedback_holdout)} -> " in run.decision
    assert sum(digit_predict(image=image).digit == 8 for image in unseen) >= 17  # new drawings of that kind
    assert run.mnist_accuracy > run.mnist_accuracy_before - 0.01  # without forgetting MNIST


def test_a_run_with_redraws_trains_on_variants_of_each_drawing_with_strokes(mnist_dir):
    rng = random.Random(1)
    for _ in range(12):  # a 1 with a long lead-in, which the shipped model may read as 7
        top = (rng.uniform(150, 250), rng.uniform(60, 100))
        strokes = [[[top[0] - rng.uniform(60, 120), top[1] + rng.uniform(30, 70)], list(top), [top[0] + rng.uniform(-10, 10), top[1] + 250]]]
        sample_create(strokes=strokes, label=1)
    sample_create(image=eastern_arabic_eight(rng), label=8)  # no strokes: not redrawn

    run = train(mnist_dir, "--limit", "300", "--epochs", "1", "--redraws", "3", "--mnist-tolerance", "100")

    assert run.status in (TrainingRun.Status.PROMOTED, TrainingRun.Status.CANDIDATE) and run.error == ""
    trained = run.samples.all()
    assert run.report["redrawn"] == 3 * sum(1 for sample in trained if sample.strokes) > 0


def test_confirmed_right_guesses_do_not_dilute_the_corrections(mnist_dir):
    # 300 MNIST images an epoch: corrections make up 10% of it (about 33 showings) and the
    # confirmed right guesses 5% (about 16), however many of each there are.
    for _ in range(6):
        SampleFactory(label=1, guess=7)
    for index in range(40):
        SampleFactory(label=index % 10)

    run = train(mnist_dir, "--limit", "300", "--epochs", "1", "--holdout", "0", "--mnist-tolerance", "100", "--feedback-share", "0.1")

    trained = list(run.samples.all())
    corrections = sum(sample.is_correction for sample in trained)
    confirmed = len(trained) - corrections
    assert corrections == 6 and confirmed == 40
    # 40 confirmed drawings in one pool with the 6 corrections would leave each correction 1 showing.
    assert run.report["repeats"] == {"corrections": round(300 / 9 / 6), "confirmed": 1}


def test_the_next_run_teaches_only_the_drawings_the_active_model_has_not_learnt(mnist_dir):
    # 200 MNIST images an epoch: new corrections make up 10% of it, 22 showings spread over them.
    for index in range(10):
        SampleFactory(label=index, guess=(index + 1) % 10)
    tiny = ("--limit", "200", "--epochs", "1", "--test-limit", "200", "--holdout", "0", "--force", "--feedback-share", "0.1")
    first = train(mnist_dir, *tiny)
    assert first.report["learnt_before"] == 0 and first.report["repeats"]["corrections"] == round(200 / 9 / 10)

    SampleFactory(label=3, guess=5)
    sample_relabel(samples=Sample.objects.order_by("id")[:1], label=4)  # reviewed since: learnt again
    second = train(mnist_dir, *tiny)
    assert second.samples.count() == 11
    assert second.report["learnt_before"] == 9  # the first run's 10, less the relabelled one
    assert second.report["repeats"]["corrections"] == round(200 / 9 / 2)  # the 2 new ones take the share

    again = train(mnist_dir, *tiny, "--relearn")
    assert again.report["learnt_before"] == 0 and again.report["repeats"]["corrections"] == round(200 / 9 / 11)


def test_held_out_drawings_that_the_active_model_has_learnt_judge_no_more(mnist_dir, admin_client):
    for index in range(30):
        SampleFactory(label=index % 10, guess=(index + 1) % 10)
    tiny = ("--limit", "200", "--epochs", "1", "--test-limit", "200", "--holdout", "0.2", "--force", "--twin")
    first = train(mnist_dir, *tiny)
    assert first.feedback_holdout > 0 and first.report["published"] == "twin" and first.samples.count() == 30
    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[first.pk])).content.decode()
    assert "held-out figures after are the judge twin" in page

    second = train(mnist_dir, *tiny)  # nothing new: the first run's published model learnt them all
    assert second.feedback_holdout == 0 and second.report["learnt_before"] == 30
    assert "no held-out corrections to improve on" in second.decision

    apart = train(mnist_dir, *tiny, "--no-twin", "--relearn")  # without a twin the published model never learns them
    assert apart.report["published"] == "judge" and apart.samples.count() == 30 - first.feedback_holdout

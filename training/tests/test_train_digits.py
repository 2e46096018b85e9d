import random

import cv2
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from torchvision.datasets import MNIST

from feedback.models import Sample
from feedback.services import sample_create, sample_relabel
from feedback.tests.factories import SampleFactory
from recognizer.modelfile import model_load
from recognizer.services import digit_predict
from recognizer.serving import active_model
from recognizer.store import version_path
from recognizer.tests.drawings import CANVAS, png
from training.models import TrainingRun
from training.runs.decision import Failure
from training.runs.report import RunReport
from training.steps.gate import blend_keeps

pytestmark = pytest.mark.django_db


TEST_LIMIT = 2000  # MNIST test images the runs here are judged on


def train(mnist_dir, *args: str) -> TrainingRun:
    call_command("train_digits", "--data-dir", str(mnist_dir), "--val-size", "1000", "--test-limit", str(TEST_LIMIT), "--no-progress", *args)
    return TrainingRun.objects.latest("started_at")


def test_train_digits_with_limit_fine_tunes_on_a_real_subset_and_publishes(mnist_dir, isolated_models, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL)
    # A 1,500-image run is about the mechanics, not the guards: with the shipped model of issue 39
    # it moved the pen guard's 1s by 1.2 points (fonts only) to 2.7 (real negatives too).
    run = train(
        mnist_dir, "--limit", "1500", "--epochs", "1", "--mnist-tolerance", "100", "--mnist-digit-tolerance", "100",
        "--pen-tolerance", "100", "--pen-digit-tolerance", "100",
    )  # fmt: skip

    assert run.status == TrainingRun.Status.PROMOTED and run.error == ""
    assert run.mnist_samples == 1500 and run.base_version == shipped.version
    assert run.mnist_accuracy > 0.97  # fine-tuning keeps what the shipped model knows
    assert active_model().version == run.model_version != shipped.version
    metadata = model_load(path=version_path(run.model_version)).describe()
    assert metadata["mnist_test_accuracy"] == pytest.approx(run.mnist_accuracy, abs=1e-6)
    assert metadata["base_version"] == shipped.version
    assert metadata["temperature"] > 0 and metadata["temperature"] != 1  # calibrated on held-out MNIST
    assert active_model().temperature == metadata["temperature"]
    # The published version is the one file the run leaves: no checkpoints beside it.
    assert [path.name for path in isolated_models.rglob("*.safetensors")] == [f"{run.model_version}.safetensors"]


def test_train_digits_from_scratch_learns_from_a_small_subset(mnist_dir):
    run = train(mnist_dir, "--from-scratch", "--width", "16", "--limit", "2000", "--epochs", "3", "--force")
    assert run.from_scratch and run.epochs == 3
    assert run.mnist_accuracy > 0.8  # far above chance (0.1) after 48 steps on 2000 images
    assert active_model().version == run.model_version


def test_a_run_from_scratch_learns_the_pen_style_digits_under_their_own_labels(mnist_dir, capsys):
    # No model to follow from scratch: pen-style digits are positives drawn as the page draws,
    # beside the real not-digits (without them the net refused half the real pen digits).
    run = train(mnist_dir, "--from-scratch", "--width", "8", "--limit", "500", "--epochs", "1", "--pen-anchors", "3", "--pen-mnist", "40", "--force")
    assert run.from_scratch and run.options["pen_anchors"] == 3 and run.options["pen_mnist"] == 40
    assert "220 pen-style digits labelled with their digits" in capsys.readouterr().out  # 6 fonts x 10 digits x 3, and 40 of MNIST


def test_a_model_worse_than_the_tolerance_is_kept_as_a_candidate(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    run = train(mnist_dir, "--from-scratch", "--width", "8", "--limit", "500", "--epochs", "1", "--mnist-tolerance", "0.2")
    assert run.status == TrainingRun.Status.CANDIDATE
    assert "MNIST test got worse beyond its tolerance" in run.decision and "kept as a candidate" in run.decision
    assert run.decision.endswith(f"Activate it anyway with: manage.py activate_model {run.model_version}.")  # its real version
    assert active_model().version == shipped  # the better model keeps serving
    assert version_path(run.model_version).exists()  # and the candidate is kept


# A fine-tune at a rate far too high for a converged model: it loses MNIST beyond the tolerance.
RECKLESS = ("--limit", "600", "--epochs", "1", "--no-users", "--lr", "0.005", "--mnist-tolerance", "0.1")


def test_a_run_whose_new_model_loses_mnist_publishes_a_blend_that_passes(mnist_dir):
    # Such a rate wipes out "not a digit" too, and even 5% of the way to it loses most of that;
    # it loses real pen digits beyond chance as well, and then no blend is tried at all
    # (training.steps.gate.NOT_BLENDED). The refusal guard and the pen guard set are opened here:
    # this test is about MNIST's blends, keeping 67%, 35% and 2% of the way to the new model.
    opened = ("--refusal-tolerance", "100", "--pen-tolerance", "100", "--pen-digit-tolerance", "100")
    run = train(mnist_dir, *RECKLESS, "--fallback-keep", "0.02", *opened)
    decision = RunReport.of(run).decision
    assert run.status == TrainingRun.Status.PROMOTED and active_model().version == run.model_version
    assert decision.published == "blend" and decision.keep in blend_keeps(least=0.02, steps=3) and decision.new_model_mnist_change < -0.1
    # What it lost of MNIST is within the tolerance or chance (training.steps.gate: a sign test on the images that changed).
    assert not decision.mnist.lost and decision.failures == () and decision.mnist.chance is not None
    assert run.decision.startswith("Rests on 0 held-out drawings of the users' (0 corrections, 0 confirmed). ")
    assert f". Published {decision.keep:.0%} of the way from the active model to the new one" in run.decision


def test_a_blend_that_loses_mnist_too_leaves_the_new_model_a_candidate(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    run = train(mnist_dir, *RECKLESS, "--fallback-keep", "0.9")
    decision = RunReport.of(run).decision
    assert run.status == TrainingRun.Status.CANDIDATE and decision.published == "new" and not decision.promote
    assert Failure.MNIST_WORSE in decision.failures and run.report["decision"]["failures"][0] == "mnist_lost"
    assert active_model().version == shipped


def test_train_digits_offline_without_mnist_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    with pytest.raises(CommandError, match=r"MNIST is not in .*MNIST/raw.*Put the four original files there"):
        call_command("train_digits", "--data-dir", str(tmp_path), "--no-progress")
    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED


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
    # The pen guard's tolerances are opened too: an inverted V taught as 8 costs real pen 1s 4 to
    # 10 points here (their lead-ins look alike; 10 with the fine-tune's MNIST distilled alone and
    # unbent, on the held-out split a PostgreSQL run's ids gave), which the default gate refuses;
    # this test is about what corrections teach. So is "not a digit"'s: the inverted V is much like an A or a
    # caret, and the shipped model then refuses about 15 points fewer held-out negatives. One
    # digit of this short run's 2,000 MNIST test images may lose 2 of its ~200 (-1.1 points).
    run = train(
        mnist_dir, "--limit", "3000", "--epochs", "2", "--holdout", "0.2", "--mnist-tolerance", "1", "--corrections-share", "0.15",
        "--mnist-digit-tolerance", "10", "--pen-tolerance", "100", "--pen-digit-tolerance", "100", "--refusal-tolerance", "100",
    )  # fmt: skip

    assert run.status == TrainingRun.Status.PROMOTED and RunReport.of(run).decision.published == "new"
    assert 0 < run.corrections_held_out < 20 and run.users_samples == 40 - run.corrections_held_out
    # The gate judged on drawings the new model never saw.
    assert run.samples.count() == 40 - run.corrections_held_out and run.decision.endswith("promoted.")
    assert run.corrections_accuracy_before < 0.2 and run.corrections_accuracy > 0.8  # held-out corrections
    assert f"held-out corrections {round(run.corrections_accuracy_before * run.corrections_held_out)} -> " in run.decision
    assert sum(digit_predict(image=image).digit == 8 for image in unseen) >= 17  # new drawings of that kind
    assert run.mnist_accuracy > run.mnist_accuracy_before - 0.01  # without forgetting MNIST


def test_confirmed_right_guesses_do_not_dilute_the_corrections(mnist_dir):
    # 300 MNIST images an epoch: corrections make up 10% of it (about 33 showings) and the
    # confirmed right guesses 5% (about 16), however many of each there are.
    for _ in range(6):
        SampleFactory(label=1, guess=7)
    for index in range(40):
        SampleFactory(label=index % 10)

    run = train(mnist_dir, "--limit", "300", "--epochs", "1", "--holdout", "0", "--mnist-tolerance", "100", "--corrections-share", "0.1")

    trained = list(run.samples.all())
    corrections = sum(sample.is_correction for sample in trained)
    confirmed = len(trained) - corrections
    assert corrections == 6 and confirmed == 40
    # 40 confirmed drawings in one pool with the 6 corrections would leave each correction 1 showing.
    report = RunReport.of(run)
    assert (report.corrections_repeats, report.confirmed_repeats) == (round(300 / 9 / 6), 1)


def test_the_next_run_teaches_only_the_drawings_the_active_model_has_not_learnt(mnist_dir):
    # 200 MNIST images an epoch: new corrections make up 10% of it, 22 showings spread over them.
    for index in range(10):
        SampleFactory(label=index, guess=(index + 1) % 10)
    tiny = ("--limit", "200", "--epochs", "1", "--test-limit", "200", "--holdout", "0", "--force", "--corrections-share", "0.1")
    first = RunReport.of(train(mnist_dir, *tiny))
    assert first.learnt_before == 0 and first.corrections_repeats == round(200 / 9 / 10)

    SampleFactory(label=3, guess=5)
    sample_relabel(samples=Sample.objects.order_by("id")[:1], label=4)  # reviewed since: learnt again
    second = train(mnist_dir, *tiny)
    assert second.samples.count() == 11
    report = RunReport.of(second)
    assert report.learnt_before == 9  # the first run's 10, less the relabelled one
    assert report.corrections_repeats == round(200 / 9 / 2)  # the 2 new ones take the share


def test_held_out_drawings_that_the_active_model_has_learnt_judge_no_more(mnist_dir):
    for index in range(30):
        SampleFactory(label=index % 10, guess=(index + 1) % 10)
    tiny = ("--limit", "200", "--epochs", "1", "--test-limit", "200", "--force")
    first = train(mnist_dir, *tiny, "--holdout", "0")  # a run that held none out learnt them all
    assert first.corrections_held_out == 0 and first.samples.count() == 30

    second = train(mnist_dir, *tiny, "--holdout", "0.2")
    # Its held-out fifth was learnt by the active model: it judges no more, teaches no more like
    # the rest, and the new model is known to have learnt it too.
    assert second.corrections_held_out == 0 and RunReport.of(second).learnt_before == second.samples.count() == 30
    assert "no held-out corrections to improve on" in second.decision


def test_a_models_metadata_reads_under_todays_keys_whichever_it_was_written_with(settings):
    from training.steps.publish import METADATA_RENAMED, model_metadata_read

    today = model_load(path=settings.SHIPPED_MODEL).metadata  # published under today's keys
    assert "users_samples" in today and "corrections_accuracy" in today
    before = {old: today[new] for old, new in METADATA_RENAMED.items()} | {k: v for k, v in today.items() if k not in METADATA_RENAMED.values()}
    assert "feedback_samples" in before and "users_samples" not in before  # as a model published before the renaming carries it
    read = model_metadata_read(before)
    assert read == today and read["users_samples"] == before["feedback_samples"]
    assert model_metadata_read(today) == today  # today's keys stay as they are

"""What a run takes of the users' drawings: each source's unreviewed ones up to a cap, and
which held-out ones a reviewer approved."""

import pytest

from feedback.models import Sample
from feedback.tests.factories import SampleFactory
from training.options import RunOptions
from training.steps.data import run_data_load, samples_capped

APPROVED, NEW = Sample.Status.APPROVED, Sample.Status.NEW


@pytest.mark.django_db
def test_a_run_uses_each_sources_earliest_unreviewed_drawings_up_to_the_cap_and_says_how_many_it_set_aside(mnist_dir):
    poisoner = SampleFactory.create_batch(60, label=7, guess=1, source="anon:" + "a" * 32)
    reviewed = SampleFactory.create_batch(3, label=7, guess=1, source="anon:" + "a" * 32, status=APPROVED)
    honest = SampleFactory.create_batch(10, label=3, guess=5, source="user:1")
    operators = SampleFactory.create_batch(70, label=2, guess=2, source="")  # made by a command: not capped

    kept, set_aside = samples_capped(samples=list(Sample.objects.order_by("-id")), per_source=50)
    assert set_aside == 10 and {s.pk for s in poisoner[50:]}.isdisjoint(s.pk for s in kept)  # the earliest 50 are kept
    assert {s.pk for s in poisoner[:50] + reviewed + honest + operators} == {s.pk for s in kept}
    assert samples_capped(samples=list(Sample.objects.all()), per_source=0) == (list(Sample.objects.all()), 0)

    said = []
    data = run_data_load(options=RunOptions(data_dir=str(mnist_dir), limit=100, test_limit=100, per_source_cap=50), learnt=set(), say=said.append)
    assert data.set_aside == 10 and len(data.users_train) + len(data.corrections_test) + len(data.confirmed_test) == 133
    assert any("set aside 10 unreviewed drawings past their source's cap of 50" in line for line in said)
    assert len(data.pen_guard) == 2498


@pytest.mark.django_db
def test_the_gate_knows_which_held_out_drawings_a_reviewer_approved(mnist_dir):
    SampleFactory.create_batch(20, label=7, guess=1, status=APPROVED)
    SampleFactory.create_batch(20, label=7, guess=1, status=NEW)
    data = run_data_load(options=RunOptions(data_dir=str(mnist_dir), limit=100, test_limit=100, holdout=0.5), learnt=set(), say=lambda text: None)
    held = [s for s in Sample.objects.order_by("id") if not data.train_sample_ids.count(s.pk)]
    assert len(held) == len(data.corrections_test) > 0
    assert data.corrections_approved.tolist() == [s.status == APPROVED for s in held]
    assert 0 < int(data.corrections_approved.sum()) < len(held)


@pytest.mark.django_db
def test_a_run_uses_drawings_answered_not_a_digit_as_the_not_a_digit_class(mnist_dir):
    from recognizer.labels import NOT_A_DIGIT

    digits = SampleFactory.create_batch(5, label=3, guess=5)
    refused = SampleFactory.create_batch(5, label=NOT_A_DIGIT, guess=4)
    data = run_data_load(options=RunOptions(data_dir=str(mnist_dir), limit=100, test_limit=100), learnt=set(), say=lambda _: None)
    assert len(data.users_train) + len(data.corrections_test) + len(data.confirmed_test) == len(digits) + len(refused)
    labels = [int(y) for part in (data.users_train, data.corrections_test, data.confirmed_test) for y in part.labels]
    assert labels.count(NOT_A_DIGIT) == len(refused)

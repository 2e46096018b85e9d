"""What a run takes of the users' drawings: each source's unreviewed corrections and confirmed
right guesses up to a cap each, which are held out to judge with, and which held-out ones a
reviewer approved."""

import pytest

from feedback.models import Sample
from feedback.tests.factories import SampleFactory
from training.options import RunOptions
from feedback.selectors import sample_is_held_out
from training.runs.chance import FALSE_REFUSAL_RATE, corrections_fewest_telling, sign_test
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
    # Their confirmed right guesses count apart: a person who presses "Yes" often keeps their corrections.
    confirmed = SampleFactory.create_batch(55, label=4, guess=4, source="anon:" + "a" * 32)
    kept, set_aside = samples_capped(samples=list(Sample.objects.all()), per_source=50)
    assert set_aside == 10 + 5 and {s.pk for s in poisoner[:50] + confirmed[:50]} <= {s.pk for s in kept}
    Sample.objects.filter(pk__in=[s.pk for s in confirmed]).delete()

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


def _corrections_in_the_held_out_share(count: int, *, share: float) -> tuple[list[Sample], list[Sample]]:
    """Corrections until `count` of them fall in the held-out share by id: (those, the others)."""
    held, others = [], []
    while len(held) < count:
        sample = SampleFactory(label=7, guess=1)
        (held if sample_is_held_out(sample_id=sample.pk, holdout_share=share) else others).append(sample)
    return held, others


def test_fewer_held_out_corrections_than_can_change_the_gates_decision_are_the_fewest_that_cannot_carry_or_hold_back():
    fewest = corrections_fewest_telling(min_held_out=5)
    assert fewest == 5
    assert sign_test(worse=fewest - 1, better=0) > FALSE_REFUSAL_RATE >= sign_test(worse=fewest, better=0)  # all lost: beyond chance from 5
    assert corrections_fewest_telling(min_held_out=3) == 3 and corrections_fewest_telling(min_held_out=8) == 5


@pytest.mark.django_db
def test_corrections_held_out_by_id_too_few_to_change_the_decision_are_trained_on_instead(mnist_dir):
    options = RunOptions(data_dir=str(mnist_dir), limit=100, test_limit=100, holdout=0.5)
    held, others = _corrections_in_the_held_out_share(4, share=0.5)
    confirmed = SampleFactory(label=3, guess=3)
    said = []
    data = run_data_load(options=options, learnt=set(), say=said.append)
    assert len(data.corrections_test) == 0
    assert {s.pk for s in held + others} <= set(data.train_sample_ids)
    assert any("trained on the 4 corrections chosen to be held out: under the 5" in line for line in said)
    # A confirmed right guess in the share is held out as before: its clause is not a count of changed drawings.
    assert (confirmed.pk in data.train_sample_ids) != sample_is_held_out(sample_id=confirmed.pk, holdout_share=0.5)

    more, _ = _corrections_in_the_held_out_share(1, share=0.5)
    data = run_data_load(options=options, learnt=set(), say=lambda _: None)
    assert len(data.corrections_test) == 5 and {s.pk for s in held + more}.isdisjoint(data.train_sample_ids)


@pytest.mark.django_db
def test_a_drawing_the_active_model_learnt_is_never_held_out_so_the_new_model_is_known_to_have_learnt_it_too(mnist_dir):
    options = RunOptions(data_dir=str(mnist_dir), limit=100, test_limit=100, holdout=0.5)
    held, _ = _corrections_in_the_held_out_share(8, share=0.5)
    learnt = {s.pk for s in held[:3]}  # trained on when a run had too few to judge by
    data = run_data_load(options=options, learnt=learnt, say=lambda _: None)
    assert learnt <= set(data.train_sample_ids) and len(data.corrections_test) == 5
    assert int(data.is_learnt.sum()) == 3 and not bool(data.corrections_to_teach[data.is_learnt].any())

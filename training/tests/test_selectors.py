from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Sample
from feedback.selectors import sample_is_held_out
from feedback.tests.factories import SampleFactory
from training.models import TrainingRun
from training.selectors import samples_split

pytestmark = pytest.mark.django_db
SHARE = 0.2


def drawings(count: int, *, at) -> list[Sample]:
    made = [SampleFactory(label=1, guess=7) for _ in range(count)]
    Sample.objects.filter(pk__in=[s.pk for s in made]).update(created_at=at)
    return list(Sample.objects.filter(pk__in=[s.pk for s in made]).order_by("id"))


def chosen_by_id(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if sample_is_held_out(sample_id=s.pk, holdout_share=SHARE)]


def run_that_made(version: str, *, started_at, trained_on: list[Sample]) -> TrainingRun:
    run = TrainingRun.objects.create(epochs=1, model_version=version, status=TrainingRun.Status.PROMOTED)
    TrainingRun.objects.filter(pk=run.pk).update(started_at=started_at)
    run.samples.set(trained_on)
    return run


def test_without_a_run_behind_the_active_model_a_share_of_all_drawings_is_held_out_by_id():
    samples = drawings(60, at=timezone.now())
    train, held = samples_split(samples=samples, base_version="shipped", holdout_share=SHARE)
    assert held == chosen_by_id(samples) and 0 < len(held) < 30
    assert train == [s for s in samples if s not in held]


def test_drawings_the_active_models_run_held_out_are_trained_on_by_the_next_run():
    now = timezone.now()
    old = drawings(40, at=now - timedelta(hours=2))
    old_held = chosen_by_id(old)
    assert old_held  # the run that made v1 judged with these and never trained on them
    run_that_made("v1", started_at=now - timedelta(hours=1), trained_on=[s for s in old if s not in old_held])
    new = drawings(40, at=now)

    train, held = samples_split(samples=old + new, base_version="v1", holdout_share=SHARE)

    assert set(old) <= set(train)  # old_held included: learnt from now
    assert held == chosen_by_id(new) and held  # judged only on drawings neither model has seen


def test_a_drawing_the_active_models_run_trained_on_is_never_held_out_to_judge_it():
    now = timezone.now()
    late = drawings(40, at=now)  # stored after the run was asked for, before it loaded its data
    run_that_made("v1", started_at=now - timedelta(minutes=5), trained_on=late)
    train, held = samples_split(samples=late, base_version="v1", holdout_share=SHARE)
    assert held == [] and train == late


def test_until_a_run_is_promoted_every_run_is_judged_on_the_same_held_out_drawings():
    now = timezone.now()
    run_that_made("v1", started_at=now - timedelta(hours=2), trained_on=[])
    new = drawings(40, at=now - timedelta(hours=1))
    # A candidate trained on the new drawings' other share; v1 stays active.
    run_that_made("v2-candidate", started_at=now, trained_on=[s for s in new if s not in chosen_by_id(new)])
    _, held = samples_split(samples=new, base_version="v1", holdout_share=SHARE)
    assert held == chosen_by_id(new) and held

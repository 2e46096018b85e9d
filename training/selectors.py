"""Reads for training runs: which of the users' drawings a run trains on, and which judge it."""

from collections.abc import Iterable

from feedback.models import Sample
from feedback.selectors import sample_is_held_out
from training.models import TrainingRun


def samples_split(*, samples: Iterable[Sample], base_version: str, holdout_share: float) -> tuple[list[Sample], list[Sample]]:
    """The users' drawings as (trained on, held out to judge the new model with).

    Only drawings new to the active model (`base_version`) can be held out: a stable share of
    them, chosen by id, on which neither the active model nor the new one has trained, so the
    gate compares the two fairly. A drawing the active model's run already knew of, held out by
    it or not, is trained on: every correction is learnt from by the run after the one that
    judged with it, instead of a fifth of them never being learnt from at all.
    """
    maker = TrainingRun.objects.filter(model_version=base_version).exclude(model_version="").order_by("-started_at").first()
    known = set(maker.samples.values_list("pk", flat=True)) if maker else set()

    def is_new(sample: Sample) -> bool:
        return maker is None or (sample.created_at > maker.started_at and sample.pk not in known)

    train, held = [], []
    for sample in samples:
        (held if is_new(sample) and sample_is_held_out(sample_id=sample.pk, holdout_share=holdout_share) else train).append(sample)
    return train, held

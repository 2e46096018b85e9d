"""Reads for training runs."""

from django.db.models import Q

from training.models import TrainingRun


def samples_learnt_by(*, version: str) -> set[int]:
    """Ids of the users' drawings the model `version` has learnt: those its run trained on (which
    include its base model's), unless reviewed since (a relabelled drawing must be learnt again)."""
    run = TrainingRun.objects.filter(model_version=version).exclude(model_version="").first()
    if run is None:
        return set()
    unchanged = Q(reviewed_at__isnull=True) | Q(reviewed_at__lte=run.started_at)
    return set(run.samples.filter(unchanged).values_list("pk", flat=True))

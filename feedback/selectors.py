from django.db.models import QuerySet

from feedback.models import Sample

# A fixed share of samples, chosen by id, is never trained on: it measures how well a model
# reads drawings like the users' own. Chosen by a hash of the id, so it is the same share in
# every run and a sample that was held out once is never trained on later.
_HASH = 2654435761  # Knuth's multiplicative hash


def sample_is_held_out(*, sample_id: int, holdout_share: float) -> bool:
    return (sample_id * _HASH) % 2**32 < holdout_share * 2**32


def samples_for_training(*, approved_only: bool = False) -> QuerySet[Sample]:
    """Samples a training run may use: approved ones, and new ones unless `approved_only`."""
    samples = Sample.objects.exclude(status=Sample.Status.REJECTED)
    if approved_only:
        samples = samples.filter(status=Sample.Status.APPROVED)
    return samples.order_by("id")


def sample_counts() -> dict[str, int]:
    return {status: Sample.objects.filter(status=status).count() for status in Sample.Status.values}

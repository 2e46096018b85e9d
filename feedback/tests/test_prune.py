"""manage.py samples_prune: stale samples go, approved ones and recent ones stay."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from feedback.models import Sample
from feedback.tests.factories import SampleFactory


def aged(days: int, status: str) -> Sample:
    sample = SampleFactory(status=status)
    # created_at is auto_now_add: set afterwards, as a sample that old would have it.
    Sample.objects.filter(pk=sample.pk).update(created_at=timezone.now() - timedelta(days=days))
    return sample


def some_of_each() -> dict[str, Sample]:
    return {
        "old rejected": aged(31, Sample.Status.REJECTED),
        "recent rejected": aged(29, Sample.Status.REJECTED),
        "old new": aged(181, Sample.Status.NEW),
        "recent new": aged(179, Sample.Status.NEW),
        "ancient approved": aged(5000, Sample.Status.APPROVED),
    }


def prune(*args: str) -> str:
    out = StringIO()
    call_command("samples_prune", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_reports_what_it_would_delete_by_status_and_deletes_nothing():
    some_of_each()
    assert prune("--dry-run") == "would delete 2 samples: 1 new, 1 rejected\n"
    assert Sample.objects.count() == 5


def test_pruning_deletes_exactly_the_stale_rejected_and_unreviewed_samples_never_approved_ones():
    samples = some_of_each()
    assert prune() == "deleted 2 samples: 1 new, 1 rejected\n"
    kept = {samples[name].pk for name in ("recent rejected", "recent new", "ancient approved")}
    assert set(Sample.objects.values_list("pk", flat=True)) == kept


def test_the_ages_are_flags():
    samples = some_of_each()
    assert prune("--rejected-days", "10", "--unreviewed-days", "100") == "deleted 4 samples: 2 new, 2 rejected\n"
    assert list(Sample.objects.values_list("pk", flat=True)) == [samples["ancient approved"].pk]


def test_pruning_nothing_says_so():
    assert prune() == "deleted 0 samples: nothing\n"

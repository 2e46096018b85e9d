"""Reviewing and exporting samples in the admin each need a permission beyond viewing them:
approve, reject (also by source) and relabel need change_sample; export needs export_sample."""

import pytest
from django.test import Client

from feedback.models import Sample
from feedback.tests.factories import SampleFactory, offered_actions, staff_user

CHANGELIST = "/admin/feedback/sample/"
VIEW_ONLY = ["feedback.view_sample"]
RELABELS = {f"relabel_{label}" for label in range(10)}


@pytest.fixture
def samples(db):
    return [SampleFactory(guess=1, label=7, source="anon:a"), SampleFactory(guess=7, label=7, source="anon:b")]


def logged_in(*, username: str, permissions: list[str]) -> Client:
    client = Client()
    client.force_login(staff_user(username=username, permissions=permissions))
    return client


def bulk(client: Client, action: str, samples: list[Sample]):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [s.pk for s in samples]})


def as_stored(samples: list[Sample]) -> list[tuple[int, str]]:
    return [(s.label, s.status) for s in Sample.objects.filter(pk__in=[s.pk for s in samples]).order_by("pk")]


def test_a_view_only_staff_user_sees_the_samples_but_is_offered_no_bulk_action(samples):
    client = logged_in(username="viewer", permissions=VIEW_ONLY)
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and page.context["cl"].result_count == 2
    assert offered_actions(page) == set()


@pytest.mark.parametrize("action", ["approve", "reject", "reject_sources", "relabel_3"])
def test_a_view_only_staff_user_cannot_review_samples_by_posting_the_action(samples, action):
    before = as_stored(samples)
    client = logged_in(username="viewer", permissions=VIEW_ONLY)
    bulk(client, action, samples)
    assert as_stored(samples) == before == [(7, "new"), (7, "new")]


def test_a_view_only_staff_user_cannot_export_samples(samples):
    client = logged_in(username="viewer", permissions=VIEW_ONLY)
    response = bulk(client, "export", samples)
    assert not response.streaming and response.get("Content-Type") != "application/zip"
    assert "Content-Disposition" not in response


def test_a_reviewer_with_change_sample_may_approve_reject_and_relabel_but_not_export(samples):
    client = logged_in(username="reviewer", permissions=[*VIEW_ONLY, "feedback.change_sample"])
    assert offered_actions(client.get(CHANGELIST)) == {"approve", "reject", "reject_sources", *RELABELS}
    bulk(client, "relabel_3", samples[:1])
    bulk(client, "reject", samples[1:])
    assert as_stored(samples) == [(3, "approved"), (7, "rejected")]
    bulk(client, "approve", samples[1:])
    assert as_stored(samples)[1] == (7, "approved")
    assert "Content-Disposition" not in bulk(client, "export", samples)


def test_a_staff_user_with_export_sample_may_export_and_nothing_else(samples):
    client = logged_in(username="exporter", permissions=[*VIEW_ONLY, "feedback.export_sample"])
    assert offered_actions(client.get(CHANGELIST)) == {"export"}
    response = bulk(client, "export", samples)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"samples.csv" in b"".join(response.streaming_content)
    bulk(client, "approve", samples)
    assert as_stored(samples) == [(7, "new"), (7, "new")]

"""The review queue: its order (feedback.selectors.review_queue) and its JSON endpoints."""

import json

import numpy as np
import pytest
from django.contrib.auth.models import User

from feedback.models import Sample
from feedback.selectors import review_queue
from feedback.tests.factories import SampleFactory, staff_user
from recognizer.preprocessing import to_png

REVIEW = "/admin/feedback/sample/review/"
QUEUE = f"{REVIEW}queue/"
SAMPLES = f"{REVIEW}samples/"
DECIDE = f"{REVIEW}decide/"
SURE, UNSURE = 0.999, 0.6


def correction(guess=1, label=7, source="anon:honest", confidence=UNSURE, **fields) -> Sample:
    return SampleFactory(guess=guess, label=label, source=source, confidence=confidence, **fields)


@pytest.fixture
def reviewer(client, db):
    client.force_login(staff_user(username="reviewer", permissions=["feedback.view_sample", "feedback.change_sample"]))
    return client


@pytest.fixture
def csrf_reviewer(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user(username="careful", permissions=["feedback.view_sample", "feedback.change_sample"]))
    client.get(REVIEW)  # the page sets the csrftoken cookie
    return client


def post(client, body, **headers):
    return client.post(DECIDE, json.dumps(body), content_type="application/json", **headers)


def test_review_queue_holds_only_waiting_corrections_grouped_by_pair_and_source(db):
    a = correction(source="anon:a")
    b = correction(source="anon:b")
    a2 = correction(source="anon:a")
    correction(guess=7, label=7)  # a confirmed right guess: nothing to correct
    correction(status=Sample.Status.APPROVED)
    correction(status=Sample.Status.REJECTED)
    held = correction(guess=4, label=9, status=Sample.Status.NEEDS_REVIEW)

    groups = review_queue()
    assert {(g.guess, g.label, g.source): g.sample_ids for g in groups} == {
        (1, 7, "anon:a"): (a.pk, a2.pk),
        (1, 7, "anon:b"): (b.pk,),
        (4, 9, "anon:honest"): (held.pk,),
    }
    pair = next(g for g in groups if g.source == "anon:a")
    assert (pair.pair_sources, pair.pair_count) == (2, 3)


def test_review_queue_puts_bursts_then_sure_then_many_alike_then_widely_sent_pairs_first(db):
    oldest_plain = correction(guess=3, label=5, source="anon:plain")
    alike = [correction(guess=2, label=3, source="anon:alike") for _ in range(3)]
    widely = [correction(guess=6, label=0, source=f"anon:w{n}") for n in range(3)]
    sure = [correction(guess=1, label=7, source="anon:sure", confidence=SURE) for _ in range(2)]
    burst = correction(guess=4, label=9, source="anon:burst", confidence=SURE, status=Sample.Status.NEEDS_REVIEW)

    order = [(g.guess, g.label, g.source) for g in review_queue()]
    assert order == [
        (4, 9, "anon:burst"),  # held by the burst check: first, even alone
        (1, 7, "anon:sure"),  # the model was sure and was contradicted, twice
        (2, 3, "anon:alike"),  # three alike from one source
        (6, 0, "anon:w0"), (6, 0, "anon:w1"), (6, 0, "anon:w2"),  # one pair from three sources, oldest first
        (3, 5, "anon:plain"),
    ]  # fmt: skip
    assert burst and sure and alike and widely and oldest_plain


def test_review_queue_shows_a_groups_sure_corrections_first_surest_first(db):
    unsure = correction(confidence=UNSURE)
    surest = correction(confidence=0.9999)
    sure = correction(confidence=0.99)
    assert review_queue()[0].sample_ids == (surest.pk, sure.pk, unsure.pk)


def test_the_review_page_needs_the_change_permission(client, db):
    client.force_login(staff_user(username="viewer", permissions=["feedback.view_sample"]))
    assert client.get(REVIEW).status_code == 403
    answer = client.get(QUEUE)
    assert answer.status_code == 403 and "change samples" in answer.json()["message"]
    sample = correction()
    assert post(client, {"id": sample.pk, "decision": "approve"}).status_code == 403
    assert Sample.objects.get(pk=sample.pk).status == "new"
    # The list offers the queue only to those who may use it.
    assert "Review queue" not in client.get("/admin/feedback/sample/").content.decode()


def test_the_review_endpoints_refuse_a_signed_out_visitor_in_json(client, db):
    answer = client.get(QUEUE)
    assert answer.status_code == 403 and answer.json()["message"].startswith("Sign in")


def test_the_review_page_is_linked_from_the_sample_list(reviewer):
    html = reviewer.get("/admin/feedback/sample/").content.decode()
    assert f'href="{REVIEW}"' in html
    page = reviewer.get(REVIEW)
    assert page.status_code == 200 and 'id="review-config"' in page.content.decode()


def test_queue_data_lists_the_groups_with_their_reasons(reviewer):
    held = correction(source="anon:burst", confidence=SURE, status=Sample.Status.NEEDS_REVIEW)
    data = reviewer.get(QUEUE).json()
    assert data["count"] == 1
    (group,) = data["groups"]
    assert group["ids"] == [held.pk] and (group["guess"], group["label"]) == (1, 7)
    assert group["reasons"] == ["1 held as a burst", "the model was sure of 1 of 1"]


def test_samples_data_gives_the_drawing_at_its_own_size_and_the_input(reviewer):
    tall = np.full((300, 40), 255, np.uint8)  # a thin vertical 1's crop
    sample = correction(drawing=to_png(tall), strokes=None)
    (answer,) = reviewer.get(f"{SAMPLES}?ids={sample.pk}").json()["samples"]
    assert (answer["drawing_width"], answer["drawing_height"]) == (40, 300)
    assert answer["drawing"].startswith("data:image/png;base64,") and answer["input"].startswith("data:image/png;base64,")
    assert (answer["guess"], answer["label"], answer["status"]) == (1, 7, "new")


@pytest.mark.parametrize("query", ["", "?ids=", "?ids=1,x", "?ids=-1", f"?ids={','.join(['1'] * 51)}"])
def test_samples_data_with_bad_ids_is_refused_in_json(reviewer, query):
    answer = reviewer.get(f"{SAMPLES}{query}")
    assert answer.status_code == 400 and "ids" in answer.json()["message"]


def test_a_decision_approves_rejects_relabels_and_undo_puts_it_back(reviewer):
    sample = correction(status=Sample.Status.NEEDS_REVIEW)
    assert post(reviewer, {"id": sample.pk, "decision": "approve"}).json() == {"id": sample.pk, "label": 7, "status": "approved"}
    assert Sample.objects.get(pk=sample.pk).reviewed_at is not None
    assert post(reviewer, {"id": sample.pk, "decision": "reject"}).json()["status"] == "rejected"
    assert post(reviewer, {"id": sample.pk, "decision": "relabel", "label": 1}).json() == {"id": sample.pk, "label": 1, "status": "approved"}
    answer = post(reviewer, {"id": sample.pk, "decision": "undo", "label": 7, "status": "needs_review"})
    assert answer.json() == {"id": sample.pk, "label": 7, "status": "needs_review"}
    assert Sample.objects.get(pk=sample.pk).reviewed_at is None


@pytest.mark.parametrize(
    "body, message",
    [
        ({"decision": "approve"}, "id must be a whole number"),
        ({"id": "1", "decision": "approve"}, "id must be a whole number"),
        ({"id": 0, "decision": "maybe"}, "decision must be"),
        ({"id": 0, "decision": "relabel", "label": 11}, "label"),
        ({"id": 0, "decision": "relabel"}, "label must be a whole number"),
        ({"id": 0, "decision": "undo", "label": 7, "status": "approved"}, "new or needs_review"),
        ({"ids": [], "decision": "approve"}, "ids must be a list"),
        ({"ids": [0], "decision": "relabel"}, "approve or reject"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_decision_is_refused_in_json_and_changes_nothing(reviewer, body, message):
    sample = correction()
    body = json.loads(json.dumps(body).replace('"id": 0', f'"id": {sample.pk}').replace("[0]", f"[{sample.pk}]"))
    answer = post(reviewer, body)
    assert answer.status_code == 400 and message in answer.json()["message"], answer.json()
    assert Sample.objects.get(pk=sample.pk).status == "new"


def test_a_decision_on_a_missing_sample_or_not_json_is_a_4xx_in_json(reviewer):
    assert post(reviewer, {"id": 999_999, "decision": "approve"}).status_code == 404
    answer = reviewer.post(DECIDE, "{not json", content_type="application/json")
    assert answer.status_code == 400 and answer.json()["message"] == "the body must be JSON"


def test_a_decision_needs_the_csrf_token(csrf_reviewer):
    sample = correction()
    refused = post(csrf_reviewer, {"id": sample.pk, "decision": "approve"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    assert Sample.objects.get(pk=sample.pk).status == "new"
    token = csrf_reviewer.cookies["csrftoken"].value
    assert post(csrf_reviewer, {"id": sample.pk, "decision": "approve"}, HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Sample.objects.get(pk=sample.pk).status == "approved"


def test_a_group_decision_changes_only_the_groups_waiting_samples(reviewer):
    waiting = [correction(source="anon:x") for _ in range(3)]
    decided = correction(source="anon:x", status=Sample.Status.REJECTED)
    other = correction(source="anon:y")
    answer = post(reviewer, {"ids": [s.pk for s in [*waiting, decided]], "decision": "approve"})
    assert answer.json() == {"count": 3, "status": "approved"}
    statuses = dict(Sample.objects.values_list("pk", "status"))
    assert [statuses[s.pk] for s in waiting] == ["approved"] * 3
    assert (statuses[decided.pk], statuses[other.pk]) == ("rejected", "new")


def test_a_superuser_may_review(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    assert client.get(QUEUE).status_code == 200


def test_the_sample_list_shows_a_tall_drawing_tall_within_its_box(reviewer):
    correction(drawing=to_png(np.full((300, 40), 255, np.uint8)))
    html = reviewer.get("/admin/feedback/sample/").content.decode()
    assert 'width="6" height="48" class="sample-image"' in html

"""What one correction may cost: the points kept, the bytes stored, a full disk told apart."""

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from digitsite.storage import disk_full_clear
from feedback.models import Sample
from recognizer.fields import MAX_KEPT_POINTS, MAX_POINTS
from recognizer.tests.drawings import as_json, strokes
from testing.worst_drawing import stored_bytes, worst_strokes

FEEDBACK = "/api/feedback/"


@pytest.fixture
def api(db):
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def disk_state():
    disk_full_clear()
    yield
    disk_full_clear()


@pytest.mark.parametrize("spread", [400, 19_999.8])
def test_the_worst_drawing_accepted_is_stored_in_at_most_20_kb(api, spread):
    response = api.post(FEEDBACK, {"strokes": worst_strokes(spread=spread), "label": 3}, format="json")
    assert response.status_code == 201, response.content
    sample = Sample.objects.get()
    assert sum(len(stroke) for stroke in sample.strokes) == MAX_KEPT_POINTS  # none could be dropped
    assert sum(stored_bytes(sample).values()) <= 20_000


def test_points_a_fast_pointer_sends_along_a_path_are_dropped_before_storing(api):
    # 20 points between each of a 4's corners: a pointer faster than the page's usual.
    posted = as_json([np.concatenate([np.linspace(a, b, 20, endpoint=False) for a, b in zip(s[:-1], s[1:])] + [s[-1:]]) for s in strokes(4)])
    response = api.post(FEEDBACK, {"strokes": posted, "label": 4}, format="json")
    assert response.status_code == 201, response.content
    assert sum(len(stroke) for stroke in Sample.objects.get().strokes) == 4


def test_strokes_that_keep_more_points_than_the_limit_are_refused_naming_it(api):
    posted = worst_strokes()
    posted[0].append([5.5, 390.5])  # one more point that cannot be dropped
    response = api.post(FEEDBACK, {"strokes": posted, "label": 3}, format="json")
    assert response.status_code == 400
    assert f"more than {MAX_KEPT_POINTS} points" in response.json()["message"]
    assert Sample.objects.count() == 0


def test_strokes_with_more_points_sent_than_the_limit_are_refused_naming_it(api):
    posted = [[[i % 400, (i * 7) % 400] for i in range(MAX_POINTS + 1)]]
    response = api.post(FEEDBACK, {"strokes": posted, "label": 3}, format="json")
    assert response.status_code == 400
    assert f"{MAX_POINTS:,} points" in response.json()["message"]


@pytest.mark.skipif(not settings.EMBEDDED_DB, reason="fills SQLite's file with max_page_count")
def test_a_full_disk_answers_507_keeps_what_was_stored_and_health_says_degraded_until_a_write_succeeds(api, disk_state):
    first = api.post(FEEDBACK, {"strokes": as_json(strokes(7)), "label": 7}, format="json")
    assert first.status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        # The database may not grow by a page: SQLite fails the insert as a full disk does.
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    try:
        full = api.post(FEEDBACK, {"strokes": worst_strokes(), "label": 3}, format="json")
        assert full.status_code == 507, full.content
        assert "disk is full" in full.json()["message"]
        health = api.get("/api/health/").json()
        assert health["status"] == "degraded" and "disk is full" in health["problem"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 1073741823")
    assert list(Sample.objects.values_list("pk", flat=True)) == [first.json()["id"]]  # nothing lost
    assert api.post(FEEDBACK, {"strokes": as_json(strokes(4)), "label": 4}, format="json").status_code == 201
    assert api.get("/api/health/").json()["status"] == "ok"

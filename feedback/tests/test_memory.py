"""A person's own corrections answer their next similar drawing at once (recognizer.memory,
issue 40), and nobody else's. The real shipped model reads real pen digits (the pen guard set
shipped with the code): one it misreads is corrected, then drawn again a little elsewhere."""

import contextlib
import functools
import uuid
from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from recognizer.memory import PLAUSIBLE, REASON
from recognizer.models import MemoryState, RememberedCorrection
from recognizer.pen_digits import pen_digits_strokes
from recognizer.services import digit_predict

PREDICT, FEEDBACK = "/api/predict/", "/api/feedback/"


@pytest.fixture
def misread(db):
    """A real pen digit the net misreads, with two labels other than its guess that the net finds
    plausible (the true one, then another): (strokes, guess, true label, other label)."""
    return _misread()


@functools.cache
def _misread():
    drawings, labels = pen_digits_strokes()
    for strokes, label in zip(drawings, labels):
        answer = digit_predict(strokes=strokes)
        plausible = [k for k in np.argsort(answer.probabilities)[::-1] if k not in (answer.digit, label) and answer.probabilities[k] >= PLAUSIBLE]
        if answer.digit is not None and answer.digit != label and answer.probabilities[label] >= PLAUSIBLE and plausible:
            return [s.tolist() for s in strokes], answer.digit, int(label), int(plausible[0])
    raise AssertionError("the pen guard set has no such drawing")


def moved(strokes, dx: float = 17, dy: float = -11) -> list:
    """The same digit drawn again a little elsewhere on the pad."""
    return [[[x + dx, y + dy] for x, y in stroke] for stroke in strokes]


def browser(user=None) -> APIClient:
    """A browser that loaded the page (csrftoken cookie, sent back as X-CSRFToken), signed in as `user`."""
    client = APIClient(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get("/")
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


def guess(client: APIClient, strokes) -> dict:
    response = client.post(PREDICT, {"strokes": strokes}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def correct(client: APIClient, strokes, label: int) -> dict:
    response = client.post(FEEDBACK, {"strokes": strokes, "label": label, "client_id": str(uuid.uuid4())}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_correction_changes_the_next_similar_guess_of_that_session_and_not_another_sessions(db, misread):
    strokes, net_guess, label, _ = misread
    me, someone_else = browser(), browser()
    before = guess(someone_else, moved(strokes))
    assert before["digit"] == net_guess and before["reason"] is None
    stored = correct(me, strokes, label)
    mine = guess(me, moved(strokes))
    assert (mine["digit"], mine["reason"], mine["correction"], mine["sure"]) == (label, REASON, stored["id"], True)
    assert mine["hint"] == "Like the one you corrected."
    assert guess(someone_else, moved(strokes)) == before  # exactly the net's answer, as before the correction


def test_a_strangers_answer_is_exactly_the_nets(db, misread, settings):
    strokes, _, label, _ = misread
    correct(browser(), strokes, label)
    stranger = guess(APIClient(), moved(strokes))  # no cookies at all
    settings.MEMORY = False
    assert stranger == guess(APIClient(), moved(strokes))
    assert stranger["reason"] is None and stranger["correction"] is None


def test_a_taken_back_correction_no_longer_changes_anything(db, misread):
    strokes, net_guess, label, _ = misread
    me = browser()
    stored = correct(me, strokes, label)
    assert guess(me, moved(strokes))["digit"] == label
    assert me.delete(f"{FEEDBACK}{stored['client_id']}/").status_code == 204
    after = guess(me, moved(strokes))
    assert (after["digit"], after["reason"], after["correction"]) == (net_guess, None, None)
    assert not RememberedCorrection.objects.exists()


def test_a_changed_answer_answers_with_the_new_label(db, misread):
    strokes, net_guess, label, other = misread
    me = browser()
    stored = correct(me, strokes, label)
    assert guess(me, moved(strokes))["digit"] == label  # its features now kept by this process
    assert me.patch(f"{FEEDBACK}{stored['client_id']}/", {"label": other}, format="json").status_code == 200
    assert (guess(me, moved(strokes))["digit"], guess(me, moved(strokes))["reason"]) == (other, REASON)
    # Changed to what the net said: nothing left to correct, the net's answer stands.
    me.patch(f"{FEEDBACK}{stored['client_id']}/", {"label": net_guess}, format="json")
    assert (guess(me, moved(strokes))["digit"], guess(me, moved(strokes))["reason"]) == (net_guess, None)


def test_a_confirmation_changed_into_a_correction_is_remembered_from_then(db, misread):
    strokes, net_guess, label, _ = misread
    me = browser()
    stored = correct(me, strokes, net_guess)
    assert guess(me, moved(strokes))["reason"] is None
    assert me.patch(f"{FEEDBACK}{stored['client_id']}/", {"label": label}, format="json").status_code == 200
    assert (guess(me, moved(strokes))["digit"], guess(me, moved(strokes))["correction"]) == (label, stored["id"])


def test_a_forged_memory_hint_or_session_cookie_finds_nothing(db, misread):
    strokes, net_guess, label, _ = misread
    me = browser()
    correct(me, strokes, label)
    forger = APIClient()
    forger.cookies["digitsite_memory"] = "anon"
    forger.cookies["sessionid"] = "x" * 32
    assert guess(forger, moved(strokes))["digit"] == net_guess
    forger.cookies["digitsite_memory"] = "user"
    assert guess(forger, moved(strokes))["digit"] == net_guess
    # The right session cookie from another address is another source too.
    thief = APIClient(REMOTE_ADDR="10.9.8.7")
    thief.cookies["digitsite_memory"], thief.cookies["sessionid"] = "anon", me.cookies["sessionid"].value
    assert guess(thief, moved(strokes))["digit"] == net_guess
    assert guess(me, moved(strokes))["digit"] == label


def test_a_signed_in_user_is_remembered_across_sessions(db, misread, django_user_model):
    strokes, _, label, _ = misread
    user = django_user_model.objects.create_user("writer", password="x")
    first, second = browser(user), browser(user)
    correct(first, strokes, label)
    assert guess(second, moved(strokes))["reason"] == REASON
    assert guess(browser(), moved(strokes))["reason"] is None  # the same machine, not signed in


def test_a_confirmation_is_not_remembered(db, misread):
    strokes, net_guess, _, _ = misread
    me = browser()
    correct(me, strokes, net_guess)
    assert not RememberedCorrection.objects.exists()
    assert guess(me, moved(strokes))["reason"] is None


def test_the_memory_keeps_a_sources_newest_corrections_of_the_last_hours(db, misread, settings):
    strokes, _, label, _ = misread
    settings.MEMORY_SIZE = 2
    me = browser()
    first = correct(me, strokes, label)
    correct(me, moved(strokes, 40, 40), label)
    correct(me, moved(strokes, -40, 30), label)
    assert sorted(RememberedCorrection.objects.values_list("sample_id", flat=True)) == sorted(
        set(RememberedCorrection.objects.values_list("sample_id", flat=True)) - {first["id"]}
    ) and RememberedCorrection.objects.count() == 2
    RememberedCorrection.objects.update(created_at=timezone.now() - timedelta(hours=settings.MEMORY_HOURS + 1))
    assert guess(me, moved(strokes))["reason"] is None


def test_a_guess_from_a_sender_with_corrections_reads_their_rows_once_and_then_only_their_version(db, misread):
    strokes, _, label, other = misread
    me = browser()
    correct(me, strokes, label)
    stored = correct(me, moved(strokes, 40, 5), label)

    def memory_reads(reason: str | None = REASON) -> tuple[list[str], list[str]]:
        with CaptureQueriesContext(connection) as queries:
            assert guess(me, moved(strokes))["reason"] == reason
        sql = [query["sql"] for query in queries]
        return [q for q in sql if MemoryState._meta.db_table in q], [q for q in sql if RememberedCorrection._meta.db_table in q]

    versions, rows = memory_reads()
    # the version, the source's rows (and when the oldest leaves the window), then their features
    assert len(versions) == 1 and len(rows) == 3 and "features" in rows[-1] and not any("features" in q for q in rows[:-1])
    versions, rows = memory_reads()
    assert len(versions) == 1 and rows == []  # nothing changed: the version alone
    # A change raises the version: the rows are read again (their features are kept already).
    assert me.patch(f"{FEEDBACK}{stored['client_id']}/", {"label": other}, format="json").status_code == 200
    versions, rows = memory_reads()
    assert len(versions) == 1 and len(rows) == 2 and not any("features" in q for q in rows)
    versions, rows = memory_reads()
    assert len(versions) == 1 and rows == []


def test_a_kept_memory_is_read_again_once_its_oldest_correction_leaves_the_window(db, misread, settings):
    strokes, net_guess, label, _ = misread
    me = browser()
    correct(me, strokes, label)
    assert guess(me, moved(strokes))["reason"] == REASON  # kept by this process now
    later = timezone.now() + timedelta(hours=settings.MEMORY_HOURS, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert guess(me, moved(strokes))["digit"] == net_guess


def test_a_write_forgets_anyones_drawings_past_the_window_and_a_sender_who_comes_back_starts_afresh(db, misread, settings):
    strokes, net_guess, label, _ = misread
    me, someone_else = browser(), browser()
    correct(me, strokes, label)
    assert guess(me, moved(strokes))["reason"] == REASON  # kept by this process now
    mine = RememberedCorrection.objects.get().source
    version = MemoryState.objects.get(source=mine).version
    RememberedCorrection.objects.update(created_at=timezone.now() - timedelta(hours=settings.MEMORY_HOURS, minutes=1))
    correct(someone_else, moved(strokes, 40, 5), label)  # anyone's write
    assert not RememberedCorrection.objects.filter(source=mine).exists() and not MemoryState.objects.filter(source=mine).exists()
    assert RememberedCorrection.objects.count() == 1  # the other sender's new one
    assert guess(me, moved(strokes))["digit"] == net_guess
    stored = correct(me, strokes, label)
    assert MemoryState.objects.get(source=mine).version > version  # made anew from the clock: never the one this process kept
    assert guess(me, moved(strokes))["correction"] == stored["id"]


def test_corrections_read_by_another_graph_are_compared_by_features_this_graph_makes(db, misread):
    strokes, _, label, _ = misread
    me = browser()
    stored = correct(me, strokes, label)
    # As if another version or variant (another processor) had read it: its features mean nothing here.
    RememberedCorrection.objects.update(features=np.full(128, 9.0, np.float32).tobytes(), features_of="other-version int8-w8")
    assert guess(me, moved(strokes))["correction"] == stored["id"]


def test_the_switch_turns_the_memory_off(db, misread, settings):
    strokes, net_guess, label, _ = misread
    settings.MEMORY = False
    me = browser()
    correct(me, strokes, label)
    assert not RememberedCorrection.objects.exists()
    assert guess(me, moved(strokes))["digit"] == net_guess


@contextlib.contextmanager
def two_web_processes(tmp_path):
    """Two gunicorns of one worker each on one database of their own, as two web machines: their
    URLs, and a browser's post(url, path, body, method="POST") (its cookies go to 127.0.0.1 whatever the port,
    with its CSRF token) and a stranger's (no cookies)."""
    import http.cookiejar
    import json
    import secrets
    import urllib.request

    from django.conf import settings

    from recognizer.tests.test_servers_switch import a_database_of_its_own
    from testing.server import running_gunicorn

    def sender(opener, jar):
        def post(url: str, path: str, body: dict | None, method: str = "POST") -> dict:
            token = next((c.value for c in jar if c.name == "csrftoken"), "") if jar is not None else ""
            headers = {"Content-Type": "application/json", "X-CSRFToken": token, "Referer": url + "/"}
            data = None if body is None else json.dumps(body).encode()
            with opener.open(urllib.request.Request(url + path, data, headers, method=method), timeout=30) as answer:
                return json.loads(answer.read() or b"{}")

        return post

    with a_database_of_its_own(tmp_path) as database_url, contextlib.ExitStack() as stack:
        env = {
            "DATABASE_URL": database_url, "DIGITSITE_SECRET_KEY": secrets.token_urlsafe(50), "DIGITSITE_CACHE_URL": settings.CACHE_URL,
            "DIGITSITE_VAR_DIR": str(tmp_path), "DIGITSITE_ACCESS_LOG": "off",
        }  # fmt: skip
        first, second = (stack.enter_context(running_gunicorn(env, args=("-w", "1")))[0] for _ in range(2))
        jar = http.cookiejar.CookieJar()
        me = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        me.open(first + "/", timeout=30).read()
        yield first, second, sender(me, jar), sender(urllib.request.build_opener(), None)


@pytest.mark.django_db(transaction=True)
def test_two_web_processes_on_one_database_give_the_same_answer_from_one_senders_memory(tmp_path):
    strokes, net_guess, label, _ = _misread()
    with two_web_processes(tmp_path) as (first, second, mine, strangers):
        stored = mine(first, "/api/feedback/", {"strokes": strokes, "label": label, "client_id": str(uuid.uuid4())})
        answers = [mine(url, "/api/predict/", {"strokes": moved(strokes)}) for url in (first, second)]
        assert [(a["digit"], a["reason"], a["correction"]) for a in answers] == [(label, REASON, stored["id"])] * 2
        assert strangers(second, "/api/predict/", {"strokes": moved(strokes)})["digit"] == net_guess
        # Taken back through one, forgotten by both at once: each kept what it read, under a version the take-back raised.
        mine(first, f"/api/feedback/{stored['client_id']}/", None, method="DELETE")
        answers = [mine(url, "/api/predict/", {"strokes": moved(strokes)}) for url in (second, first)]
        assert [(a["digit"], a["reason"], a["correction"]) for a in answers] == [(net_guess, None, None)] * 2


def test_a_correction_a_reviewer_rejects_no_longer_changes_anything(db, misread):
    from feedback.models import Sample
    from feedback.services import sample_review

    strokes, net_guess, label, _ = misread
    me = browser()
    correct(me, strokes, label)
    assert guess(me, moved(strokes))["digit"] == label
    sample_review(samples=Sample.objects.all(), status=Sample.Status.REJECTED)
    after = guess(me, moved(strokes))
    assert (after["digit"], after["reason"]) == (net_guess, None) and not RememberedCorrection.objects.exists()


def test_rejecting_a_sender_whole_forgets_all_it_taught_the_memory(db, misread):
    from feedback.models import Sample
    from feedback.services import sample_reject_sources

    strokes, net_guess, label, _ = misread
    me, other = browser(), browser()
    correct(me, strokes, label)
    correct(other, strokes, label)
    assert guess(me, moved(strokes))["digit"] == label  # kept by this process now
    source = Sample.objects.order_by("pk").first().source
    sample_reject_sources(sources=[source])
    assert guess(me, moved(strokes))["digit"] == net_guess
    assert guess(other, moved(strokes))["digit"] == label  # the other sender keeps its own

"""Every sample records where it came from: the signed-in user, else a keyed hash of the client's
address and session, never the address. The admin filters, searches and rejects by source."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils.crypto import salted_hmac
from rest_framework.test import APIClient

from digitsite.clients import SOURCE_KEY_SALT, client_source
from feedback.models import Sample
from feedback.services import sample_create
from feedback.tests.factories import SampleFactory, offered_actions, staff_user
from recognizer.preprocessing import decode_data_url
from recognizer.tests.drawings import drawn

FEEDBACK = "/api/feedback/"
CHANGELIST = "/admin/feedback/sample/"
ANONYMOUS = re.compile(r"^anon:[0-9a-f]{32}$")


@pytest.fixture
def api(db):
    return APIClient()


def source_of(client: APIClient, **extra) -> str:
    response = client.post(FEEDBACK, {"image": drawn(7), "label": 7}, format="json", **extra)
    assert response.status_code == 201, response.content
    return Sample.objects.get(pk=response.json()["id"]).source


# -- who a sample came from ---------------------------------------------------------------------


def test_an_anonymous_source_is_a_hash_that_does_not_hold_the_address(api):
    source = source_of(api, REMOTE_ADDR="203.0.113.77")
    assert ANONYMOUS.match(source), source
    assert "203.0.113.77" not in source
    assert Sample.objects.get().user is None


def test_one_browser_keeps_one_source_across_corrections(api):
    first = source_of(api)
    assert "sessionid" in api.cookies  # the session made for it is sent back
    assert source_of(api) == first


def test_two_sessions_from_one_address_are_two_sources(db):
    assert source_of(APIClient()) != source_of(APIClient())


def test_one_session_from_two_addresses_is_two_sources(api):
    assert source_of(api, REMOTE_ADDR="10.0.0.1") != source_of(api, REMOTE_ADDR="10.0.0.2")


def test_a_client_that_drops_its_cookies_is_a_new_source_each_time(api):
    first = source_of(api)
    api.cookies.clear()
    assert source_of(api) != first


def test_the_hash_is_keyed_by_the_secret_key(rf, settings, db):
    request = rf.post(FEEDBACK, REMOTE_ADDR="10.0.0.9")
    request.session = SessionStore()
    request.session["anything"] = 1
    request.session.save()
    kept = client_source(request)
    expected = salted_hmac(SOURCE_KEY_SALT, f"10.0.0.9|{request.session.session_key}", algorithm="sha256")
    assert kept == "anon:" + expected.hexdigest()[:32]
    settings.SECRET_KEY = "another-secret-key-entirely-" + "x" * 30
    assert client_source(request) != kept


def test_a_forged_x_forwarded_for_does_not_change_the_source_by_default(api):
    first = source_of(api, HTTP_X_FORWARDED_FOR="10.1.1.1")
    assert source_of(api, HTTP_X_FORWARDED_FOR="10.2.2.2") == first


def test_behind_a_trusted_proxy_the_source_is_the_address_the_proxy_names(api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy appends the address it saw; what the client wrote before it, or the proxy's own
    # address, does not count.
    first = source_of(api, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.5", REMOTE_ADDR="10.0.0.1")
    assert source_of(api, HTTP_X_FORWARDED_FOR="2.2.2.2, 203.0.113.5", REMOTE_ADDR="10.0.0.2") == first
    assert source_of(api, HTTP_X_FORWARDED_FOR="203.0.113.6", REMOTE_ADDR="10.0.0.1") != first
    session_key = api.cookies["sessionid"].value
    expected = salted_hmac(SOURCE_KEY_SALT, f"203.0.113.5|{session_key}", algorithm="sha256").hexdigest()[:32]
    assert first == f"anon:{expected}"


def test_a_signed_in_user_is_the_source_and_the_sample_keeps_the_user(api):
    user = User.objects.create_user("drawer", password="a-long-password-42")
    api.force_login(user)
    assert source_of(api) == f"user:{user.pk}"
    assert Sample.objects.get().user == user


def test_a_sample_made_without_a_request_has_an_unknown_source(db):
    sample = sample_create(image=decode_data_url(drawn(7)), label=7)
    assert sample.source == "" and sample.user is None


# -- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    return client


@pytest.fixture
def sourced(db):
    """Three senders and a command: a sends 3, b 2, c 1; one sample has no source."""
    made = {}
    for source, count in [("anon:" + "a" * 32, 3), ("anon:" + "b" * 32, 2), ("user:7", 1), ("", 1)]:
        made[source] = [SampleFactory(guess=1, label=7, source=source) for _ in range(count)]
    return made


A, B = "anon:" + "a" * 32, "anon:" + "b" * 32


@pytest.mark.parametrize(
    "query, expected",
    [
        (f"source={A}", 3), (f"source={B}", 2), ("source=user:7", 1), ("source=unknown", 1),
        ("q=anon:aaaa", 3), (f"q={B}", 2), ("q=user:7", 1), ("q=anon:", 5), ("q=anon:c", 0),
        (f"source={A}&q=anon:b", 0),
    ],
)  # fmt: skip
def test_sample_list_filters_and_searches_by_source(admin_client, sourced, query, expected):
    response = admin_client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_sample_list_shows_each_sources_start_linked_to_its_samples(admin_client, sourced):
    html = admin_client.get(CHANGELIST).content.decode()
    assert html.count(f'<a href="{CHANGELIST}?source=anon%3A{"a" * 32}" title="{A}">anon:aaaaaaaa…</a>') == 3
    assert html.count(f'title="{B}">anon:bbbbbbbb…</a>') == 2
    assert "Source" in html


def test_source_filter_offers_the_busiest_sources_with_their_counts(admin_client, sourced):
    html = admin_client.get(CHANGELIST).content.decode()
    assert "anon:aaaaaaaa… (3)" in html and "anon:bbbbbbbb… (2)" in html and "user:7 (1)" in html
    assert html.index("anon:aaaaaaaa… (3)") < html.index("anon:bbbbbbbb… (2)")


def test_rejecting_by_source_rejects_every_sample_of_the_selected_sources_and_no_other(admin_client, sourced):
    already = SampleFactory(guess=1, label=7, source=A, status=Sample.Status.APPROVED)
    chosen = [sourced[A][0], sourced["user:7"][0], sourced[""][0]]
    response = admin_client.post(
        CHANGELIST, {"action": "reject_sources", "_selected_action": [s.pk for s in chosen]}, follow=True
    )
    assert "5 sample(s) rejected from 2 source(s). Samples of unknown source were left alone." in response.content.decode()
    status = dict(Sample.objects.values_list("pk", "status"))
    assert {status[s.pk] for s in [*sourced[A], already, *sourced["user:7"]]} == {"rejected"}
    assert {status[s.pk] for s in [*sourced[B], *sourced[""]]} == {"new"}


def test_a_samples_page_lists_its_sources_other_samples(admin_client, db):
    mine = [SampleFactory(guess=1, label=7, source=A) for _ in range(25)]
    SampleFactory(guess=1, label=7, source=B)
    sample = mine[0]
    html = admin_client.get(f"{CHANGELIST}{sample.pk}/change/").content.decode()
    assert "24 other sample(s)" in html
    links = set(re.findall(rf'href="{CHANGELIST}(\d+)/change/">#\d+ \(7 guessed 1, new\)', html))
    newest_first = sorted((s.pk for s in mine[1:]), reverse=True)[:20]
    assert links == {str(pk) for pk in newest_first}
    assert f'<a href="{CHANGELIST}?source=anon%3A{"a" * 32}">all of this source\'s samples</a>' in html
    assert A in html


def test_a_samples_page_of_unknown_source_says_so(admin_client, sourced):
    html = admin_client.get(f"{CHANGELIST}{sourced[''][0].pk}/change/").content.decode()
    assert "unknown source (made by a command, not sent through the site)" in html


# -- permissions --------------------------------------------------------------------------------


def test_every_admin_action_of_the_sites_apps_names_the_permissions_it_needs():
    ours = {"feedback", "training", "recognizer"}
    missing = [
        f"{model.__name__}.{name}"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in ours
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert missing == []
    sample_actions = {name: func for func, name, _ in admin.site._registry[Sample]._get_base_actions()}
    assert tuple(sample_actions["reject_sources"].allowed_permissions) == ("change",)


def test_a_view_only_staff_user_is_not_offered_rejecting_by_source_and_cannot_post_it(sourced):
    client = Client()
    client.force_login(staff_user(username="viewer", permissions=["feedback.view_sample"]))
    assert "reject_sources" not in offered_actions(client.get(CHANGELIST))
    client.post(CHANGELIST, {"action": "reject_sources", "_selected_action": [sourced[A][0].pk]})
    assert not Sample.objects.filter(status=Sample.Status.REJECTED).exists()


def test_a_forged_session_cookie_is_not_a_source_of_its_own(api):
    api.cookies["sessionid"] = "forgedforgedforgedforgedforged12"
    first = source_of(api)
    assert api.cookies["sessionid"].value != "forgedforgedforgedforgedforged12"  # a real session instead
    api.cookies["sessionid"] = "forgedforgedforgedforgedforged12"
    assert source_of(api) != first

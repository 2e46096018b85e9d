"""The admin's login is throttled by client address (django-axes): after DIGITSITE_LOGIN_FAILURES
wrong passwords an address may not log in until the cool-off has passed; other addresses may.
The address is read as the rate limits read it (digitsite.clients)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

LOGIN = "/admin/login/"
PASSWORD = "a-long-password-42"


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(password: str, **address):
    client = Client()
    response = client.post(LOGIN, {"username": "admin", "password": password, "next": "/admin/"}, **address)
    return response, "_auth_user_id" in client.session


def fail(times: int, **address) -> None:
    for _ in range(times):
        response, logged_in = log_in("wrong-password", **address)
        assert response.status_code in (200, 429) and not logged_in


def test_the_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == timedelta(minutes=15)


@pytest.mark.parametrize(("failures", "minutes", "expected"), [("3", "2.5", "3 0:02:30"), ("0", "0", "1 0:01:00")])
def test_the_limit_and_the_cool_off_come_from_the_environment_never_below_one(failures, minutes, expected):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DIGITSITE_LOGIN_FAILURES": failures, "DIGITSITE_LOGIN_COOLOFF_MINUTES": minutes}
    code = "from digitsite import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    read = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert read.stdout.strip() == expected, read.stderr


def test_five_wrong_passwords_lock_the_address_out_even_with_the_right_one(admin_user):
    fail(5, REMOTE_ADDR="203.0.113.5")
    response, logged_in = log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 429 and not logged_in
    page = response.content.decode()
    assert "Too many failed logins from your address" in page and "15 minutes" in page
    assert response["Retry-After"] == str(15 * 60)
    # A header the client wrote itself is no way out: without trusted proxies only the socket counts.
    assert not log_in(PASSWORD, REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="198.51.100.1")[1]


def test_four_wrong_passwords_do_not_lock_the_address_out(admin_user):
    fail(4, REMOTE_ADDR="203.0.113.5")
    response, logged_in = log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 302 and logged_in


def test_another_address_still_logs_in_while_one_is_locked_out(admin_user):
    fail(5, REMOTE_ADDR="203.0.113.5")
    response, logged_in = log_in(PASSWORD, REMOTE_ADDR="203.0.113.6")
    assert response.status_code == 302 and response["Location"] == "/admin/" and logged_in


def test_the_address_logs_in_again_after_the_cool_off(admin_user):
    fail(5, REMOTE_ADDR="203.0.113.5")
    assert not log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")[1]
    # The failures (and the refused attempt) as if made 16 minutes ago.
    moved = AccessAttempt.objects.filter(ip_address="203.0.113.5")
    assert moved.update(attempt_time=moved.get().attempt_time - timedelta(minutes=16)) == 1
    response, logged_in = log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 302 and logged_in


def test_an_attempt_during_the_lockout_starts_the_wait_again(admin_user):
    fail(5, REMOTE_ADDR="203.0.113.5")
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=10))
    assert log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")[0].status_code == 429  # at 10 minutes: too soon
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=10))
    assert log_in(PASSWORD, REMOTE_ADDR="203.0.113.5")[0].status_code == 429  # 10 minutes after that one


def test_behind_a_trusted_proxy_each_client_behind_it_is_counted_on_its_own(admin_user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    fail(5, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert log_in(PASSWORD, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")[0].status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.5"
    assert log_in(PASSWORD, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.6")[1]


@pytest.mark.parametrize("proxies", [0, 1, 2])
@pytest.mark.parametrize("forwarded", [None, "203.0.113.5", "198.51.100.1, 203.0.113.5"])
def test_logins_metrics_and_rate_limits_read_one_client_address(settings, rf, proxies, forwarded):
    from axes.helpers import get_client_ip_address
    from rest_framework.throttling import ScopedRateThrottle

    from digitsite.clients import client_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}))
    expected = "127.0.0.1" if not proxies or not forwarded else forwarded.split(", ")[-min(proxies, len(forwarded.split(", ")))]
    assert client_address(request) == ScopedRateThrottle().get_ident(request) == get_client_ip_address(request) == expected

"""Fixtures for every app's tests."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from recognizer.memory import memory_kept_forget
from recognizer.serving import active_model_forget

SHARED_MNIST = Path(settings.BASE_DIR).parent / "shared" / "mnist" / "MNIST"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Tests get a database file, as the site has, not SQLite's shared memory: its locks (and
    busy timeout) then behave as in production. On PostgreSQL (DATABASE_URL) pytest-django's
    own test database is made beside the site's."""
    # Live servers' threads would otherwise keep their connections a minute, and PostgreSQL
    # refuses to drop a test database that someone is still connected to.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    if not settings.EMBEDDED_DB:
        return
    test = settings.DATABASES["default"].setdefault("TEST", {})
    test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


def pytest_collection_modifyitems(items):
    """Every test may ask for the active model, whose version lives in the database."""
    for item in items:
        if not item.get_closest_marker("django_db") and not {"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(autouse=True)
def isolated_models(settings, tmp_path):
    """Each test publishes into its own model folder and the test database; the shipped model
    serves until it does. Every request checks the active version (not once a second), so a
    test sees an activation at once."""
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_CHECK_S = 0
    # The active-version hint in a shared cache is written when an activation commits, which a
    # test inside a transaction never does; the processes in test_servers_switch use it.
    settings.CACHE_URL = ""
    active_model_forget()
    cache.clear()  # throttle counters
    memory_kept_forget()  # features kept by remembered rows' ids, which a rolled-back test gives again
    yield settings.MODEL_DIR
    active_model_forget()


@pytest.fixture
def page_client(db):
    """A browser that loaded the page: it holds the csrftoken cookie and sends it as X-CSRFToken."""
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.get("/")
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data folder holding MNIST: the project's own, else a copy of ../shared, else downloaded."""
    own = Path(settings.MNIST_DIR)
    if (own / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists():
        return own
    folder = tmp_path_factory.mktemp("data")
    if SHARED_MNIST.exists():
        shutil.copytree(SHARED_MNIST, folder / "MNIST")
    return folder  # training.nn.data downloads MNIST here when it is missing


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from testing.browser import launch

    # Playwright's sync API runs an event loop in this thread; Django would take the tests'
    # own database calls for calls from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
        # While that loop runs, Django keeps this thread's connections apart from those it had
        # before (asgiref stores them per async context); close them before the loop goes, or
        # the one opened meanwhile outlives the tests and PostgreSQL cannot drop the test database.
        from django.db import connections

        connections.close_all()


def _open_page(browser, url: str, **options):
    context = browser.new_context(**options)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(url)
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
def page(browser, live_server):
    """The page on a laptop's screen, with a mouse."""
    yield from _open_page(browser, live_server.url, viewport={"width": 1280, "height": 800})


@pytest.fixture
def phone(browser, live_server):
    """The page on a 390x844 phone, with a touch screen."""
    yield from _open_page(browser, live_server.url, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The suite's Redis (DIGITSITE_CACHE_URL, as .ci/run sets it), else a redis-server started
    here on a free port of 127.0.0.1, with nothing kept on disk."""
    import subprocess
    import time

    if settings.CACHE_URL:
        yield settings.CACHE_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server (Debian's redis-server; .ci/run installs it)")
    from testing.server import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)

"""Several web machines on one database, with no shared disk: a model activated anywhere serves
everywhere within 2 s, and so does a rollback."""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager

import pytest
from django.conf import settings
from django.db import connection

from recognizer.modelfile import model_load
from recognizer.servingform import serving_form_from_bytes
from testing.server import ROOT, running_gunicorn

# A third process publishes a candidate, as a training machine's train_digits would.
PUBLISH = (
    "from recognizer.publishing import model_publish; from recognizer.tests.versions import tiny_net; "
    "model_publish(net=tiny_net(5), metadata={'version': '%s', 'trained_at': '2099-01-01'}, activate=False)"
)


@contextmanager
def a_database_of_its_own(tmp_path):
    """A fresh database on the suite's server (PostgreSQL in CI) or a SQLite file, as a URL."""
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    import psycopg

    params = {k: v for k, v in connection.get_connection_params().items() if k in ("host", "port", "user", "password", "dbname")}
    name = f"digitsite_switch_{secrets.token_hex(4)}"
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        user = params.get("user", "")
        password = f":{params['password']}" if params.get("password") else ""
        yield f"postgres://{user}{password}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{name}"
    finally:
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def serving(url: str) -> str:
    with urllib.request.urlopen(f"{url}/api/health/", timeout=5) as response:
        return json.loads(response.read())["model"]["version"]


def seconds_until_all_serve(urls: list[str], version: str, limit: float = 10) -> float:
    started = time.monotonic()
    while not all(serving(url) == version for url in urls):
        assert time.monotonic() - started < limit, f"not every server serves {version}: {[serving(u) for u in urls]}"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_two_servers_with_their_own_model_folders_switch_together_when_a_third_process_activates(tmp_path):
    with a_database_of_its_own(tmp_path) as database_url:
        env = {
            "DATABASE_URL": database_url, "DIGITSITE_SECRET_KEY": secrets.token_urlsafe(50),
            "DIGITSITE_CACHE_URL": settings.CACHE_URL, "DIGITSITE_VAR_DIR": str(tmp_path),
            "DIGITSITE_ACCESS_LOG": "off", "DIGITSITE_MODEL_CHECK_S": "1",
        }  # fmt: skip

        def manage(*args: str) -> None:
            subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)

        shipped = model_load(path=settings.SHIPPED_MODEL).version
        with ExitStack() as stack:
            urls = [
                stack.enter_context(running_gunicorn({**env, "DIGITSITE_MODEL_DIR": str(tmp_path / f"machine{i}")}, args=("-w", "1")))[0]
                for i in (1, 2)
            ]
            assert [serving(url) for url in urls] == [shipped, shipped]
            manage("shell", "-c", PUBLISH % "v-new")

            manage("activate_model", "v-new")
            assert seconds_until_all_serve(urls, "v-new") <= 2.0
            manage("activate_model", shipped)  # the rollback
            assert seconds_until_all_serve(urls, shipped) <= 2.0

        for i in (1, 2):  # each machine keeps its own copy of what it served: the stored serving form, no weights
            form = serving_form_from_bytes((tmp_path / f"machine{i}" / "versions" / "v-new.serving.zip").read_bytes(), source="copy")
            assert form.manifest["metadata"]["version"] == "v-new"
            assert not (tmp_path / f"machine{i}" / "versions" / "v-new.safetensors").exists()

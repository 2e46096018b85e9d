"""Settings for production: the database and cache from URLs, the shared secret, HTTPS, CSP."""

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings

from testing.server import free_port

ROOT = Path(settings.BASE_DIR)


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def run_python(code: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "digitsite.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs,
    )  # fmt: skip


def test_the_production_values_in_env_example_pass_the_deployment_checks_at_warning_level(tmp_path):
    env = {**env_example(), "DIGITSITE_SECRET_KEY": secrets.token_urlsafe(50), "DIGITSITE_VAR_DIR": str(tmp_path),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}  # fmt: skip
    # The browser tests' fixture sets DJANGO_ALLOW_ASYNC_UNSAFE in this process; no deployment has it.
    ours = {name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**ours, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_env_example_placeholder_secret_key_is_refused(tmp_path):
    child = run_python("import django; django.setup()", {**env_example(), "DIGITSITE_VAR_DIR": str(tmp_path)})
    assert child.returncode != 0 and "placeholder" in child.stderr


def test_a_database_server_without_a_secret_key_is_refused_with_a_reason():
    child = run_python("import django; django.setup()", {"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x", "DIGITSITE_SECRET_KEY": ""})
    assert child.returncode != 0
    assert "DIGITSITE_SECRET_KEY is not set" in child.stderr and "share one secret key" in child.stderr


def test_importing_settings_writes_nothing_to_disk(tmp_path):
    var = tmp_path / "var"
    child = run_python(
        "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))",
        {"DIGITSITE_VAR_DIR": str(var), "DIGITSITE_SECRET_KEY": "", "DATABASE_URL": ""},
    )
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) >= 50
    assert not var.exists() and list(tmp_path.iterdir()) == []


def test_migrate_keeps_one_secret_key_that_later_processes_share(tmp_path):
    env = {"DIGITSITE_VAR_DIR": str(tmp_path), "DIGITSITE_SECRET_KEY": "", "DATABASE_URL": ""}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env={**os.environ, **env}, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    key = (tmp_path / "secret_key").read_text()
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    assert {run_python(code, env).stdout.strip() for _ in range(2)} == {key}


def test_an_unreachable_database_server_answers_corrections_503_json_and_guesses_from_the_shipped_model(tmp_path):
    child = run_python(
        """
        import django, json
        django.setup()
        from django.test import Client
        from django.test.utils import setup_test_environment
        from recognizer.tests.drawings import drawn
        setup_test_environment()
        client = Client()
        answers = [client.post("/api/feedback/", {"image": drawn(7), "label": 7}, content_type="application/json")
                   for _ in range(2)]
        print(json.dumps([[a.status_code, a["Content-Type"], a.get("Retry-After"), a.json()] for a in answers]))
        guess = client.post("/api/predict/", {"image": drawn(7)}, content_type="application/json")
        health = client.get("/api/health/")
        print(json.dumps([guess.status_code, guess.json(), health.status_code, health.json()]))
        """,
        {"DATABASE_URL": f"postgres://u:p@127.0.0.1:{free_port()}/nothing", "DIGITSITE_SECRET_KEY": "k" * 50,
         "DIGITSITE_VAR_DIR": str(tmp_path), "DIGITSITE_FEEDBACK_RATE": "none"},  # fmt: skip
    )
    assert child.returncode == 0, child.stderr
    import json

    corrections, guessing = (json.loads(line) for line in child.stdout.strip().splitlines()[-2:])
    for status, content_type, retry_after, body in corrections:
        assert (status, content_type) == (503, "application/json")
        assert int(retry_after) > 0 and "try again" in body["message"]
    guess_status, guess, health_status, health = guessing
    assert guess_status == 200 and guess["digit"] == 7
    assert health_status == 200 and health["status"] == "degraded"
    assert "cannot read the active model version from the database" in health["problem"]


HTTPS_CLIENT = """
    import django, json
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    plain = Client().get("/")
    secure = Client().get("/", headers={"X-Forwarded-Proto": "https"})
    health = Client().get("/api/health/")
    print(json.dumps({
        "plain": [plain.status_code, plain.get("Location")],
        "secure": [secure.status_code, secure.get("Strict-Transport-Security"), secure.cookies["csrftoken"]["secure"],
                   secure.get("Content-Security-Policy")],
        "health": health.status_code,
    }))
"""


def test_https_on_redirects_plain_http_sends_hsts_and_secure_cookies_behind_a_proxy(tmp_path):
    child = run_python(HTTPS_CLIENT, {"DIGITSITE_HTTPS": "on", "DIGITSITE_VAR_DIR": str(tmp_path), "DIGITSITE_SECRET_KEY": "k" * 50,
                                      "DIGITSITE_ALLOWED_HOSTS": "testserver"})  # fmt: skip
    assert child.returncode == 0, child.stderr
    import json

    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://testserver/"]
    status, hsts, secure_cookie, csp = seen["secure"]
    assert status == 200 and "max-age=31536000" in hsts and secure_cookie is True
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert seen["health"] == 200  # a load balancer's plain-HTTP health check is not redirected


def test_the_page_and_the_api_docs_have_no_inline_script_and_a_csp_that_forbids_it(client):
    import re

    for path in ("/", "/api/docs/"):
        response = client.get(path)
        assert response.status_code == 200
        scripts = re.findall(rb"<script([^>]*)>(.*?)</script>", response.content, re.S)
        assert scripts and all(b"src=" in attributes and not body.strip() for attributes, body in scripts), path
        policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
        assert policy["script-src"] == "'self'"


def test_pages_carry_the_csp_and_json_answers_do_not_build_one(client):
    # A policy governs what a document may load; a JSON answer loads nothing.
    assert "Content-Security-Policy" in client.get("/admin/login/")
    health = client.get("/api/health/")
    assert health["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in health

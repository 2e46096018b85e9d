"""With Redis (DIGITSITE_CACHE_URL), every server process counts a client against one limit."""

import json
import os
import subprocess
import sys
import textwrap

import redis
from django.conf import settings

# One "server process": it posts `count` guesses as 127.0.0.1 and prints the statuses it got.
GUESSES = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    from recognizer.tests.drawings import drawn
    setup_test_environment()
    client = Client()
    print(json.dumps([client.post("/api/predict/", {"image": drawn(7)}, content_type="application/json").status_code
                      for _ in range(int(sys.argv[1]))]))
    """
)


def guesses_in_a_new_process(count: int, env: dict[str, str]) -> list[int]:
    child = subprocess.run(
        [sys.executable, "-c", GUESSES, str(count)],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "digitsite.settings", "DIGITSITE_PREDICT_RATE": "5/min", **env},
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_two_processes_sharing_redis_share_one_rate_limit(redis_url, tmp_path):
    redis.Redis.from_url(redis_url).flushdb()
    env = {"DIGITSITE_CACHE_URL": redis_url, "DIGITSITE_VAR_DIR": str(tmp_path)}
    first = guesses_in_a_new_process(3, env)
    second = guesses_in_a_new_process(3, env)
    assert first == [200, 200, 200]
    assert second == [200, 200, 429]  # 5 a minute for the client, wherever it is counted


def test_without_a_shared_cache_each_process_counts_on_its_own(tmp_path):
    env = {"DIGITSITE_CACHE_URL": "", "DIGITSITE_VAR_DIR": str(tmp_path)}
    assert guesses_in_a_new_process(3, env) == guesses_in_a_new_process(3, env) == [200, 200, 200]

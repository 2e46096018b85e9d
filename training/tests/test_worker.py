"""The training worker and `train_digits` as real processes: the admin's button with a worker
running, a worker killed mid-run, and two runs asked for at once.

They share a database file, which the tests' in-memory database cannot be, so each test gets a
copy of a migrated SQLite file and its own model folder; the shipped model starts active.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from testing.server import ROOT, running_server

pytestmark = pytest.mark.django_db  # for the live settings (MODEL_DIR) fixtures; data lives in files

QUICK = {"limit": 1000, "val_size": 300, "test_limit": 500, "progress": False}


@dataclass
class Site:
    env: dict[str, str]
    db: Path
    models: Path

    def manage(self, *args: str, **popen) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **self.env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
        )  # fmt: skip

    def row(self, run_id: int | None = None) -> dict:
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            query = "SELECT * FROM training_trainingrun " + ("WHERE id = ?" if run_id else "ORDER BY id DESC LIMIT 1")
            row = db.execute(query, (run_id,) if run_id else ()).fetchone()
        return dict(row) if row else {}

    def wait_for(self, condition, *, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.row()
            if row and condition(row):
                return row
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the run reads {self.row()}")

    @contextmanager
    def worker(self):
        process = self.manage("training_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload")
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            process.communicate(timeout=30)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory, mnist_dir) -> Path:
    folder = tmp_path_factory.mktemp("site")
    # A file of their own, whatever DATABASE_URL the suite runs on: the tests read it with sqlite3.
    env = {**os.environ, "DATABASE_URL": "", "DIGITSITE_DB_PATH": str(folder / "db.sqlite3")}
    run = lambda *args, **extra: subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**env, **extra}, check=True, capture_output=True)  # noqa: E731
    run("migrate", "--noinput")
    run("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com", DJANGO_SUPERUSER_PASSWORD="a long test password")
    return folder / "db.sqlite3"


@pytest.fixture
def site(template_db, tmp_path, mnist_dir) -> Site:
    db = tmp_path / "db.sqlite3"
    shutil.copy(template_db, db)
    env = {
        "DATABASE_URL": "", "DIGITSITE_DB_PATH": str(db), "DIGITSITE_MODEL_DIR": str(tmp_path / "models"), "DIGITSITE_MNIST_DIR": str(mnist_dir),
        "DIGITSITE_TRAINING_OPTIONS": json.dumps(QUICK),
    }  # fmt: skip
    return Site(env=env, db=db, models=tmp_path / "models")


@pytest.mark.browser
def test_retrain_now_in_the_admin_with_a_worker_running_puts_the_new_model_on_the_page(browser, site):
    with running_server(site.env) as url, site.worker():
        page = browser.new_page()
        page.goto(f"{url}/admin/login/?next=/admin/training/trainingrun/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("a long test password")
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Retrain now").click()
        page.get_by_label("Epochs").fill("1")
        page.get_by_label("Force").check()  # a 1-epoch run on 1,000 images need not pass the gate
        page.get_by_role("button", name="Retrain now").click()

        expect(page.locator(".messagelist")).to_contain_text("is queued")
        # The page reloads itself while the run works, until it reads promoted.
        expect(page.locator(".field-status_now")).to_contain_text("active: serving now", timeout=240_000)
        run = site.row()
        assert run["status"] == "promoted" and run["model_version"] and run["in_progress"] is None
        assert "but promoted because of force" in run["decision"] or run["decision"].endswith("promoted.")

        health = page.request.get(f"{url}/api/health/").json()
        assert health["model"]["version"] == run["model_version"]
        from recognizer.tests.drawings import strokes
        from testing.browser import Pad

        visitor = browser.new_page()  # not logged in, as a person drawing on the site
        visitor.goto(url)
        assert Pad(visitor).draw(strokes(3))["model"] == run["model_version"]
        visitor.close()
        page.close()


def test_a_worker_killed_mid_run_is_marked_failed_by_the_next_worker_and_the_active_model_stays(site):
    enqueue = site.manage(
        "shell", "-c",
        "from training.options import site_options; from training.queue import training_run_request; "
        "training_run_request(options=site_options(epochs=20))",
    )  # fmt: skip
    assert enqueue.wait(timeout=120) == 0, enqueue.stderr.read()
    with site.worker() as worker:
        site.wait_for(lambda r: r["status"] == "running" and r["progress"].startswith("epoch"), timeout=180, what="the fit")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    run = site.row()
    assert run["status"] == "running" and run["in_progress"] == 1  # what a killed process leaves
    leftover = site.models / ".active.safetensors.x1y2.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a model")
    os.utime(leftover, (time.time() - 600, time.time() - 600))

    with site.worker() as second:
        run = site.wait_for(lambda r: r["status"] == "failed", timeout=120, what="the next worker to notice")
        assert second.poll() is None  # it keeps serving the queue
    assert "is gone" in run["error"] and run["in_progress"] is None and run["model_version"] == ""
    assert not leftover.exists()
    assert not (site.models / "active.safetensors").exists()  # the shipped model is still the active one
    assert not (site.models / "runs" / str(run["id"])).exists()
    with sqlite3.connect(site.db) as db:
        assert db.execute("SELECT status FROM django_tasks_database_dbtaskresult").fetchone()[0] == "FAILED"


def test_two_train_digits_at_once_one_trains_and_the_other_is_refused(site):
    args = ["train_digits", "--limit", "1000", "--epochs", "1", "--val-size", "500", "--test-limit", "500", "--no-progress"]
    first, second = site.manage(*args), site.manage(*args)
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes[0] == 0 and codes[1] != 0, outcomes
    refused = next(err for code, _, err in outcomes if code != 0)
    assert "is already running" in refused and "Only one run trains at a time" in refused
    with sqlite3.connect(site.db) as db:
        assert db.execute("SELECT status FROM training_trainingrun").fetchall() in ([("promoted",)], [("candidate",)])


def test_the_worker_prints_each_log_line_once_also_after_building_a_serving_net(site):
    line = "a line the training app logs"
    enqueue = site.manage("shell", "-c", f"from training.tests.tasks import serving_net_then_log; serving_net_then_log.enqueue(line={line!r})")
    assert enqueue.wait(timeout=120) == 0, enqueue.stderr.read()
    worker = site.manage("training_worker", "--batch", "--no-startup-delay", "--no-reload")
    out, err = worker.communicate(timeout=180)
    assert worker.returncode == 0, err
    printed = out + err
    assert "state=SUCCESSFUL" in printed, printed  # the job ran, and the queue's own lines show
    assert printed.count(line) == 1, printed
    assert printed.count("the training worker is waiting for runs") == 1

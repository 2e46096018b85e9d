"""Make the admin's screenshots in docs/: a training run's page (docs/run-page.png) and the
quality page of the model it made (docs/quality-page.png), at 1280x800, from a fresh database
made here, never the site's own:

1. real pen digits (UCI pendigits, about two of each digit from each of the 30 writers) are sent as
   strokes to the shipped model and answered with their true digit, one source a writer: a
   confirmed guess when it read them right, a correction when not;
2. a small real fine-tune run (1 epoch on 3,000 MNIST images) learns from them; its model is made
   active (by hand if the gate kept it as a candidate, as a reviewer could);
3. about two more of each digit from each writer are answered against that model.

    python -m bench.admin_screenshots [--out docs] [--port 8431] [--pendigits ../shared/pendigits/pendigits-orig.tra]
"""

import argparse
import os
import tempfile
from pathlib import Path

from testing.pendigits_data import DEFAULT_PATH
from testing.server import ROOT

USER, PASSWORD = "admin", "a-long-password-42"
SHOTS = {"run-page.png": "run", "quality-page.png": "quality"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="the folder for the images (default: docs)")
    parser.add_argument("--port", type=int, default=8431, help="the server's port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--pendigits", type=Path, default=DEFAULT_PATH, help="the pen digits' file (default: %(default)s)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-shots-"))
    env = {"DIGITSITE_DB_PATH": str(workdir / "db.sqlite3"), "DIGITSITE_MODEL_DIR": str(workdir / "models"), "DIGITSITE_VAR_DIR": str(workdir)}
    os.environ.update(env)
    os.environ.pop("DATABASE_URL", None)  # it would win over the fresh SQLite file
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    run, version = _make_history(args.pendigits)
    _shoot(args.out, args.port, env, {"run": f"/admin/training/trainingrun/{run}/change/", "quality": f"/admin/training/trainingrun/quality/{version}/"})


def _make_history(pendigits: Path) -> tuple[int, str]:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections

    from feedback.services import sample_create
    from recognizer.store import model_activate
    from testing.pendigits_data import layout, load_digits, stratified_subset
    from training.models import TrainingRun

    call_command("migrate", verbosity=0)
    User.objects.create_superuser(USER, "admin@example.com", PASSWORD)
    digits = stratified_subset(load_digits(pendigits), per_writer_digit=4, seed=0)

    def answer(batch) -> None:
        for i, digit in enumerate(batch):
            sample_create(label=digit.label, strokes=layout(digit, seed=i), source=f"anon:writer-{digit.writer}")

    first, second = digits[::2], digits[1::2]
    answer(first)
    call_command(
        "train_digits", "--data-dir", str(settings.MNIST_DIR), "--limit", "3000", "--epochs", "1", "--val-size", "1000", "--test-limit", "2000", "--no-progress",
    )  # fmt: skip
    run = TrainingRun.objects.get()
    if run.status != TrainingRun.Status.PROMOTED:
        model_activate(version=run.model_version)
    print(f"run {run.pk}: {run.status}; {run.decision}")
    answer(second)
    connections.close_all()
    return run.pk, run.model_version


def _shoot(out: Path, port: int, env: dict[str, str], paths: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    from testing.browser import launch
    from testing.server import running_server

    out.mkdir(parents=True, exist_ok=True)
    with running_server(env=env, port=port) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/admin/login/")
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        for name, what in SHOTS.items():
            page.goto(url + paths[what])
            page.screenshot(path=str(out / name), full_page=True)
            print(f"saved {out / name}")
        browser.close()


if __name__ == "__main__":
    main()

"""How good a working run's "time left" is: a real fine-tune run in a fresh database (never the
site's own), its row read every few seconds as the admin reads it, and each estimate compared
with the time it really had left.

    python -m bench.time_left [--every 5] [train_digits flags, e.g. --epochs 2 --limit 3000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testing.server import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between readings (default: %(default)s)")
    args, flags = parser.parse_known_args()
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-eta-"))
    env = {"DIGITSITE_DB_PATH": str(workdir / "db.sqlite3"), "DIGITSITE_MODEL_DIR": str(workdir / "models"), "DIGITSITE_VAR_DIR": str(workdir)}
    os.environ.update(env)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from training.models import TrainingRun

    call_command("migrate", verbosity=0)
    command = [sys.executable, "manage.py", "train_digits", "--data-dir", str(settings.MNIST_DIR), "--no-progress", *flags]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    readings = []  # (seconds since start, estimated seconds left, what the run was doing)
    while process.poll() is None:
        time.sleep(args.every)
        run = TrainingRun.objects.first()
        if run and run.is_unfinished and run.finish_expected_at:
            readings.append((time.monotonic() - started, (run.finish_expected_at - timezone.now()).total_seconds(), run.progress))
    total = time.monotonic() - started
    run = TrainingRun.objects.get()
    print(f"run {run.pk} {run.status} in {total:.0f} s (the run's own time {run.seconds:.0f} s): {' '.join(command[2:])}")
    print(f"{'at':>6} {'estimated left':>15} {'really left':>12} {'error':>7}  progress")
    for at, estimated, progress in readings:
        really = total - at
        print(f"{at:6.0f} {estimated:15.0f} {really:12.0f} {estimated - really:+7.0f}  {progress}")
    late = [abs(estimated - (total - at)) / total for at, estimated, _ in readings if at > total * 0.25]
    if late:
        print(f"after the first quarter: worst error {max(late):.0%} of the run's time, over {len(late)} readings")


if __name__ == "__main__":
    main()

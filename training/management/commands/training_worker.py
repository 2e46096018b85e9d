"""manage.py training_worker: the worker that runs the admin's "Retrain now" jobs.

It is django-tasks-db's `db_worker` (same flags), after it marks failed the runs whose process
died (a killed worker or `train_digits`) and removes the files they left half-written, and builds
the serving form of every kept version that has none. It also runs the queued builds of serving
forms (recognizer.tasks).
"""

import os

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorker

from recognizer.publishing import serving_forms_build_missing
from training.queue import training_runs_recover


class Command(DbWorker):
    help = "Run queued training runs, one at a time (django-tasks-db's db_worker, after recovering dead runs)."

    def handle(self, *args, **options):
        if options.get("reload") and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            # With --reload (DEBUG's default) this process only watches the files and starts the
            # worker in a child, which recovers and says it is waiting: once, not twice.
            return super().handle(*args, **options)
        for run in training_runs_recover(log=self.stdout.write):
            self.stdout.write(self.style.WARNING(f"run {run.pk} was marked failed: its process is gone"))
        # Versions published before serving forms existed get theirs here (web processes never build one).
        serving_forms_build_missing(say=self.stdout.write)
        self.stdout.write("the training worker is waiting for runs (Ctrl+C to stop)")
        return super().handle(*args, **options)

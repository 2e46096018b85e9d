from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate
from django_tasks_db.apps import TasksAppConfig


def secret_key_make(**kwargs) -> None:
    """On one machine with the embedded SQLite and no DIGITSITE_SECRET_KEY, `migrate` (which
    `make run` and `make serve` run first) keeps a random key in VAR_DIR/secret_key, so every
    process started afterwards shares it and sessions survive restarts. Importing settings
    only reads the file, never writes it."""
    import os

    from digitsite.settings import secret_key_file

    if settings.EMBEDDED_DB and not os.environ.get("DIGITSITE_SECRET_KEY", "").strip():
        secret_key_file(settings.VAR_DIR / "secret_key")


class DigitsiteConfig(AppConfig):
    name = "digitsite"
    verbose_name = "digitsite"

    def ready(self) -> None:
        post_migrate.connect(secret_key_make, dispatch_uid="digitsite.secret_key_make")


class TrainingQueueConfig(TasksAppConfig):
    """django-tasks-db, which holds the training runs' queued jobs: named on the admin's index for
    what it holds here (only a superuser sees it: training.admin.queue)."""

    verbose_name = "Training queue: the worker's jobs (for debugging)"

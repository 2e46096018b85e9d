"""The queued job that builds a version's serving form: queued when a version without one is
activated (recognizer.store.model_activate, from the admin: a web request never builds one), run
by the training worker, which has torch."""

import logging

from django.dispatch import receiver
from django_tasks import task

from recognizer.store import serving_form_wanted

logger = logging.getLogger(__name__)


@task()
def serving_form_build_task(*, version: str) -> str:
    from recognizer.publishing import serving_form_ensure  # torch: imported by the worker, not the web process

    return f"model {version}: serving form {'built' if serving_form_ensure(version=version) else 'already there'}"


@receiver(serving_form_wanted, dispatch_uid="recognizer.tasks.serving_form_build_queue")
def serving_form_build_queue(*, version: str, **kwargs) -> None:
    try:
        serving_form_build_task.enqueue(version=version)
    except Exception as error:  # the queue is the database: the worker's start builds missing forms too
        logger.warning("could not queue building the serving form of model %s: %s", version, error)

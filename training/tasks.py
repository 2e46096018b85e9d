"""The queued job behind the admin's "Retrain now": the worker (`manage.py training_worker`)
picks it up and runs the TrainingRun it names."""

import logging

from django_tasks import task

from training.models import TrainingRun, this_worker

logger = logging.getLogger(__name__)


@task()
def training_run_task(*, run_id: int) -> str:
    # The pipeline (torch, the training code) is imported by the worker that runs the job, not by
    # the web process that queues it.
    from training.steps.pipeline import training_run_execute

    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, worker=this_worker(), progress="starting"
    )
    if not claimed:  # cancelled while it waited
        return f"run {run_id} was no longer queued"
    run = training_run_execute(run=TrainingRun.objects.get(pk=run_id), log=logger.info)
    return f"run {run.pk}: {run.status}"

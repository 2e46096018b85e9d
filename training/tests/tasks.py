"""A job for the worker's tests: what a training run does that matters to logging, in a second."""

import logging

from django_tasks import task

from recognizer.serving import active_model


@task()
def serving_net_then_log(*, line: str) -> str:
    # Building the serving net quantizes it; ONNX Runtime's quantizer logs through the root
    # logger's module functions, which give a root without handlers one of their own.
    active_model().serving_net()
    logging.getLogger("training.tasks").info(line)
    return "logged"

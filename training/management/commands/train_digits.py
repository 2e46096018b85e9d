"""manage.py train_digits: train the model on MNIST plus the users' drawings, and publish it.

Its flags are made from training.options.RunOptions, with the site's defaults
(DIGITSITE_TRAINING_OPTIONS over RunOptions' own), the same as the admin's "Retrain now".
"""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from recognizer.servingform import ModelUnavailable
from training import options as run_options
from training.nn.data import MnistUnavailable
from training.queue import RunRefused, training_run_start
from training.steps.pipeline import training_run_execute


class Command(BaseCommand):
    help = (
        "Fine-tune the active digit model (or train one from scratch) on MNIST plus the drawings "
        "people corrected or confirmed on the site, judge it against the active model on MNIST "
        "test and on the users' held-out drawings, and publish it: it becomes the active model "
        "when the held-out corrections improve and neither MNIST test nor the held-out confirmed "
        "drawings get worse beyond their tolerances. One run trains at a time."
    )

    def add_arguments(self, parser):
        run_options.add_arguments(parser)

    def handle(self, *args, **opts):
        try:
            options = run_options.from_arguments(opts)
            options.on_this_machine()  # refuses --device cuda where there is none, before claiming the slot
        except run_options.InvalidOptions as error:
            raise CommandError(str(error)) from error
        started = time.perf_counter()
        try:
            run = training_run_start(options=options, log=self.stdout.write)
        except RunRefused as error:
            raise CommandError(str(error)) from error
        try:
            run = training_run_execute(run=run, log=self.stdout.write)
        except (MnistUnavailable, ModelUnavailable) as error:
            raise CommandError(str(error)) from error
        if run.status == run.Status.CANCELLED:
            raise CommandError(f"run {run.pk} was cancelled; nothing was published")
        style = self.style.SUCCESS if run.status == run.Status.PROMOTED else self.style.WARNING
        self.stdout.write(style(f"{run.get_status_display()}: model {run.model_version}. {run.decision}"))
        self.stdout.write(f"run {run.pk} took {time.perf_counter() - started:.0f} s; options: {json.dumps(run.options)}")

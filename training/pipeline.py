"""A training run, top to bottom: one call a step.

    data       MNIST, and the users' drawings: a share held out by id to judge with
    evaluate   the active model on MNIST test and the held-out drawings
    fit        the new model (training.recipe: what it trains on; training.trainer: the loop)
    gate       promote or not, and which net is published (training.gate)
    publish    a new model version, active if promoted (training.publish)
    report     the run's typed report, the one thing the admin reads (training.report)

A failed or cancelled run publishes nothing and leaves the active model as it was.
"""

import time

import torch
from django.utils import timezone

from recognizer.modelfile import LoadedModel, ModelUnavailable
from recognizer.publishing import active_weights_load
from training.run_data import run_data_load
from training.evaluate import accuracy, confusion, readings_take
from training.text import percent_text
from training.gate import judge
from training.models import TrainingRun
from training.options import RunOptions
from training.progress import Log, Progress, RunCancelled
from training.publish import model_version_publish
from training.recipe import recipe_fit, users_repeats
from training.refusal import refusal_bias_limit
from training.report import CONFUSIONS, EpochFigures, RunReport, run_report_save
from training.selectors import samples_learnt_by, training_run_typical_seconds
from training.trainer import EpochReport, predictions


def training_run_execute(*, run: TrainingRun, log: Log = print) -> TrainingRun:
    """Do the claimed run `run`, with the options it stores (completed for this machine)."""
    options = RunOptions.of(run.options, source=f"run {run.pk}").on_this_machine()
    progress, started = Progress(run, log), time.perf_counter()
    try:
        run.options = options.as_dict()
        if (typical := training_run_typical_seconds(from_scratch=options.from_scratch, epochs=options.epochs)) is not None:
            progress.expect(typical)  # until its own steps tell better
        run.save(update_fields=["options", "finish_expected_at"])
        active = _active_or_none(required=not options.from_scratch)
        data = run_data_load(options=options, learnt=samples_learnt_by(version=active.version) if active else set(), say=progress.say)

        def read(net: torch.nn.Module, who: str):
            return readings_take(net=net, data=data, device=options.device, who=who, say=progress.say, progress=options.progress)

        def judge_read(net: torch.nn.Module, who: str):
            """A reading while judging (the new model, then any blend): each takes about as long as the last one did."""
            progress.expect(progress.judging_s)
            since = time.perf_counter()
            readings = read(net, who)
            progress.judging_s = time.perf_counter() - since
            return readings

        reading_since = time.perf_counter()
        before = read(active.net, "the active model") if active else None
        progress.judging_s = time.perf_counter() - reading_since
        _record_start(run, data, active, before)
        result = recipe_fit(
            options=options, data=data, active=active.net if active else None, say=progress.say,
            on_epoch=_epoch_figures(options, data, progress), on_step=lambda epoch, step, steps: progress.training_step(epoch=epoch, epochs=options.epochs, step=step, steps=steps),
        )  # fmt: skip
        result.best, lowered = refusal_bias_limit(net=result.best, digits=data.mnist_val, max_refused=options.max_refused)
        if lowered:
            progress.say(
                f"'not a digit' made {'less' if lowered > 0 else 'more'} ready by {abs(lowered):.2f} logits, so that {options.max_refused:.2%} of MNIST validation is refused, no more"
            )
        progress.stage(TrainingRun.Status.GATING, "judging the new model")
        after = judge_read(result.best, "the new model")
        decision, net, after = judge(
            new=result.best, active=active.net if active else None, data=data, before=before, after=after, options=options, read=judge_read, say=progress.say
        )  # fmt: skip
        progress.check_cancel()
        version = model_version_publish(run=run, options=options, data=data, result=result, net=net, decision=decision)
        report = _report(data, options, result, decision, before, after, time.perf_counter() - started)
        run_report_save(run=run, report=report, model_version=version, sample_ids=data.train_sample_ids)
    except BaseException as error:
        _record_end(run, error, time.perf_counter() - started, log)
        if not isinstance(error, RunCancelled):
            raise
    return run


def _report(data, options: RunOptions, result, decision, before, after, seconds: float) -> RunReport:
    corrections_repeats, confirmed_repeats = users_repeats(data=data, options=options)
    judged = {"mnist": data.mnist_test, "pen": data.pen_guard, "corrections": data.corrections_test}
    return RunReport(
        decision=decision, best_epoch=result.best_epoch, mnist_test=len(data.mnist_test),
        epochs=[EpochFigures(r.epoch, r.loss, r.seconds, r.val_accuracy, r.extra.get("corrections")) for r in result.epochs],
        corrections_repeats=corrections_repeats, confirmed_repeats=confirmed_repeats, learnt_before=int(data.is_learnt.sum()),
        confusion={
            name: {"before": confusion(getattr(before, name), judged[name]) if before else None, "after": confusion(getattr(after, name), judged[name])}
            for name in CONFUSIONS
        },
        seconds=seconds, set_aside=data.set_aside,
    )  # fmt: skip


def _active_or_none(*, required: bool) -> LoadedModel | None:
    try:
        return active_weights_load()
    except ModelUnavailable:
        if required:
            raise ModelUnavailable("there is no usable active model to fine-tune: train with --from-scratch") from None
        return None


def _record_start(run: TrainingRun, data, active: LoadedModel | None, before) -> None:
    """What the run trains on and how the active model reads the judging sets, for its page while it works."""
    run.base_version = active.version if active else ""
    run.mnist_samples, run.feedback_samples = len(data.mnist_train), len(data.users_train)
    run.feedback_holdout, run.confirmed_holdout = len(data.corrections_test), len(data.confirmed_test)
    if before:
        run.mnist_accuracy_before = accuracy(before.mnist, data.mnist_test)
        run.feedback_accuracy_before = accuracy(before.corrections, data.corrections_test)
        run.confirmed_accuracy_before = accuracy(before.confirmed, data.confirmed_test)
    run.save(update_fields=[
        "base_version", "mnist_samples", "feedback_samples", "feedback_holdout", "confirmed_holdout",
        "mnist_accuracy_before", "feedback_accuracy_before", "confirmed_accuracy_before",
    ])  # fmt: skip


def _epoch_figures(options: RunOptions, data, progress: Progress):
    """After each epoch: MNIST validation and the held-out corrections, on the console and the run's page."""

    def on_epoch(report: EpochReport, current: torch.nn.Module) -> dict[str, float]:
        figures = {}
        text = f"epoch {report.epoch} of {options.epochs} done: MNIST validation {percent_text(report.val_accuracy)}"
        if len(data.corrections_test):
            figures["corrections"] = accuracy(predictions(current, data.corrections_test, device=options.device).numpy(), data.corrections_test)
            text += f", held-out corrections {percent_text(figures['corrections'])}"
        progress.say(f"{text}; loss {report.loss:.4f}, {report.seconds:.0f} s")
        return figures

    return on_epoch


def _record_end(run: TrainingRun, error: BaseException, seconds: float, log: Log) -> None:
    cancelled = isinstance(error, (RunCancelled, KeyboardInterrupt))
    run.status = TrainingRun.Status.CANCELLED if cancelled else TrainingRun.Status.FAILED
    run.error = "" if cancelled else f"{type(error).__name__}: {error}"
    run.progress = "cancelled; nothing was published" if cancelled else run.progress
    run.in_progress, run.finished_at, run.seconds = None, timezone.now(), seconds
    run.save(update_fields=["status", "error", "progress", "in_progress", "finished_at", "seconds"])
    log(f"run {run.pk} {run.status}" + (f": {run.error}" if run.error else ""))

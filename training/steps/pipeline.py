"""A training run, top to bottom: one call a step (training.steps), in this order.

    data       the active model, MNIST, and the users' drawings: a share held out by id to judge with
    evaluate   the active model on MNIST test, the pen guard set and the held-out drawings
    fit        the new model (training.steps.fit: what it trains on; training.nn.trainer: the loop)
    refusal    its "not a digit" bias lowered until at most `max_refused` of MNIST validation is refused
    gate       promote or not, and which net is published (the new model, or a blend toward it)
    publish    a new model version, active if promoted
    report     the run's typed report, the one thing the admin reads (training.runs.report)

A failed or cancelled run publishes nothing and leaves the active model as it was.
"""

from training.models import TrainingRun
from training.options import RunOptions
from training.runs.progress import Log, Progress, RunCancelled
from training.runs.selectors import samples_learnt_by, training_run_typical_seconds
from training.steps.data import active_model_load, run_data_load
from training.steps.evaluate import active_model_record, readings_reader
from training.steps.fit import model_fit
from training.steps.gate import judge
from training.steps.publish import model_version_publish
from training.steps.refusal import fit_refusal_limited
from training.steps.report import run_report_write


def training_run_execute(*, run: TrainingRun, log: Log = print) -> TrainingRun:
    """Do the claimed run `run`, with the options it stores (completed for this machine)."""
    options = RunOptions.of(run.options, source=f"run {run.pk}").on_this_machine()
    progress = Progress(run, log)
    try:
        progress.begin(options=options.as_dict(), typical_s=training_run_typical_seconds(from_scratch=options.from_scratch, epochs=options.epochs))
        active = active_model_load(required=not options.from_scratch)
        data = run_data_load(options=options, learnt=samples_learnt_by(version=active.version) if active else set(), say=progress.say)
        read = progress.reading(readings_reader(data=data, options=options, say=progress.say))
        before = read(active.net, "the active model") if active else None
        active_model_record(run=run, data=data, version=active.version if active else "", before=before)
        fitted = model_fit(options=options, data=data, active=active.net if active else None, progress=progress)
        result = fit_refusal_limited(result=fitted, digits=data.mnist_val, max_refused=options.max_refused, say=progress.say)
        progress.stage(TrainingRun.Status.GATING, "judging the new model")
        after = read(result.best, "the new model")
        judged = judge(
            new=result.best, active=active.net if active else None, data=data, before=before, after=after, options=options, read=read, say=progress.say
        )  # fmt: skip
        progress.check_cancel()
        version = model_version_publish(run=run, options=options, data=data, result=result, net=judged.net, decision=judged.decision)
        run_report_write(
            run=run, data=data, options=options, result=result, decision=judged.decision, before=before, after=judged.readings,
            seconds=progress.seconds, model_version=version,
        )  # fmt: skip
    except BaseException as error:
        progress.end(error)
        if not isinstance(error, RunCancelled):
            raise
    return run

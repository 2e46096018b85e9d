"""The report step: the run's typed report made from what the other steps found, and written
with the run's outcome (training.runs.report, the one thing the admin reads)."""

from training.models import TrainingRun
from training.nn.trainer import FitResult
from training.options import RunOptions
from training.runs.decision import Decision
from training.runs.report import CONFUSIONS, EpochFigures, RunReport, run_report_save
from training.steps.data import RunData
from training.steps.evaluate import Readings, confusion
from training.steps.fit import users_repeats


def run_report_make(
    *, data: RunData, options: RunOptions, result: FitResult, decision: Decision, before: Readings | None, after: Readings, seconds: float
) -> RunReport:
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
        seconds=seconds, set_aside=data.set_aside, held_out_taught=data.held_out_taught,
    )  # fmt: skip


def run_report_write(
    *, run: TrainingRun, data: RunData, options: RunOptions, result: FitResult, decision: Decision, before: Readings | None, after: Readings,
    seconds: float, model_version: str,
) -> None:
    """Make the run's report and write it with the run's outcome and the drawings it trained on."""
    report = run_report_make(data=data, options=options, result=result, decision=decision, before=before, after=after, seconds=seconds)
    run_report_save(run=run, report=report, model_version=model_version, sample_ids=data.train_sample_ids)

"""The typed record of a finished run: what the pipeline writes to the run, and all the admin
reads of it. Kept in `TrainingRun.report` as JSON; the run's columns (accuracies before and
after, for the runs list) are filled from it in `run_report_save`, the one place that writes
a run's outcome."""

from dataclasses import asdict, dataclass

from django.utils import timezone

from training.models import TrainingRun
from training.runs.decision import Decision, decision_text

CONFUSIONS = ("mnist", "pen", "corrections")  # the judging sets whose confusion matrices are kept


@dataclass(frozen=True)
class EpochFigures:
    epoch: int
    loss: float
    seconds: float
    mnist_val: float  # accuracy on MNIST validation, 0 to 1
    corrections: float | None = None  # on the held-out corrections, when there are some


@dataclass(frozen=True)
class RunReport:
    decision: Decision
    epochs: list[EpochFigures]
    best_epoch: int  # the epoch kept: best on MNIST validation
    mnist_test: int  # MNIST test images judged on
    corrections_repeats: int  # how often each new correction was seen an epoch
    confirmed_repeats: int
    learnt_before: int  # users' drawings the active model had learnt already, not repeated
    # 10x10 counts (rows: true digit, columns: guess) for each of CONFUSIONS, "before" and "after"
    confusion: dict[str, dict[str, list[list[int]] | None]]
    seconds: float
    set_aside: int = 0  # unreviewed drawings past their source's cap, not used (training.steps.data)
    held_out_taught: int = 0  # corrections chosen to be held out, trained on: too few to decide (training.steps.data)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "RunReport":
        return cls(**{
            **values, "decision": Decision.from_dict(values["decision"]), "epochs": [EpochFigures(**e) for e in values["epochs"]],
        })  # fmt: skip

    @classmethod
    def of(cls, run: TrainingRun) -> "RunReport | None":
        """The run's report; None while it works, or when it failed or was cancelled."""
        return cls.from_json(run.report) if run.report else None


def run_report_save(*, run: TrainingRun, report: RunReport, model_version: str, sample_ids: list[int]) -> None:
    """Write a finished run's outcome: its report, its summary columns and its status."""
    d = report.decision

    def share(right: int | None, count: int) -> float | None:
        return right / count if right is not None and count else None

    fields = {
        "report": report.to_json(), "model_version": model_version, "decision": decision_text(d, version=model_version),
        "status": TrainingRun.Status.PROMOTED if d.promote else TrainingRun.Status.CANDIDATE,
        "mnist_accuracy": share(d.mnist.right_after, d.mnist.count),
        "corrections_accuracy": share(d.corrections.right_after, d.corrections.count),
        "confirmed_accuracy": share(d.confirmed.right_after, d.confirmed.count),
        "progress": f"done in {report.seconds:.0f} s", "in_progress": None, "finished_at": timezone.now(), "seconds": report.seconds,
    }  # fmt: skip
    for name, value in fields.items():
        setattr(run, name, value)
    # Only these columns: a full save would undo a cancel the admin asked for meanwhile.
    run.save(update_fields=list(fields))
    run.samples.set(sample_ids)

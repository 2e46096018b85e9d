"""A training run from start to end: data, training, evaluation, the promotion gate, publishing.

`training_run_execute` is what `manage.py train_digits` calls; every figure it prints is also
kept on the run's TrainingRun row, and a failed run is recorded with its error.
"""

import copy
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from django.utils import timezone

from feedback.selectors import sample_is_held_out, samples_for_training
from recognizer.net import DigitNet
from recognizer.registry import LoadedModel, ModelUnavailable, active_model, model_dir, model_publish, model_save
from training.augment import Augment
from training.data import Digits, mnist_load, split
from training.models import TrainingRun
from training.calibration import temperature_fit
from training.trainer import EpochReport, FitConfig, accuracy, fit, logits

MAX_REPEATS = 100  # a correction is seen at most this often per epoch, so none is memorised


@dataclass(frozen=True)
class RunOptions:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    from_scratch: bool = False
    width: int = 32
    data_dir: str = "data"
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None
    val_size: int = 5000
    augment: dict = field(default_factory=dict)
    use_feedback: bool = True
    approved_only: bool = False
    feedback_share: float = 0.1
    holdout: float = 0.2
    tolerance: float = 0.2  # points of MNIST test accuracy
    force: bool = False
    progress: bool = True


def feedback_repeats(*, mnist: int, feedback: int, share: float) -> int:
    """How often each correction appears per epoch so corrections make up `share` of it."""
    if feedback == 0 or share <= 0:
        return 0
    return max(1, min(MAX_REPEATS, round(share / (1 - share) * mnist / feedback)))


def training_run_execute(*, options: RunOptions, log: Callable[[str], None] = print) -> TrainingRun:
    run = TrainingRun.objects.create(epochs=options.epochs, from_scratch=options.from_scratch, options=asdict(options))
    try:
        _execute(run, options, log)
    except BaseException as error:  # an interrupted run is recorded as failed too
        run.status, run.error, run.finished_at = TrainingRun.Status.FAILED, f"{type(error).__name__}: {error}", timezone.now()
        run.save()
        raise
    return run


def _execute(run: TrainingRun, o: RunOptions, log: Callable[[str], None]) -> None:
    data_dir = Path(o.data_dir)
    log(f"MNIST from {data_dir / 'MNIST'}")
    mnist_train, mnist_val = split(mnist_load(data_dir=data_dir, train=True), holdout=o.val_size, seed=o.seed)
    if o.limit:
        mnist_train = mnist_train.take(slice(0, o.limit))
    mnist_test = mnist_load(data_dir=data_dir, train=False)

    samples = list(samples_for_training(approved_only=o.approved_only)) if o.use_feedback else []
    held = [sample_is_held_out(sample_id=s.pk, holdout_share=o.holdout) for s in samples]
    train_samples = [s for s, h in zip(samples, held) if not h]
    feedback_train = Digits.from_arrays([s.input_array() for s in train_samples], [s.label for s in train_samples])
    feedback_test = Digits.from_arrays([s.input_array() for s, h in zip(samples, held) if h], [s.label for s, h in zip(samples, held) if h])
    repeats = feedback_repeats(mnist=len(mnist_train), feedback=len(feedback_train), share=o.feedback_share)
    log(
        f"training on {len(mnist_train)} MNIST images and {len(feedback_train)} corrections (each {repeats}x per epoch); "
        f"{len(feedback_test)} corrections held out; validation {len(mnist_val)}, test {len(mnist_test)}"
    )

    base = _active_or_none(required=not o.from_scratch)
    before_mnist = accuracy(base.net, mnist_test) if base else None
    before_feedback = accuracy(base.net, feedback_test) if base and len(feedback_test) else None
    if base:
        log(f"active model {base.version}: MNIST test {percent_text(before_mnist)}, held-out corrections {percent_text(before_feedback)}")
    net = DigitNet(width=o.width) if o.from_scratch else copy.deepcopy(base.net)

    version = f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    checkpoints = model_dir() / "runs" / version
    run.base_version = base.version if base else ""
    run.mnist_samples, run.feedback_samples, run.feedback_holdout = len(mnist_train), len(feedback_train), len(feedback_test)
    run.mnist_accuracy_before, run.feedback_accuracy_before = before_mnist, before_feedback
    run.save()

    def on_epoch(report: EpochReport, current: torch.nn.Module) -> dict[str, float]:
        figures = {"test": accuracy(current, mnist_test, device=o.device)}
        if len(feedback_test):
            figures["feedback"] = accuracy(current, feedback_test, device=o.device)
        model_save(net=current, metadata={"version": f"{version}-latest", "epoch": report.epoch}, path=checkpoints / "latest.safetensors")
        log(
            f"epoch {report.epoch}/{o.epochs}  loss {report.loss:.4f}  val {percent_text(report.val_accuracy)}  "
            f"MNIST test {percent_text(figures['test'])}"
            + (f"  held-out corrections {percent_text(figures['feedback'])}" if "feedback" in figures else "")
            + f"  {report.seconds:.0f} s"
        )
        return figures

    result = fit(
        net,
        train=Digits.concat([mnist_train, feedback_train]),
        repeats=torch.cat([torch.ones(len(mnist_train), dtype=torch.long), torch.full((len(feedback_train),), repeats)]),
        val=mnist_val,
        augment=Augment(**o.augment),
        config=FitConfig(epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, seed=o.seed, device=o.device, progress=o.progress),
        on_epoch=on_epoch,
    )
    best = result.best
    after_mnist = accuracy(best, mnist_test)
    after_feedback = accuracy(best, feedback_test) if len(feedback_test) else None
    best_epoch = max(result.epochs, key=lambda r: (r.val_accuracy, r.epoch)).epoch
    log(f"best epoch {best_epoch}: MNIST test {percent_text(after_mnist)}, held-out corrections {percent_text(after_feedback)}")

    promote, decision = _gate(after_mnist, before_mnist, o.tolerance, o.force)
    temperature = temperature_fit(logits=logits(best, mnist_val.images), labels=mnist_val.labels)
    log(f"calibration: temperature {temperature:.3f}, fitted on the {len(mnist_val)} validation images")
    metadata = {
        "version": version,
        "trained_at": timezone.now().isoformat(timespec="seconds"),
        "mnist_test_accuracy": round(after_mnist, 6),
        "temperature": round(temperature, 4),
        "feedback_accuracy": None if after_feedback is None else round(after_feedback, 6),
        "base_version": run.base_version,
        "epochs": o.epochs,
        "best_epoch": best_epoch,
        "mnist_samples": len(mnist_train),
        "feedback_samples": len(feedback_train),
        "seed": o.seed,
        "augment": asdict(Augment(**o.augment)),
        "seconds_per_epoch": round(sum(r.seconds for r in result.epochs) / len(result.epochs), 1),
    }
    model_save(net=best, metadata={**metadata, "version": f"{version}-best"}, path=checkpoints / "best.safetensors")
    model_publish(net=best, metadata=metadata, activate=promote)

    run.model_version, run.decision = version, decision
    run.mnist_accuracy, run.feedback_accuracy = after_mnist, after_feedback
    run.status = TrainingRun.Status.PROMOTED if promote else TrainingRun.Status.CANDIDATE
    run.finished_at = timezone.now()
    run.save()
    run.samples.set(train_samples)


def _active_or_none(*, required: bool) -> LoadedModel | None:
    try:
        return active_model()
    except ModelUnavailable:
        if required:
            raise ModelUnavailable("there is no usable active model to fine-tune: train with --from-scratch") from None
        return None


def _gate(after: float, before: float | None, tolerance: float, force: bool) -> tuple[bool, str]:
    """Promote unless the new model loses more than `tolerance` points on MNIST test."""
    if before is None:
        return True, f"MNIST test {percent_text(after)}; there was no active model to compare with."
    change = (after - before) * 100
    verdict = f"MNIST test {percent_text(after)} against {percent_text(before)} for the active model ({change:+.2f} points, tolerance {tolerance:.2f})"
    if change >= -tolerance:
        return True, f"{verdict}: promoted."
    if force:
        return True, f"{verdict}: promoted because of --force."
    return False, f"{verdict}: kept as a candidate. Activate it anyway with: manage.py activate_model <version>."


def percent_text(value: float | None) -> str:
    """An accuracy as the run log and the admin show it; "–" when there was nothing to measure."""
    return "–" if value is None else f"{value * 100:.2f}%"

"""Training runs: ask for one, run it, cancel it, and clean up after one whose process died.

A run reads top to bottom in `training_run_execute`: load the data, evaluate the active model,
fit, gate, publish. The admin's "Retrain now" asks for a run (`training_run_request`: a queued
job that the worker runs); `manage.py train_digits` starts one in its own process
(`training_run_start`). Either way only one run works at a time: the database lets a single
TrainingRun hold `in_progress`, and a second request is refused with `RunRefused`.
"""

import copy
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.selectors import sample_is_held_out, samples_for_training
from recognizer.net import DigitNet
from recognizer.modelfile import LoadedModel, ModelUnavailable, model_save
from recognizer.serving import active_model
from recognizer.store import checkpoint_path, checkpoints_remove, model_publish, temp_files_clean
from training.augment import Augment
from training.data import Digits, mnist_load, split
from training.models import TrainingRun
from training.calibration import temperature_fit
from training.options import RunOptions
from training.redraw import samples_redraw
from training.selectors import samples_learnt_by
from training.trainer import EpochReport, FitConfig, FitResult, blend, fit, logits, look_alikes_find, predictions

MAX_REPEATS = 100  # a correction is seen at most this often per epoch, so none is memorised
PROGRESS_EVERY_S = 1.0  # how often a working run writes its progress and looks for a cancel
VALIDATION_SEED = 0  # the shipped model held out the same 5,000 images
BLEND_STEPS = 3  # blends the fallback tries at most: each costs one more reading of MNIST test (about 5 s)
STALE_AFTER = timedelta(minutes=10)  # a run on another machine silent this long is dead

Log = Callable[[str], None]


class RunRefused(Exception):
    """Another run is queued or working; only one run trains at a time."""


class RunCancelled(Exception):
    pass


# -- asking for runs ------------------------------------------------------------------------


def training_run_request(*, options: RunOptions, requested_by: str = "") -> TrainingRun:
    """Queue a run for the worker (the admin's button). Never trains in the caller's process."""
    from training.tasks import training_run_task

    with transaction.atomic():
        run = _run_claim(options=options, status=TrainingRun.Status.QUEUED, requested_by=requested_by)
        run.task_id = training_run_task.enqueue(run_id=run.pk).id
        run.save(update_fields=["task_id"])
    return run


def training_run_start(*, options: RunOptions, log: Log = print) -> TrainingRun:
    """Claim the slot for a run this process works on itself (`train_digits`), after marking
    runs whose process died as failed."""
    training_runs_recover(log=log)
    run = _run_claim(options=options, status=TrainingRun.Status.RUNNING, requested_by="manage.py train_digits")
    run.worker = _this_worker()
    run.save(update_fields=["worker"])
    return run


def _run_claim(*, options: RunOptions, status: str, requested_by: str) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                status=status, in_progress=True, epochs=options.epochs, from_scratch=options.from_scratch,
                options=options.as_dict(), requested_by=requested_by,
            )  # fmt: skip
    except IntegrityError:
        busy = TrainingRun.objects.filter(in_progress=True).first()
        raise RunRefused(_busy_message(busy)) from None


def _busy_message(run: TrainingRun | None) -> str:
    if run is None:  # it finished between the refusal and this look
        return "Another training run was starting; try again."
    what = run.progress or run.get_status_display()
    return (
        f"Training run #{run.pk} is already {run.status} ({what}). Only one run trains at a time: "
        "wait for it to finish, or cancel it first."
    )


def training_run_cancel(*, run: TrainingRun) -> str:
    """Cancel a queued run at once; ask a working one to stop at its next step. Returns what happened."""
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.CANCELLED, in_progress=None, finished_at=timezone.now(),
            progress="cancelled before it started",
        )  # fmt: skip
        if updated:
            return f"Run #{run.pk} was cancelled before it started."
        updated = TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.UNFINISHED).update(cancel_requested=True)
    if updated:
        return f"Run #{run.pk} will stop at its next step; the active model stays as it is."
    return f"Run #{run.pk} has already finished ({run.status}); there is nothing to cancel."


# -- runs whose process died ---------------------------------------------------------------


def training_runs_recover(*, log: Log = print) -> list[TrainingRun]:
    """Mark failed every unfinished run whose process is gone (killed, machine restarted), free
    the slot it held, and remove its checkpoints and any half-written model files. The worker
    and `train_digits` call this when they start."""
    recovered = []
    for run in TrainingRun.objects.filter(status__in=TrainingRun.UNFINISHED):
        reason = _why_stale(run)
        if reason is None:
            continue
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.FAILED, in_progress=None, finished_at=timezone.now(),
            error=f"{reason}; marked failed by {_this_worker()}. The active model was left as it was.",
        )  # fmt: skip
        _task_mark_failed(run.task_id)
        checkpoints_remove(run=str(run.pk))
        log(f"run {run.pk} ({run.status}) was left unfinished: {reason}; marked failed")
        recovered.append(run)
    for path in temp_files_clean():
        log(f"removed the half-written file {path}")
    return recovered


def _why_stale(run: TrainingRun) -> str | None:
    if run.status == TrainingRun.Status.QUEUED:
        state = _task_status(run.task_id)
        return None if state in ("READY", "RUNNING") else f"its queued job is {state.lower()}"
    host, _, pid = run.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return None if _process_alive(int(pid)) else f"its process {pid} is gone"
    if timezone.now() - run.updated_at > STALE_AFTER:
        return f"no word from {run.worker or 'its process'} since {run.updated_at:%Y-%m-%d %H:%M:%S}"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _task_status(task_id: str) -> str:
    from django_tasks_db.models import DBTaskResult

    if not task_id:
        return "MISSING"
    return DBTaskResult.objects.filter(id=task_id).values_list("status", flat=True).first() or "MISSING"


def _task_mark_failed(task_id: str) -> None:
    from django_tasks_db.models import DBTaskResult

    if task_id:
        DBTaskResult.objects.filter(id=task_id, status="RUNNING").update(status="FAILED", finished_at=timezone.now())


# -- a run, top to bottom ---------------------------------------------------------------------


@dataclass
class RunData:
    mnist_train: Digits
    mnist_val: Digits
    mnist_test: Digits
    feedback_train: Digits  # the users' drawings trained on (with a twin, the held-out ones too)
    feedback_is_held_out: torch.Tensor  # for each of them: held out, so the judge twin never sees it
    feedback_is_correction: torch.Tensor  # for each of them: a correction (True) or a confirmed right guess
    feedback_is_learnt: torch.Tensor  # for each of them: learnt by the active model already, so not repeated
    feedback_redrawn: Digits  # variants of them drawn again from their strokes (training.redraw)
    redrawn_of: torch.Tensor  # for each variant, the index of its drawing in feedback_train
    corrections_test: Digits  # held out: drawings the model got wrong
    confirmed_test: Digits  # held out: right guesses the users confirmed
    train_sample_ids: list[int]

    @property
    def judge_sample_ids(self) -> list[int]:
        """The drawings the judge (or, without a twin, the one model) trained on."""
        return [pk for pk, held in zip(self.train_sample_ids, self.feedback_is_held_out.tolist()) if not held]

    @property
    def corrections_to_teach(self) -> torch.Tensor:
        """Which users' drawings are corrections new to the active model: repeated, with look-alikes."""
        return self.feedback_is_correction & ~self.feedback_is_learnt

    @property
    def confirmed_to_teach(self) -> torch.Tensor:
        """Which are confirmed right guesses new to the active model: repeated in their own share."""
        return ~self.feedback_is_correction & ~self.feedback_is_learnt


@dataclass
class Figures:
    """How one model reads the test sets: MNIST, held-out corrections, held-out confirmed."""

    mnist: np.ndarray  # predicted digit for each image
    corrections: np.ndarray
    confirmed: np.ndarray


def training_run_execute(*, run: TrainingRun, log: Log = print) -> TrainingRun:
    """Do the claimed run `run`: load data, evaluate the active model, fit, gate, publish. A
    failed or cancelled run publishes nothing and leaves the active model as it was."""
    options = RunOptions(**run.options).resolved()
    progress = _Progress(run, log)
    started = time.perf_counter()
    try:
        base = _active_or_none(required=not options.from_scratch)
        data = _load_data(options, progress, base_version=base.version if base else "")
        before = _evaluate(base.net, data, options, progress, "the active model") if base else None
        _record_start(run, data, base, before)
        result = _fit(run, options, data, base, progress)
        progress.stage(TrainingRun.Status.GATING, "judging the new model")
        after = _evaluate(result.best, data, options, progress, "the new model" if result.full is None else "the judge twin")
        twin = _twin_mnist(result, data, options, progress)
        promote, decision = gate(data=data, before=before, after=after, twin_mnist=twin, options=options)
        net, after, sample_ids = _published(result, data, options, before, after, twin)
        if not promote and (blended := _blended(result, data, options, base, before, after, progress)):
            net, after, decision = blended
            promote, sample_ids = True, data.judge_sample_ids
        progress.check_cancel()
        _publish(run, options, data, result, net, sample_ids, before, after, promote, decision, time.perf_counter() - started)
    except BaseException as error:
        cancelled = isinstance(error, (RunCancelled, KeyboardInterrupt))
        run.status = TrainingRun.Status.CANCELLED if cancelled else TrainingRun.Status.FAILED
        run.error = "" if cancelled else f"{type(error).__name__}: {error}"
        run.progress = "cancelled; nothing was published" if cancelled else run.progress
        run.in_progress, run.finished_at, run.seconds = None, timezone.now(), time.perf_counter() - started
        run.save()
        checkpoints_remove(run=str(run.pk))
        log(f"run {run.pk} {run.status}" + (f": {run.error}" if run.error else ""))
        if not isinstance(error, RunCancelled):
            raise
    return run


def _load_data(o: RunOptions, progress: "_Progress", *, base_version: str) -> RunData:
    data_dir = Path(o.data_dir)
    progress.say(f"loading MNIST from {data_dir / 'MNIST'}")
    # The same validation images whatever the run's seed, so that no model in a line of
    # fine-tunes has trained on the images that judge the next one.
    mnist_train, mnist_val = split(mnist_load(data_dir=data_dir, train=True), holdout=o.val_size, seed=VALIDATION_SEED)
    if o.limit:
        mnist_train = mnist_train.take(slice(0, o.limit))
    mnist_test = mnist_load(data_dir=data_dir, train=False)
    if o.test_limit:
        mnist_test = mnist_test.take(slice(0, o.test_limit))

    samples = list(samples_for_training(approved_only=o.approved_only)) if o.use_feedback else []
    held = {s.pk for s in samples if sample_is_held_out(sample_id=s.pk, holdout_share=o.holdout)}
    known = samples_learnt_by(version=base_version)
    learnt = set() if o.relearn else known
    # With a twin the published model learns the held-out drawings too; only the judge never sees
    # them. A held-out drawing the active model has learnt (its twin run published it) judges no more.
    train = [s for s in samples if o.twin or s.pk not in held]
    judging = [s for s in samples if s.pk in held and s.pk not in known]
    corrections, confirmed = [s for s in judging if s.is_correction], [s for s in judging if not s.is_correction]
    redrawn, redrawn_of = samples_redraw(samples=train, count=o.redraws, seed=o.seed)
    data = RunData(
        mnist_train=mnist_train, mnist_val=mnist_val, mnist_test=mnist_test,
        feedback_train=_digits(train), feedback_is_held_out=torch.tensor([s.pk in held for s in train], dtype=torch.bool),
        feedback_is_correction=torch.tensor([s.is_correction for s in train], dtype=torch.bool),
        feedback_is_learnt=torch.tensor([s.pk in learnt for s in train], dtype=torch.bool),
        feedback_redrawn=redrawn, redrawn_of=redrawn_of,
        corrections_test=_digits(corrections), confirmed_test=_digits(confirmed), train_sample_ids=[s.pk for s in train],
    )  # fmt: skip
    progress.say(
        f"training on MNIST ({len(mnist_train)} images, {o.mnist_epoch_size(len(mnist_train))} an epoch) and "
        f"{len(train)} users' drawings ({int(data.feedback_is_learnt.sum())} of them learnt by the active model already, not repeated"
        + (f"; {int(data.feedback_is_held_out.sum())} held out from the judge twin" if o.twin else "")
        + f"); held out to judge with: {len(corrections)} corrections, "
        f"{len(confirmed)} confirmed right guesses, {len(mnist_val)} MNIST validation, {len(mnist_test)} MNIST test"
    )
    return data


def _digits(samples) -> Digits:
    return Digits.from_arrays([s.input_array() for s in samples], [s.label for s in samples])


def _active_or_none(*, required: bool) -> LoadedModel | None:
    try:
        return active_model()
    except ModelUnavailable:
        if required:
            raise ModelUnavailable("there is no usable active model to fine-tune: train with --from-scratch") from None
        return None


def _evaluate(net: torch.nn.Module, data: RunData, o: RunOptions, progress: "_Progress", who: str) -> Figures:
    progress.say(f"evaluating {who} on {len(data.mnist_test)} MNIST test images and the users' held-out drawings")
    figures = Figures(
        mnist=predictions(net, data.mnist_test, device=o.device, desc=f"reading MNIST test ({who})" if o.progress else "").numpy(),
        corrections=predictions(net, data.corrections_test, device=o.device).numpy(),
        confirmed=predictions(net, data.confirmed_test, device=o.device).numpy(),
    )
    progress.say(
        f"{who}: MNIST test {share_text(figures.mnist, data.mnist_test)}, held-out corrections "
        f"{share_text(figures.corrections, data.corrections_test)}, held-out confirmed "
        f"{share_text(figures.confirmed, data.confirmed_test)}"
    )
    return figures


def _record_start(run: TrainingRun, data: RunData, base: LoadedModel | None, before: Figures | None) -> None:
    run.base_version = base.version if base else ""
    run.mnist_samples, run.feedback_samples = len(data.mnist_train), len(data.feedback_train)
    run.feedback_holdout, run.confirmed_holdout = len(data.corrections_test), len(data.confirmed_test)
    if before:
        run.mnist_accuracy_before = _accuracy(before.mnist, data.mnist_test)
        run.feedback_accuracy_before = _accuracy(before.corrections, data.corrections_test)
        run.confirmed_accuracy_before = _accuracy(before.confirmed, data.confirmed_test)
    run.save()


def _fit(run: TrainingRun, o: RunOptions, data: RunData, base: LoadedModel | None, progress: "_Progress") -> FitResult:
    net = DigitNet(width=o.width) if o.from_scratch else copy.deepcopy(base.net)
    per_epoch = o.mnist_epoch_size(len(data.mnist_train))
    # Only drawings new to the active model teach: seen 100 times an epoch once more, the ones it
    # has learnt are overfitted, and other writers' drawings are read worse (README, two waves).
    repeats, confirmed_repeats = users_repeats(data=data, options=o)
    per_drawing = torch.where(data.corrections_to_teach, repeats, torch.where(data.confirmed_to_teach, confirmed_repeats, 0))
    # A drawing and its variants share the drawing's repeats: more kinds of it, not more of it.
    drawings = len(data.feedback_train)
    owner = torch.cat([torch.arange(drawings), data.redrawn_of])
    pictures = 1 + torch.bincount(data.redrawn_of, minlength=drawings)
    each = torch.where(per_drawing[owner] > 0, (per_drawing[owner] / pictures[owner]).round().clamp_min(1), 0).long()
    look_alikes = None
    if o.look_alikes:  # resolved options: 0 from scratch, and fine-tuning always has a base
        progress.say(f"finding the MNIST images most like the users' drawings among {per_epoch}")
        # Among a random part of MNIST the size of an epoch's: reading all 55,000 would take a minute.
        among = torch.randperm(len(data.mnist_train), generator=torch.Generator().manual_seed(o.seed))[:per_epoch]
        found = look_alikes_find(
            base.net, data.mnist_train.take(among), data.feedback_train.labels[data.corrections_to_teach], per_drawing=o.look_alikes, device=o.device,
            desc="reading MNIST for look-alikes" if o.progress else "",
        )
        look_alikes = among[found]
    progress.say(
        f"fitting: {o.epochs} epochs, peak rate {o.lr:g}, each correction {repeats}x an epoch"
        + (f", each confirmed right guess {confirmed_repeats}x" if confirmed_repeats else "")
        + (f" ({len(data.feedback_redrawn)} variants drawn again from strokes among them)" if len(data.feedback_redrawn) else "")
        + (f", beside {len(look_alikes)} MNIST look-alikes" if look_alikes is not None else "")
    )

    latest = {"text": ""}  # the last epoch's figures, shown beside the steps of the next one

    def on_step(epoch: int, step: int, steps: int) -> None:
        progress.step(f"epoch {epoch} of {o.epochs}: step {step} of {steps}" + latest["text"])

    def on_epoch(report: EpochReport, current: torch.nn.Module) -> dict[str, float]:
        figures = {"mnist_val": report.val_accuracy}
        if len(data.corrections_test):
            figures["corrections"] = _accuracy(predictions(current, data.corrections_test, device=o.device).numpy(), data.corrections_test)
        model_save(net=current, metadata={"version": f"run-{run.pk}-latest", "epoch": report.epoch}, path=checkpoint_path(run=str(run.pk), name="latest"))
        text = f"epoch {report.epoch} of {o.epochs} done: MNIST validation {percent_text(report.val_accuracy)}" + (
            f", held-out corrections {percent_text(figures['corrections'])}" if "corrections" in figures else ""
        )
        progress.say(f"{text}; loss {report.loss:.4f}, {report.seconds:.0f} s", force=True)
        latest["text"] = f"; after epoch {report.epoch}: MNIST validation {percent_text(report.val_accuracy)}" + (
            f", held-out corrections {percent_text(figures['corrections'])}" if "corrections" in figures else ""
        )
        return figures

    result = fit(
        net, mnist=data.mnist_train, extra=Digits.concat([data.feedback_train, data.feedback_redrawn]), extra_repeats=each,
        val=data.mnist_val, look_alikes=look_alikes,
        augment=Augment(**o.augment), teacher=None if o.from_scratch else base.net,
        config=FitConfig(
            epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, mnist_per_epoch=o.mnist_per_epoch, distill=o.distill, keep=o.keep, freeze_bn=o.freeze_bn, users_augment=o.users_augment,
            bf16=o.precision == "bfloat16", seed=o.seed, device=o.device, progress=o.progress,
        ),
        judge_skips=data.feedback_is_held_out[owner] if o.twin else None, on_epoch=on_epoch, on_step=on_step,
    )  # fmt: skip
    model_save(net=result.best, metadata={"version": f"run-{run.pk}-best", "epoch": result.best_epoch}, path=checkpoint_path(run=str(run.pk), name="best"))
    return result


def _twin_mnist(result: FitResult, data: RunData, o: RunOptions, progress: "_Progress") -> np.ndarray | None:
    """How the net that learnt the held-out drawings too reads MNIST test (None without a twin)."""
    if result.full is None:
        return None
    progress.say(f"evaluating the judge's twin, which learnt the held-out drawings too, on {len(data.mnist_test)} MNIST test images")
    return predictions(result.full, data.mnist_test, device=o.device, desc="reading MNIST test (the twin)" if o.progress else "").numpy()


def _twin_published(*, data: RunData, before: Figures, after: Figures, twin_mnist: np.ndarray | None, options: RunOptions) -> bool:
    """Whether the twin that learnt the held-out drawings too is the model published: yes, unless it
    lost MNIST test beyond the tolerance where the judge did not (and always with force)."""
    if twin_mnist is None:
        return False
    lost = [_beyond(_change(m, before.mnist, data.mnist_test), options.mnist_tolerance) for m in (twin_mnist, after.mnist)]
    return options.force or not lost[0] or lost[1]


def _change(predicted: np.ndarray, before: np.ndarray, digits: Digits) -> float:
    """Accuracy points gained (negative: lost) from `before` to `predicted`."""
    return (_accuracy(predicted, digits) - _accuracy(before, digits)) * 100


def _published(result: FitResult, data: RunData, o: RunOptions, before: Figures | None, after: Figures, twin_mnist: np.ndarray | None):
    """Which net to publish, promoted or not (`_twin_published`). Returns the net, its figures (on
    the held-out drawings, the judge's: the twin trained on them) and the ids of the drawings it learnt."""
    if not _twin_published(data=data, before=before, after=after, twin_mnist=twin_mnist, options=o):
        return result.best, after, data.judge_sample_ids
    return result.full, Figures(mnist=twin_mnist, corrections=after.corrections, confirmed=after.confirmed), data.train_sample_ids


def blend_keeps(*, least: float) -> list[float]:
    """The shares of the new weights the fallback tries, most first: three steps from the new
    model toward the active one, the last keeping `least` (0.9, 0.8, 0.7 for 0.7)."""
    return [round(least + (1 - least) * step / BLEND_STEPS, 6) for step in range(BLEND_STEPS - 1, -1, -1)]


def _blended(result: FitResult, data: RunData, o: RunOptions, base: LoadedModel | None, before: Figures | None, after: Figures, progress: "_Progress"):
    """When the new model lost MNIST test beyond the tolerance: the judge part of the way from
    the active model's weights (as in WiSE-FT, which gives back most of what MNIST lost and keeps
    most of what the corrections taught; README), each blend judged by the same gate, keeping
    less of the new weights each time (`blend_keeps`), so the first that passes gives back only
    as much as it must. Returns the net, its figures and the decision; None if none passes."""
    if not (0 < o.fallback_keep < 1 and base and before):
        return None
    change = _change(after.mnist, before.mnist, data.mnist_test)
    if not _beyond(change, o.mnist_tolerance):
        return None
    progress.say(f"the new model lost {-change:.2f} points of MNIST test, beyond the tolerance: trying blends toward the active model")
    for keep in blend_keeps(least=o.fallback_keep):
        progress.say(f"trying the new model {keep:.0%} of the way from the active model")
        net = blend(base.net, result.best, keep=keep)
        figures = _evaluate(net, data, o, progress, "the blend")
        passed, decision = gate(data=data, before=before, after=figures, options=o)
        progress.say(f"the gate on the blend: {decision}")
        if passed:
            return net, figures, (
                f"Published {keep:.0%} of the way from the active model to the new one, which lost {-change:.2f} points of "
                f"MNIST test (beyond the tolerance): {decision}"
            )
    return None


def gate(*, data: RunData, before: Figures | None, after: Figures, options: RunOptions, twin_mnist: np.ndarray | None = None) -> tuple[bool, str]:
    """Promote when the users' held-out corrections are read better, and neither the held-out
    confirmed drawings nor MNIST test get worse beyond their tolerances. Without corrections to
    judge by, the guards alone decide. With a twin, `after` is the judge's reading, which decides
    on the users' drawings, and MNIST guards the model published (`twin_mnist`: the twin's reading
    of MNIST test). Returns the decision and why, with every figure."""
    if before is None:
        return True, f"MNIST test {percent_text(_accuracy(after.mnist, data.mnist_test))}; there was no active model to compare with: promoted."
    twin_published = _twin_published(data=data, before=before, after=after, twin_mnist=twin_mnist, options=options)
    published = twin_mnist if twin_published else after.mnist
    lines, failed = [], []
    mnist_change = _change(published, before.mnist, data.mnist_test)
    who = "" if twin_mnist is None else ("; the published twin, which learnt the held-out drawings too" if twin_published else "; the judge, published")
    lines.append(
        f"MNIST test {percent_text(_accuracy(before.mnist, data.mnist_test))} -> {percent_text(_accuracy(published, data.mnist_test))} "
        f"({mnist_change:+.2f} points, tolerance {options.mnist_tolerance:g}{who})"
    )
    if _beyond(mnist_change, options.mnist_tolerance):
        failed.append("MNIST test got worse beyond its tolerance")

    right_before, right_after = _right(before.corrections, data.corrections_test), _right(after.corrections, data.corrections_test)
    count = len(data.corrections_test)
    if count:
        lines.append(f"held-out corrections {right_before} -> {right_after} right of {count}" + (" (the judge)" if twin_mnist is not None else ""))
        if right_after <= right_before:
            failed.append("the held-out corrections did not improve")

    if len(data.confirmed_test):
        c_before, c_after = _accuracy(before.confirmed, data.confirmed_test), _accuracy(after.confirmed, data.confirmed_test)
        c_change = (c_after - c_before) * 100
        lines.append(
            f"held-out confirmed {percent_text(c_before)} -> {percent_text(c_after)} of {len(data.confirmed_test)} "
            f"({c_change:+.2f} points, tolerance {options.users_tolerance:g})"
        )
        if _beyond(c_change, options.users_tolerance):
            failed.append("the held-out confirmed drawings got worse beyond their tolerance")
    else:
        lines.append("no held-out confirmed drawings")
    if not count:
        lines.append("no held-out corrections to improve on, so the guards alone decide")
    if twin_mnist is not None:
        other = after.mnist if twin_published else twin_mnist
        name = "the judge, which never saw the held-out drawings" if twin_published else "the twin that learnt the held-out drawings too"
        lines.append(
            f"{name}: MNIST test {percent_text(_accuracy(other, data.mnist_test))} ({_change(other, before.mnist, data.mnist_test):+.2f} points)"
            + ("" if twin_published else ", beyond the tolerance, so the judge is published")
        )

    figures = "; ".join(lines)
    if not failed:
        return True, f"{figures}: promoted."
    why = " and ".join(failed)
    if options.force:
        return True, f"{figures}: {why}, but promoted because of force."
    return False, f"{figures}: {why}, so kept as a candidate. Activate it anyway with: manage.py activate_model <version>."


def _beyond(change: float, tolerance: float) -> bool:
    """A loss of exactly the tolerance is within it: 99.54% -> 99.44% is -0.1 points, though in
    floating point it comes out as -0.10000000000000009."""
    return round(change, 9) < -tolerance


def _publish(run, o, data, result, net, sample_ids, before, after, promote, decision, seconds) -> None:
    version = f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    metadata = model_metadata(run=run, options=o, data=data, result=result, net=net, sample_ids=sample_ids, after=after, version=version)
    model_publish(net=net, metadata=metadata, activate=promote)
    run.model_version, run.decision = version, decision
    run.mnist_accuracy = _accuracy(after.mnist, data.mnist_test)
    run.feedback_accuracy = _accuracy(after.corrections, data.corrections_test)
    run.confirmed_accuracy = _accuracy(after.confirmed, data.confirmed_test)
    run.report = {
        "mnist_test": len(data.mnist_test),
        "epochs": [{"epoch": r.epoch, "loss": r.loss, "seconds": r.seconds, **r.extra} for r in result.epochs],
        "best_epoch": result.best_epoch,
        "redrawn": len(data.feedback_redrawn),
        "repeats": dict(zip(("corrections", "confirmed"), users_repeats(data=data, options=o))),
        "learnt_before": int(data.feedback_is_learnt.sum()),
        "published": "judge" if net is result.best else "twin" if net is result.full else "blend",
        "confusion": {
            name: {"before": confusion(getattr(before, name), labels) if before else None, "after": confusion(getattr(after, name), labels)}
            for name, labels in (("mnist", data.mnist_test), ("corrections", data.corrections_test))
        },
    }
    run.status = TrainingRun.Status.PROMOTED if promote else TrainingRun.Status.CANDIDATE
    run.progress = f"done in {seconds:.0f} s"
    run.in_progress, run.finished_at, run.seconds = None, timezone.now(), seconds
    run.save()
    run.samples.set(sample_ids)


def model_metadata(
    *, run: TrainingRun, options: RunOptions, data: RunData, result: FitResult, net: torch.nn.Module, sample_ids: list[int], after: Figures, version: str
) -> dict:
    """The one place where a published model's metadata is made."""
    # Calibration: the temperature that makes its confidence honest on held-out MNIST.
    temperature = temperature_fit(logits=logits(net, data.mnist_val.images), labels=data.mnist_val.labels)
    return {
        "version": version,
        "trained_at": timezone.now().isoformat(timespec="seconds"),
        "mnist_test_accuracy": round(_accuracy(after.mnist, data.mnist_test), 6),
        "temperature": round(temperature, 4),
        "feedback_accuracy": _rounded(_accuracy(after.corrections, data.corrections_test)),
        "base_version": run.base_version,
        "run": run.pk,
        "epochs": options.epochs,
        "best_epoch": result.best_epoch,
        "mnist_samples": len(data.mnist_train),
        "feedback_samples": len(sample_ids),
        "seed": options.seed,
        "augment": asdict(Augment(**options.augment)),
        "seconds_per_epoch": round(sum(r.seconds for r in result.epochs) / len(result.epochs), 1),
    }


class _Progress:
    """Says what the run is doing, on the console and on its row (at most once a second), and
    raises RunCancelled once someone asked to cancel it."""

    def __init__(self, run: TrainingRun, log: Log):
        self.run, self.log, self.last = run, log, 0.0

    def say(self, text: str, *, force: bool = True) -> None:
        self.log(text)
        self._write(text, force=force)

    def step(self, text: str) -> None:
        self._write(text, force=False)

    def stage(self, status: str, text: str) -> None:
        self.run.status = status
        TrainingRun.objects.filter(pk=self.run.pk).update(status=status)
        self.say(text)

    def check_cancel(self) -> None:
        if TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise RunCancelled(f"run {self.run.pk} was cancelled")

    def _write(self, text: str, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        self.run.progress = text[:200]
        TrainingRun.objects.filter(pk=self.run.pk).update(progress=self.run.progress, updated_at=timezone.now())
        self.check_cancel()


# -- figures ----------------------------------------------------------------------------------


def users_repeats(*, data: RunData, options: RunOptions) -> tuple[int, int]:
    """How often each new correction, and each new confirmed right guess, is seen an epoch. Each
    kind has its own share of the epoch, so users who press "Yes" often do not dilute the
    corrections; drawings the active model has learnt already are not seen again."""
    per_epoch = options.mnist_epoch_size(len(data.mnist_train))
    return (
        feedback_repeats(mnist=per_epoch, feedback=int(data.corrections_to_teach.sum()), share=options.feedback_share),
        feedback_repeats(mnist=per_epoch, feedback=int(data.confirmed_to_teach.sum()), share=options.confirmed_share),
    )


def feedback_repeats(*, mnist: int, feedback: int, share: float) -> int:
    """How often each correction appears per epoch so corrections make up `share` of it."""
    if feedback == 0 or share <= 0:
        return 0
    return max(1, min(MAX_REPEATS, round(share / (1 - share) * mnist / feedback)))


def confusion(predicted: np.ndarray, digits: Digits) -> list[list[int]]:
    """10x10 counts: row the true digit, column the guess."""
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (digits.labels.numpy(), predicted), 1)
    return matrix.tolist()


def _right(predicted: np.ndarray, digits: Digits) -> int:
    return int((predicted == digits.labels.numpy()).sum())


def _accuracy(predicted: np.ndarray, digits: Digits) -> float | None:
    return _right(predicted, digits) / len(digits) if len(digits) else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def share_text(predicted: np.ndarray, digits: Digits) -> str:
    """"75% of 4": an accuracy with the count it was measured on."""
    return count_text(_accuracy(predicted, digits), len(digits))


def count_text(value: float | None, count: int) -> str:
    if value is None or not count:
        return "none held out" if not count else "–"
    return f"{percent_text(value)} of {count:,}"


def percent_text(value: float | None) -> str:
    """An accuracy as the run log and the admin show it; "–" when there was nothing to measure."""
    if value is None:
        return "–"
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"

"""The data step: the active model a run starts from, and the sets it learns from and is judged
by: MNIST split three ways, the pen guard set, and the users' drawings, a share of them held out
by id to judge with."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from feedback.models import Sample
from feedback.selectors import sample_is_held_out, samples_for_training
from recognizer.modelfile import LoadedModel, ModelUnavailable
from recognizer.publishing import active_weights_load
from training.nn.data import Digits, mnist_load, split
from training.nn.guard import pen_guard
from training.nn.negatives import negatives_held_out, negatives_train
from training.nn.omniglot import omniglot_held_out, omniglot_train
from training.options import RunOptions
from training.runs.chance import corrections_fewest_telling


def active_model_load(*, required: bool) -> LoadedModel | None:
    """The active model a run fine-tunes and compares with; None when there is none and none is
    `required` (from scratch)."""
    try:
        return active_weights_load()
    except ModelUnavailable:
        if required:
            raise ModelUnavailable("there is no usable active model to fine-tune: train with --from-scratch") from None
        return None


@dataclass(frozen=True)
class RunData:
    """What a run trains on and what judges it."""

    mnist_train: Digits
    mnist_val: Digits  # picks the best epoch; fits the calibration temperature
    mnist_test: Digits  # guards MNIST in the gate
    users_train: Digits  # the users' drawings trained on: corrections and confirmed right guesses
    is_correction: torch.Tensor  # for each of them: a correction (True) or a confirmed right guess
    is_learnt: torch.Tensor  # for each of them: learnt by the active model already, so not repeated
    train_sample_ids: list[int]
    corrections_test: Digits  # held out: drawings the active model got wrong
    confirmed_test: Digits  # held out: right guesses the users confirmed
    pen_guard: Digits  # shipped with the code: no user writes to it (training.nn.guard)
    # For each held-out drawing: approved by a reviewer (True), or not reviewed (False).
    corrections_approved: torch.Tensor
    confirmed_approved: torch.Tensor
    set_aside: int  # unreviewed drawings past their source's cap: neither trained on nor judged with
    # Not digits, NOT_A_DIGIT: real handwritten characters (training.nn.omniglot, training writers only)
    # and letters, scribbles and shapes made here (training.nn.negatives).
    negatives_train: Digits = field(default_factory=lambda: Digits.from_arrays([], []))
    # The refusal guard: real characters of held-out writers and a held-out alphabet, then the
    # made ones held out by font and by seed.
    negatives_test: Digits = field(default_factory=lambda: Digits.from_arrays([], []))
    # Corrections chosen by id to be held out, trained on instead: too few to change the decision.
    held_out_taught: int = 0

    @property
    def corrections_to_teach(self) -> torch.Tensor:
        """Which of `users_train` are corrections new to the active model: repeated, with look-alikes."""
        return self.is_correction & ~self.is_learnt

    @property
    def confirmed_to_teach(self) -> torch.Tensor:
        """Which are confirmed right guesses new to the active model: repeated in their own share."""
        return ~self.is_correction & ~self.is_learnt


def run_data_load(*, options: RunOptions, learnt: set[int], say: Callable[[str], None]) -> RunData:
    """MNIST split three ways, and the users' drawings: a share held out by id to judge with
    (never trained on), the rest trained on, and held-out corrections too few to judge by trained
    on too. `learnt`: ids of drawings the active model learnt already; seen again a hundred times
    an epoch they are overfitted, so they teach no more, and held out they no longer measure
    anything new, so they judge no more."""
    o = options
    data_dir = Path(o.data_dir)
    say(f"loading MNIST from {data_dir / 'MNIST'}")
    # The same validation images whatever the run's seed (`validation_seed`), so that no model in a
    # line of fine-tunes has trained on the images that judge the next one.
    mnist_train, mnist_val = split(mnist_load(data_dir=data_dir, train=True), count=o.val_size, seed=o.validation_seed)
    if o.limit:
        mnist_train = mnist_train.take(slice(0, o.limit))
    mnist_test = mnist_load(data_dir=data_dir, train=False)
    if o.test_limit:
        mnist_test = mnist_test.take(slice(0, o.test_limit))

    samples = list(samples_for_training(approved_only=o.approved_only)) if o.use_users else []
    samples, set_aside = samples_capped(samples=samples, per_source=o.per_source_cap)
    # Held out by id, of the drawings the active model has not learnt (trained on, they judge nothing new).
    held = {s.pk for s in samples if s.pk not in learnt and sample_is_held_out(sample_id=s.pk, holdout_share=o.holdout)}
    # Held-out corrections too few to change the decision (under 5: training.runs.chance) teach
    # instead: held out, a few writers' corrections only took a fifth from what the run learnt.
    held_corrections = {s.pk for s in samples if s.pk in held and s.is_correction}
    fewest = corrections_fewest_telling(min_held_out=o.min_held_out)
    taught_instead = held_corrections if len(held_corrections) < fewest else set()
    held -= taught_instead
    train = [s for s in samples if s.pk not in held]
    judging = [s for s in samples if s.pk in held]
    corrections, confirmed = [s for s in judging if s.is_correction], [s for s in judging if not s.is_correction]
    data = RunData(
        mnist_train=mnist_train, mnist_val=mnist_val, mnist_test=mnist_test,
        users_train=_digits(train), train_sample_ids=[s.pk for s in train],
        is_correction=torch.tensor([s.is_correction for s in train], dtype=torch.bool),
        is_learnt=torch.tensor([s.pk in learnt for s in train], dtype=torch.bool),
        corrections_test=_digits(corrections), confirmed_test=_digits(confirmed), pen_guard=pen_guard(),
        corrections_approved=_approved(corrections), confirmed_approved=_approved(confirmed), set_aside=set_aside,
        held_out_taught=len(taught_instead),
        negatives_train=Digits.concat([omniglot_train(), negatives_train().digits]) if o.negatives_share else Digits.from_arrays([], []),
        negatives_test=Digits.concat([omniglot_held_out()[0], negatives_held_out().digits]),
    )  # fmt: skip
    say(
        f"training on MNIST ({len(mnist_train)} images, {o.mnist_epoch_size(len(mnist_train))} an epoch) and "
        f"{len(train)} users' drawings ({int(data.is_learnt.sum())} of them learnt by the active model already, not repeated); "
        f"held out to judge with: {len(corrections)} corrections, {len(confirmed)} confirmed right guesses, "
        f"{len(mnist_val)} MNIST validation, {len(mnist_test)} MNIST test, {len(data.pen_guard)} pen guard drawings; "
        f"not digits (real handwriting, and made): {len(data.negatives_train)} to train on, {len(data.negatives_test)} held out"
    )
    if data.held_out_taught:
        say(f"trained on the {data.held_out_taught} corrections chosen to be held out: under the {fewest} that can change the gate's decision")
    if set_aside:
        say(f"set aside {set_aside} unreviewed drawings past their source's cap of {o.per_source_cap} a run (approve them to use them)")
    return data


def samples_capped(*, samples: list[Sample], per_source: int) -> tuple[list[Sample], int]:
    """`samples` with at most `per_source` unreviewed corrections and as many unreviewed confirmed
    right guesses from each source (the earliest of each), and how many were set aside. Apart,
    so that a person who pressed "Yes" often keeps their corrections: with one count, 459 right
    guesses confirmed by four writers set aside most of their corrections, and the run fixed
    their errors 21 -> 10, against 21 -> 5 capped apart (docs/results.md). Approved samples,
    and those of no source (made by the site's operators), are all kept. 0: no cap."""
    if not per_source:
        return samples, 0
    seen: dict[tuple[str, bool], int] = {}
    kept = []
    for sample in sorted(samples, key=lambda s: s.pk):
        if sample.source and sample.status != Sample.Status.APPROVED:
            kind = (sample.source, sample.is_correction)
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] > per_source:
                continue
        kept.append(sample)
    return kept, len(samples) - len(kept)


def _approved(samples) -> torch.Tensor:
    return torch.tensor([s.status == Sample.Status.APPROVED for s in samples], dtype=torch.bool)


def _digits(samples) -> Digits:
    return Digits.from_arrays([s.input_array() for s in samples], [s.label for s in samples])

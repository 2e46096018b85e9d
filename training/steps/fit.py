"""The fit step: what a run trains on, and how often, between the data and the training loop
(training.nn.trainer), with its news for the run's page after each epoch and step.

Each new correction is seen up to a hundred times an epoch, so that corrections make up their
share of it (`RunOptions.corrections_share`); confirmed right guesses have a share of their own,
so users who press "Yes" often do not dilute the corrections. Drawings the active model has
learnt already are not repeated: seen a hundred times an epoch once more they are overfitted,
and other writers' drawings are read worse (docs/notebook.md). Beside the corrections, the MNIST
images of other digits most like them hold the boundary where MNIST needs it.
"""

import copy
from collections.abc import Callable

import torch

from recognizer.labels import CLASSES
from recognizer.net import DigitNet, net_with_classes, stages_freeze
from training.nn.augment import Augment
from training.nn.data import Digits
from training.nn.inference import predictions
from training.nn.pen_anchors import pen_anchors
from training.nn.pen_mnist import pen_mnist
from training.nn.trainer import EpochReport, FitConfig, FitResult, fit, look_alikes_find
from training.options import RunOptions
from training.runs.progress import Progress
from training.runs.text import percent_text
from training.steps.data import RunData
from training.steps.evaluate import predicted_accuracy


def repeats(*, mnist: int, drawings: int, share: float, most: int) -> int:
    """How often each of `drawings` appears per epoch so that they make up `share` of it, at most
    `most` times (`RunOptions.max_repeats`: so that none is memorised)."""
    if drawings == 0 or share <= 0:
        return 0
    return max(1, min(most, round(share / (1 - share) * mnist / drawings)))


def users_repeats(*, data: RunData, options: RunOptions) -> tuple[int, int]:
    """How often each new correction, and each new confirmed right guess, is seen an epoch."""
    per_epoch = options.mnist_epoch_size(len(data.mnist_train))
    return (
        repeats(mnist=per_epoch, drawings=int(data.corrections_to_teach.sum()), share=options.corrections_share, most=options.max_repeats),
        repeats(mnist=per_epoch, drawings=int(data.confirmed_to_teach.sum()), share=options.confirmed_share, most=options.max_repeats),
    )


def negatives_pick(*, data: RunData, options: RunOptions) -> Digits:
    """The drawings that are not digits a run trains on, each once an epoch: as many as make up
    `negatives_share` of an epoch, at most all of them (a quick run on 500 MNIST images takes 88)."""
    wanted = round(options.negatives_share / (1 - options.negatives_share) * options.mnist_epoch_size(len(data.mnist_train)))
    order = torch.randperm(len(data.negatives_train), generator=torch.Generator().manual_seed(options.seed))
    return data.negatives_train.take(order[: min(wanted, len(order))])


def recipe_fit(
    *,
    options: RunOptions,
    data: RunData,
    active: torch.nn.Module | None,
    say: Callable[[str], None],
    on_epoch: Callable[[EpochReport, torch.nn.Module], dict[str, float]],
    on_step: Callable[[int, int, int], None],
) -> FitResult:
    """Train a new model: the active one fine-tuned (a copy; `active` is left as it is), or a
    fresh one from scratch."""
    o = options
    # A model made before "not a digit" learns it with a new, silent output (net_with_classes);
    # as the teacher it then says "never" on MNIST's digits, which is right.
    knew_refusal = active is not None and active.classes == CLASSES
    active = None if active is None else net_with_classes(active)
    net = DigitNet(width=o.width) if o.from_scratch else copy.deepcopy(active)
    stages_freeze(net, stages=o.frozen_stages)
    per_epoch = o.mnist_epoch_size(len(data.mnist_train))
    corrections, confirmed = users_repeats(data=data, options=o)
    each = torch.where(data.corrections_to_teach, corrections, torch.where(data.confirmed_to_teach, confirmed, 0)).long()
    negatives = negatives_pick(data=data, options=o)
    # Digits drawn with strokes, as the active model reads them: MNIST alone moves the line
    # between a pen's 1s and 7s (training.nn.pen_anchors). From scratch there is no model to
    # follow: they are labelled with their digits, positives drawn as the page draws beside the
    # real not-digits (without them such a net learns "not MNIST": docs/results.md).
    anchors = Digits.concat([
        pen_anchors(copies=o.pen_anchors, seed=o.seed) if o.pen_anchors else Digits.from_arrays([], []),
        pen_mnist(mnist=data.mnist_train, count=o.pen_mnist, seed=o.seed) if o.pen_mnist else Digits.from_arrays([], []),
    ])  # fmt: skip
    extra = Digits.concat([data.users_train, negatives, anchors])
    each = torch.cat([each, torch.ones(len(negatives) + len(anchors), dtype=torch.long)])
    # An active model that answers "not a digit" already is distilled on the negatives as on
    # MNIST: a fine-tune keeps its line there instead of pushing it into the digits.
    distilled = torch.cat(
        [torch.zeros(len(data.users_train), dtype=torch.bool), torch.full((len(negatives),), knew_refusal), torch.full((len(anchors),), not o.from_scratch)]
    )
    look_alikes = None
    if o.look_alikes:
        say(f"finding the MNIST images most like the users' corrections among {per_epoch}")
        # Among a random part of MNIST the size of an epoch's: reading all 55,000 would take a minute.
        among = torch.randperm(len(data.mnist_train), generator=torch.Generator().manual_seed(o.seed))[:per_epoch]
        found = look_alikes_find(
            active, data.mnist_train.take(among), data.users_train.labels[data.corrections_to_teach], per_drawing=o.look_alikes,
            device=o.device, desc="reading MNIST for look-alikes" if o.progress else "",
        )  # fmt: skip
        look_alikes = among[found]
    say(
        f"fitting: {o.epochs} epochs, peak rate {o.lr:g}, each correction {corrections}x an epoch"
        + (f", each confirmed right guess {confirmed}x" if confirmed else "")
        + (f", beside {len(look_alikes)} MNIST look-alikes" if look_alikes is not None else "")
        + (f", {len(negatives)} drawings that are not digits" if len(negatives) else "")
        + (f", {len(anchors)} pen-style digits {'labelled with their digits' if o.from_scratch else 'read as the active model reads them'}" if len(anchors) else "")
    )
    config = FitConfig(
        epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, mnist_per_epoch=o.mnist_per_epoch, distill=o.distill,
        freeze_bn=o.freeze_bn, bf16=o.precision == "bfloat16", seed=o.seed, device=o.device, progress=o.progress,
        weight_decay=o.weight_decay, label_smoothing=o.label_smoothing, softening=o.softening, warmup_share=o.warmup_share,
    )  # fmt: skip
    return fit(
        net, mnist=data.mnist_train, extra=extra, extra_repeats=each, val=data.mnist_val, look_alikes=look_alikes, extra_distilled=distilled,
        augment=Augment(**o.augmentation), teacher=None if o.from_scratch else active, config=config, on_epoch=on_epoch, on_step=on_step,
    )  # fmt: skip


def model_fit(*, options: RunOptions, data: RunData, active: torch.nn.Module | None, progress: Progress) -> FitResult:
    """Train the new model (`recipe_fit`), telling the run's page after each step and epoch."""

    def on_step(epoch: int, step: int, steps: int) -> None:
        progress.training_step(epoch=epoch, epochs=options.epochs, step=step, steps=steps)

    return recipe_fit(options=options, data=data, active=active, say=progress.say, on_epoch=_epoch_figures(options, data, progress), on_step=on_step)


def _epoch_figures(options: RunOptions, data: RunData, progress: Progress):
    """After each epoch: MNIST validation and the held-out corrections, on the console and the run's page."""

    def on_epoch(report: EpochReport, current: torch.nn.Module) -> dict[str, float]:
        figures = {}
        text = f"epoch {report.epoch} of {options.epochs} done: MNIST validation {percent_text(report.val_accuracy)}"
        if len(data.corrections_test):
            figures["corrections"] = predicted_accuracy(predictions(current, data.corrections_test, device=options.device).numpy(), data.corrections_test)
            text += f", held-out corrections {percent_text(figures['corrections'])}"
        progress.say(f"{text}; loss {report.loss:.4f}, {report.seconds:.0f} s")
        return figures

    return on_epoch

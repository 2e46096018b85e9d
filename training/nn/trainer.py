"""The training loop, and only that: batched augmentation, AdamW with a one-cycle schedule, an
evaluation per epoch. Reads top to bottom; `training.steps.fit` decides what it trains on and
calls `fit`; reading with a net (logits, predictions, blends) is `training.nn.inference`'s.

Each epoch draws a fresh random part of MNIST (`FitConfig.mnist_per_epoch`) beside every
correction, oversampled; when fine-tuning, a frozen copy of the model it started from
(`teacher`) keeps it close to what it knew on MNIST images (distillation).
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from recognizer.net import normalize_tensor as normalize
from training.nn.augment import Augment
from training.nn.data import Digits
from training.nn.inference import net_accuracy, probabilities, reading_copy


@dataclass(frozen=True)
class FitConfig:
    """The loop's settings; `training.steps.fit` makes them from a run's options, the one set of defaults."""

    epochs: int
    batch_size: int
    lr: float
    mnist_per_epoch: int  # 0: all of MNIST, in a new order, every epoch
    distill: float  # share of the loss on MNIST images that follows the teacher
    freeze_bn: bool  # keep batch norm's statistics as they are (fine-tuning)
    bf16: bool  # forward and backward passes in bfloat16 (weights and updates stay float32)
    seed: int
    device: str
    progress: bool
    weight_decay: float  # AdamW's
    label_smoothing: float
    softening: float  # divides the teacher's logits before its softmax, so distillation sees its second guesses
    warmup_share: float  # of the steps, the one-cycle schedule's warm-up


@dataclass
class EpochReport:
    epoch: int
    loss: float
    val_accuracy: float
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    best: torch.nn.Module  # the net at the epoch with the best validation accuracy
    epochs: list[EpochReport]

    @property
    def best_epoch(self) -> int:
        return max(self.epochs, key=lambda r: (r.val_accuracy, r.epoch)).epoch


def fit(
    net: torch.nn.Module,
    *,
    mnist: Digits,
    extra: Digits,
    extra_repeats: int | torch.Tensor,
    val: Digits,
    look_alikes: torch.Tensor | None = None,
    extra_distilled: torch.Tensor | None = None,
    augment: Augment,
    config: FitConfig,
    teacher: torch.nn.Module | None = None,
    on_epoch: Callable[[EpochReport, torch.nn.Module], dict[str, float]] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> FitResult:
    """Train `net` in place on MNIST plus `extra` (the corrections), each of them `extra_repeats`
    times an epoch (one count for all, or one each). `on_epoch` may evaluate more and return figures to keep with the epoch;
    `on_step(epoch, step, steps)` is called before every step and may raise to stop the run.
    `extra_distilled` marks the items of `extra` that follow the teacher as MNIST images do
    (drawings replayed to keep what it knows, not corrections of it)."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    net.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPU
    if teacher is not None:
        teacher = reading_copy(teacher, device=device)
    train = Digits.concat([mnist, extra])
    images, labels = train.images.to(device), train.labels.to(device)
    distilled = torch.cat([torch.ones(len(mnist), dtype=torch.bool), extra_distilled if extra_distilled is not None else torch.zeros(len(extra), dtype=torch.bool)]).to(device)
    per_epoch = min(config.mnist_per_epoch or len(mnist), len(mnist))
    extra_index = torch.arange(len(mnist), len(train), device=device).repeat_interleave(
        extra_repeats.to(device) if isinstance(extra_repeats, torch.Tensor) else extra_repeats
    )
    if look_alikes is not None and len(look_alikes):
        # As many look-alikes in all as drawings of the users: both sides of each boundary.
        times = max(1, round(len(extra_index) / len(look_alikes)))
        extra_index = torch.cat([extra_index, look_alikes.to(device).repeat_interleave(times)])

    steps = math.ceil((per_epoch + len(extra_index)) / config.batch_size)
    learner = _Learner(net, config, total=config.epochs * steps)
    # bfloat16 halves the time of a step where the processor computes it natively (docs/results.md).
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16)

    best, best_accuracy, reports = copy.deepcopy(net), -1.0, []
    for epoch in range(1, config.epochs + 1):
        learner.train()
        started, total_loss = time.perf_counter(), 0.0
        mnist_part = torch.randperm(len(mnist), generator=gen, device=device)[:per_epoch]
        epoch_index = torch.cat([mnist_part, extra_index])
        order = epoch_index[torch.randperm(len(epoch_index), generator=gen, device=device)]
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{config.epochs}", disable=not config.progress, leave=False)
        for step in bar:
            if on_step:
                on_step(epoch, step, steps)
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, styled = augment.marked(images[batch].unsqueeze(1).float() / 255.0, labels[batch], gen)
            x = normalize(x).contiguous(memory_format=torch.channels_last)
            y, follows_teacher = labels[batch], distilled[batch]
            with torch.no_grad(), autocast:
                target = F.softmax(teacher(x).float() / config.softening, dim=1) if teacher is not None and config.distill > 0 else None
            total_loss += learner.step(x, y, follows_teacher & ~styled, styled & follows_teacher, target, autocast)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total_loss / (step + 1):.4f}")

        report = EpochReport(epoch, total_loss / steps, net_accuracy(net, val, device=device), time.perf_counter() - started)
        if on_epoch:
            report.extra = on_epoch(report, net)
        reports.append(report)
        if report.val_accuracy >= best_accuracy:  # ties go to the later, further-trained epoch
            best, best_accuracy = copy.deepcopy(net), report.val_accuracy
    return FitResult(best=best.cpu().eval(), epochs=reports)


class _Learner:
    """A net with its optimiser and one-cycle schedule: one step at a time."""

    def __init__(self, net: torch.nn.Module, config: FitConfig, *, total: int):
        self.net, self.config = net, config
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        # Warm up for `warmup_share` of the steps, ending half a step off a whole one: OneCycleLR
        # divides by the warm-up's length, which is zero steps for a 5-step run at exactly a fifth.
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, total_steps=total, pct_start=(round(config.warmup_share * total) + 0.5) / total
        )

    def train(self) -> None:
        self.net.train()
        if self.config.freeze_bn:
            for module in self.net.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def step(self, x, labels, follows_teacher, teacher_only, target, autocast) -> float:
        with autocast:
            loss = _loss(self.net, x, labels, follows_teacher=follows_teacher, teacher_only=teacher_only, target=target, config=self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return loss.item()


def look_alikes_find(
    net: torch.nn.Module, mnist: Digits, drawn: torch.Tensor, *, per_drawing: int, device: torch.device | str = "cpu", desc: str = ""
) -> torch.Tensor:
    """Indices of the MNIST images of other digits that `net` finds most like the digits in
    `drawn` (the users' drawings' labels), `per_drawing` for each drawing. Replayed beside the
    corrections, they hold the boundary where MNIST needs it: without them, teaching that a
    1 may start with a long lead-in costs MNIST's 7s."""
    if per_drawing <= 0 or len(drawn) == 0:
        return torch.zeros(0, dtype=torch.long)
    likeness = probabilities(net, mnist.images, device=device, desc=desc).cpu()
    chosen = []
    for digit, count in zip(*torch.unique(drawn.cpu(), return_counts=True)):
        score = likeness[:, digit].masked_fill(mnist.labels.cpu() == digit, -1.0)
        chosen.append(score.topk(min(int(count) * per_drawing, len(score))).indices)
    return torch.unique(torch.cat(chosen))


def _loss(net, x, labels, *, follows_teacher: torch.Tensor, target: torch.Tensor | None, config: FitConfig, teacher_only: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on the labels; on the images that `follows_teacher` marks (MNIST's, and the
    negatives when the teacher knew "not a digit"), blended with the teacher's softened answers
    (`target`). The corrections are exactly where the teacher is wrong, so they follow their labels only.
    `teacher_only` images (MNIST given a writing style) follow the teacher alone: a label would
    move the line between 1 and 7 (a lead-in 1 is half a 7), the teacher keeps it where it was."""
    logits = net(x).float()
    hard = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing, reduction="none")
    if target is None:
        return hard.mean()
    t = config.softening
    soft = F.kl_div(F.log_softmax(logits / t, dim=1), target, reduction="none").sum(dim=1) * t * t
    weight = config.distill * follows_teacher.float()
    if teacher_only is not None:
        weight = torch.where(teacher_only, 1.0, weight)
    return ((1 - weight) * hard + weight * soft).mean()

"""The training loop: batched augmentation, AdamW with a one-cycle schedule, an evaluation per
epoch. Reads top to bottom; the management command only parses flags and calls `fit`.
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from recognizer.preprocessing import normalize
from training.augment import Augment
from training.data import Digits


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class EpochReport:
    epoch: int
    loss: float
    val_accuracy: float
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    best: torch.nn.Module  # the epoch with the best validation accuracy
    latest: torch.nn.Module
    epochs: list[EpochReport]


def fit(
    net: torch.nn.Module,
    *,
    train: Digits,
    repeats: torch.Tensor,
    val: Digits,
    augment: Augment,
    config: FitConfig,
    on_epoch: Callable[[EpochReport, torch.nn.Module], dict[str, float]] | None = None,
) -> FitResult:
    """Train `net` in place. `repeats[i]` is how often image i appears per epoch (oversampling);
    `on_epoch` may evaluate more and return figures to print with the epoch."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    net.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPU
    images, labels = train.images.to(device), train.labels.to(device)
    epoch_index = torch.repeat_interleave(torch.arange(len(train), device=device), repeats.to(device))

    steps = math.ceil(len(epoch_index) / config.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps, pct_start=0.2
    )

    best, best_accuracy, reports = copy.deepcopy(net), -1.0, []
    for epoch in range(1, config.epochs + 1):
        net.train()
        started, total_loss = time.perf_counter(), 0.0
        order = epoch_index[torch.randperm(len(epoch_index), generator=gen, device=device)]
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{config.epochs}", disable=not config.progress, leave=False)
        for step in bar:
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            x = augment(images[batch].unsqueeze(1).float() / 255.0, labels[batch], gen)
            x = normalize(x).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x), labels[batch], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total_loss / (step + 1):.4f}")

        report = EpochReport(epoch, total_loss / steps, accuracy(net, val, device=device), time.perf_counter() - started)
        if on_epoch:
            report.extra = on_epoch(report, net)
        reports.append(report)
        if report.val_accuracy >= best_accuracy:  # ties go to the later, further-trained epoch
            best, best_accuracy = copy.deepcopy(net), report.val_accuracy
    return FitResult(best=best.cpu().eval(), latest=net.cpu().eval(), epochs=reports)


@torch.inference_mode()
def logits(net: torch.nn.Module, images: torch.Tensor, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 10) logits, in batches."""
    net.eval()
    net.to(device)
    out = [net(normalize(chunk.to(device)).contiguous(memory_format=torch.channels_last)).cpu() for chunk in images.split(1000)]
    return torch.cat(out) if out else torch.zeros(0, 10)


def probabilities(net: torch.nn.Module, images: torch.Tensor, *, device: torch.device | str = "cpu", temperature: float = 1.0) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 10) softmax probabilities, in batches."""
    return F.softmax(logits(net, images, device=device) / temperature, dim=1)


def accuracy(net: torch.nn.Module, digits: Digits, *, device: torch.device | str = "cpu") -> float:
    """Share of `digits` the net reads right, in [0, 1]; NaN when there are none."""
    if len(digits) == 0:
        return math.nan
    was_training = net.training
    predicted = probabilities(net, digits.images, device=device).argmax(dim=1)
    net.train(was_training)
    return (predicted == digits.labels.cpu()).float().mean().item()

"""Publishing a run's model: a new version with its metadata, active if the gate promoted it."""

import secrets
from dataclasses import asdict

import torch
from django.utils import timezone

from recognizer.publishing import model_publish
from training.models import TrainingRun
from training.nn.augment import Augment
from training.nn.calibration import temperature_fit
from training.nn.inference import logits
from training.nn.trainer import FitResult
from training.options import RunOptions
from training.runs.decision import Decision
from training.steps.data import RunData


def model_metadata(*, run: TrainingRun, options: RunOptions, data: RunData, result: FitResult, net: torch.nn.Module, decision: Decision, version: str) -> dict:
    """The one place where a published model's metadata is made."""
    # Calibration: the temperature that makes its confidence honest on held-out MNIST.
    temperature = temperature_fit(logits=logits(net, data.mnist_val.images), labels=data.mnist_val.labels)
    d = decision
    return {
        "version": version,
        "trained_at": timezone.now().isoformat(timespec="seconds"),
        "mnist_test_accuracy": round(d.mnist.right_after / d.mnist.count, 6),
        "temperature": round(temperature, 4),
        "corrections_accuracy": round(d.corrections.right_after / d.corrections.count, 6) if d.corrections.count else None,
        "base_version": run.base_version,
        "run": run.pk,
        "epochs": options.epochs,
        "best_epoch": result.best_epoch,
        "mnist_samples": len(data.mnist_train),
        "users_samples": len(data.train_sample_ids),
        "seed": options.seed,
        "augment": asdict(Augment(**options.augmentation)),
        "seconds_per_epoch": round(sum(r.seconds for r in result.epochs) / len(result.epochs), 1),
    }


# Metadata keys as models published before one vocabulary (7 December 2026) wrote them, the shipped one too.
METADATA_RENAMED = {"feedback_accuracy": "corrections_accuracy", "feedback_samples": "users_samples"}


def model_metadata_read(metadata: dict) -> dict:
    """A published model's metadata under today's keys, whichever keys it was written with."""
    return {METADATA_RENAMED.get(key, key): value for key, value in metadata.items()}


def model_version_publish(*, run: TrainingRun, options: RunOptions, data: RunData, result: FitResult, net: torch.nn.Module, decision: Decision) -> str:
    """Publish `net` as a new version, the active one if the decision promotes it; its name."""
    version = f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    metadata = model_metadata(run=run, options=options, data=data, result=result, net=net, decision=decision, version=version)
    model_publish(net=net, metadata=metadata, activate=decision.promote)
    return version

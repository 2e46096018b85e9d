"""The gate's decision as data: whether a new model is promoted, what it failed, which net is
published, and every figure it rests on; `decision_text` is the one place its words are made.
Kept in a run's report (training.report) and read by the admin, so it needs no torch."""

from dataclasses import asdict, dataclass
from enum import StrEnum

from training.text import percent_text


class Failure(StrEnum):
    MNIST_WORSE = "MNIST test got worse beyond its tolerance"
    CORRECTIONS_NOT_BETTER = "the held-out corrections did not improve"
    CONFIRMED_WORSE = "the held-out confirmed drawings got worse beyond their tolerance"


@dataclass(frozen=True)
class Comparison:
    """One judging set read by the active model (before) and the published net (after)."""

    right_before: int | None  # None: there was no active model
    right_after: int
    count: int
    tolerance: float | None = None  # points that may be lost; None: it must improve

    @property
    def change(self) -> float:
        """Accuracy points gained, negative when lost."""
        if not self.count or self.right_before is None:
            return 0.0
        return (self.right_after - self.right_before) / self.count * 100


@dataclass(frozen=True)
class Decision:
    promote: bool
    failures: tuple[Failure, ...]  # what the published net failed; promoted anyway only with force
    mnist: Comparison
    corrections: Comparison
    confirmed: Comparison
    published: str = "new"  # "new": the fine-tuned model; "blend": part of the way to it from the active one
    keep: float = 1.0  # the share of the way from the active model's weights to the new one's
    new_model_mnist_change: float | None = None  # with a blend: what the new model itself did on MNIST test
    forced: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Decision":
        comparisons = {name: Comparison(**values[name]) for name in ("mnist", "corrections", "confirmed")}
        return cls(**{**values, **comparisons, "failures": tuple(Failure(f) for f in values["failures"])})


def beyond(change: float, tolerance: float) -> bool:
    """A loss of exactly the tolerance is within it: 99.54% -> 99.44% is -0.1 points, though in
    floating point it comes out as -0.10000000000000009."""
    return round(change, 9) < -tolerance


def decision_text(d: Decision) -> str:
    """The decision in words, with every figure it rests on."""
    if d.mnist.right_before is None:
        return f"MNIST test {_share(d.mnist.right_after, d.mnist.count)}; there was no active model to compare with: promoted."
    lines = [
        f"MNIST test {_share(d.mnist.right_before, d.mnist.count)} -> {_share(d.mnist.right_after, d.mnist.count)} "
        f"({d.mnist.change:+.2f} points, tolerance {d.mnist.tolerance:g})"
    ]
    if d.corrections.count:
        lines.append(f"held-out corrections {d.corrections.right_before} -> {d.corrections.right_after} right of {d.corrections.count}")
    else:
        lines.append("no held-out corrections to improve on, so the guards alone decide")
    if d.confirmed.count:
        lines.append(
            f"held-out confirmed {_share(d.confirmed.right_before, d.confirmed.count)} -> "
            f"{_share(d.confirmed.right_after, d.confirmed.count)} ({d.confirmed.change:+.2f} points, tolerance {d.confirmed.tolerance:g})"
        )
    else:
        lines.append("no held-out confirmed drawings")
    figures = "; ".join(lines)
    if d.published == "blend":
        figures = (
            f"Published {d.keep:.0%} of the way from the active model to the new one, which lost "
            f"{-(d.new_model_mnist_change or 0):.2f} points of MNIST test (beyond the tolerance): {figures}"
        )
    if not d.failures:
        return f"{figures}: promoted."
    why = " and ".join(d.failures)
    if d.forced:
        return f"{figures}: {why}, but promoted because of force."
    return f"{figures}: {why}, so kept as a candidate. Activate it anyway with: manage.py activate_model <version>."


def _share(right_count: int, count: int) -> str:
    return percent_text(right_count / count if count else None)

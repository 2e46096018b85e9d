"""The gate's decision as data: whether a new model is promoted, what it failed, which net is
published, and every figure it rests on; `decision_text` is the one place its words are made.
Kept in a run's report (training.runs.report) and read by the admin, so it needs no torch."""

from dataclasses import asdict, dataclass
from enum import StrEnum

from training.runs.text import many_text as _many
from training.runs.text import percent_text


class Failure(StrEnum):
    """A clause of the gate the published net failed, stored as a short code; its words are
    FAILURE_TEXT's (`failures_text`), made here beside `decision_text`."""

    MNIST_WORSE = "mnist_lost"
    MNIST_DIGIT_WORSE = "mnist_digit_lost"
    PEN_WORSE = "pen_lost"
    PEN_DIGIT_WORSE = "pen_digit_lost"
    CORRECTIONS_NOT_BETTER = "corrections_not_better"
    CORRECTIONS_WORSE = "corrections_worse"  # too few to carry a promotion, enough to hold one back
    CONFIRMED_WORSE = "confirmed_lost"
    REFUSAL_WORSE = "refusal_lost"


FAILURE_TEXT = {
    Failure.MNIST_WORSE: "MNIST test got worse beyond its tolerance",
    Failure.MNIST_DIGIT_WORSE: "a digit of MNIST test got worse beyond its tolerance",
    Failure.PEN_WORSE: "the pen guard set got worse beyond its tolerance",
    Failure.PEN_DIGIT_WORSE: "a digit of the pen guard set got worse beyond its tolerance",
    Failure.CORRECTIONS_NOT_BETTER: "the held-out corrections did not improve",
    Failure.CORRECTIONS_WORSE: "the held-out corrections got worse beyond chance",
    Failure.CONFIRMED_WORSE: "the held-out confirmed drawings got worse beyond their tolerance",
    Failure.REFUSAL_WORSE: "held-out drawings that are not digits were answered \"not a digit\" less, beyond the tolerance",
}


def failure_of(stored: str) -> Failure:
    """A stored failure: its code, or the words reports stored before the codes (7 December 2026) kept."""
    return Failure(stored) if stored in Failure._value2member_map_ else next(f for f, text in FAILURE_TEXT.items() if text == stored)


def failures_text(failures: tuple[Failure | str, ...]) -> str:
    """"MNIST test got worse beyond its tolerance and ...": failures (or stored ones) in words."""
    return " and ".join(FAILURE_TEXT[failure_of(f)] for f in failures)


@dataclass(frozen=True)
class Comparison:
    """One judging set read by the active model (before) and the published net (after)."""

    right_before: int | None  # None: there was no active model
    right_after: int
    count: int
    tolerance: float | None = None  # points that may be lost; None: it must improve
    # The drawings whose answer changed (a guard clause's sign test, training.steps.gate), and the chance
    # of losing this many of them if the new model were no worse, corrected for the number of
    # clauses tested (Holm). None in reports from before issue 37, 6 December 2026 (the tolerance alone
    # decided) and for the users' held-out drawings, which are not tested so.
    worse: int | None = None  # read right before, wrong after
    better: int | None = None  # read wrong before, right after
    chance: float | None = None
    false_refusal_rate: float | None = None  # the chance below which a loss beyond the tolerance fails
    # A blend's clause that the new model lost beyond chance: the loss is shown to be real, so the
    # blend must bring it within the tolerance; chance no longer excuses it (training.steps.gate.judge).
    proven: bool = False

    @property
    def change(self) -> float:
        """Accuracy points gained, negative when lost."""
        if not self.count or self.right_before is None:
            return 0.0
        return (self.right_after - self.right_before) / self.count * 100

    @property
    def lost(self) -> bool:
        """Lost more than its tolerance and, where the changed drawings were counted, beyond
        chance: more of them went wrong than a model no worse would lose but 1 time in
        1 / false_refusal_rate (training.steps.gate)."""
        if self.tolerance is None or not beyond(self.change, self.tolerance):
            return False
        return self.proven or self.chance is None or self.false_refusal_rate is None or self.chance <= self.false_refusal_rate


NO_COMPARISON = Comparison(right_before=0, right_after=0, count=0)


@dataclass(frozen=True)
class Decision:
    promote: bool
    failures: tuple[Failure, ...]  # what the published net failed; promoted anyway only with force
    mnist: Comparison
    corrections: Comparison  # every held-out correction, reviewed or not
    confirmed: Comparison
    published: str = "new"  # "new": the fine-tuned model; "blend": part of the way to it from the active one
    keep: float = 1.0  # the share of the way from the active model's weights to the new one's
    new_model_mnist_change: float | None = None  # with a blend: what the new model itself did on MNIST test
    forced: bool = False
    # The trusted guards (reports from before 6 December 2026 have none of these).
    mnist_digits: tuple[Comparison, ...] = ()  # MNIST test digit by digit, 0 to 9
    pen: Comparison = NO_COMPARISON  # the pen guard set shipped with the code (training.nn.guard)
    pen_digits: tuple[Comparison, ...] = ()
    approved_corrections: Comparison = NO_COMPARISON  # the held-out corrections a reviewer approved
    approved_confirmed: Comparison = NO_COMPARISON
    new_model_failures: tuple[Failure, ...] = ()  # with a blend: what the new model itself failed
    # The fewest deciding held-out corrections that may carry a promotion (RunOptions.min_held_out);
    # 0 in reports from before 6 December 2026, when any number did.
    held_out_minimum: int = 0
    # Held-out letters, scribbles and shapes answered "not a digit" (reports before 6 December 2026 have none).
    negatives: Comparison = NO_COMPARISON
    # Every net the gate judged in its run, in order: the new model, then each blend toward it
    # (training.steps.gate.judge), so a reviewer sees what was tried and what each failed. None in
    # reports made before the run page listed them (7 December 2026), and in each entry itself.
    tried: tuple["Decision", ...] | None = None

    @property
    def deciding_corrections(self) -> Comparison:
        """The approved held-out corrections when there are some: unreviewed ones inform only then."""
        return self.approved_corrections if self.approved_corrections.count else self.corrections

    @property
    def corrections_carry(self) -> bool:
        """Whether the deciding held-out corrections are enough to carry a promotion: they must
        improve. Fewer can only hold a model back, and the guards decide."""
        count = self.deciding_corrections.count
        return bool(count) and count >= self.held_out_minimum

    @property
    def held_out_count(self) -> int:
        """The users' held-out drawings the decision rests on, corrections and confirmed, reviewed or not."""
        return self.corrections.count + self.confirmed.count

    @property
    def deciding_confirmed(self) -> Comparison:
        return self.approved_confirmed if self.approved_confirmed.count else self.confirmed

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Decision":
        values = dict(values)
        for name in ("mnist", "corrections", "confirmed", "pen", "approved_corrections", "approved_confirmed", "negatives"):
            if name in values:
                values[name] = Comparison(**values[name])
        for name in ("mnist_digits", "pen_digits"):
            values[name] = tuple(Comparison(**c) for c in values.get(name, ()))
        for name in ("failures", "new_model_failures"):
            values[name] = tuple(failure_of(f) for f in values.get(name, ()))
        if values.get("tried") is not None:
            values["tried"] = tuple(cls.from_dict(net) for net in values["tried"])
        return cls(**values)


def beyond(change: float, tolerance: float) -> bool:
    """A loss of exactly the tolerance is within it: 99.54% -> 99.44% is -0.1 points, though in
    floating point it comes out as -0.10000000000000009."""
    return round(change + tolerance, 9) < 0


def decision_text(d: Decision, *, version: str | None = None) -> str:
    """The decision in words, with every figure it rests on, first how many of the users' drawings.
    With the published `version`, a candidate's words end with the command that activates it."""
    if not d.held_out_minimum or d.mnist.right_before is None:
        return _decision_words(d, version)
    count = d.held_out_count
    rests = f"Rests on {_many(count, 'held-out drawing')} of the users' ({_many(d.corrections.count, 'correction')}, {d.confirmed.count:,} confirmed)"
    return f"{rests}. {_decision_words(d, version)}"


def _decision_words(d: Decision, version: str | None) -> str:
    if d.mnist.right_before is None:
        return f"MNIST test {_share(d.mnist.right_after, d.mnist.count)}; there was no active model to compare with: promoted."
    lines = [_guard("MNIST test", d.mnist, d.mnist_digits)]
    if d.pen.count:
        lines.append(_guard("pen guard set", d.pen, d.pen_digits))
    lines.append(_held_out("corrections", d.corrections, d.approved_corrections))
    if d.deciding_corrections.count and not d.corrections_carry:
        lines[-1] += (
            f": under the {d.held_out_minimum} needed to show an improvement, so they can only hold the model back, "
            "when they got worse beyond chance, and the guards decide"
        )
    lines.append(_held_out("confirmed", d.confirmed, d.approved_confirmed))
    if d.negatives.count:
        lines.append(f"held-out not digits answered so {_change_text(d.negatives)}")
    figures = "; ".join(lines)
    if d.published == "blend":
        failed = failures_text(d.new_model_failures) or f"lost {-(d.new_model_mnist_change or 0):.2f} points of MNIST test"
        verb = "Published" if d.promote else "Tried"  # a blend the gate refused was published nowhere
        figures = f"{verb} {d.keep:.0%} of the way from the active model to the new one, which failed ({failed}): {figures}"
    if not d.failures:
        return f"{figures}: promoted."
    why = failures_text(d.failures)
    if d.forced:
        return f"{figures}: {why}, but promoted because of force."
    # While the gate judges, the model has no version yet: the hint waits for the run's record.
    hint = f" Activate it anyway with: manage.py activate_model {version}." if version else ""
    return f"{figures}: {why}, so kept as a candidate.{hint}"


def _guard(name: str, whole: Comparison, digits: tuple[Comparison, ...]) -> str:
    text = f"{name} {_change_text(whole)}"
    judged = [(digit, c) for digit, c in enumerate(digits) if c.count]
    if judged:
        digit, worst = min(judged, key=lambda item: item[1].change)
        text += f", its worst digit {digit} {_change_text(worst)}"
    return text


def _held_out(name: str, every: Comparison, approved: Comparison) -> str:
    if not every.count:
        return "no held-out corrections to improve on, so the guards alone decide" if name == "corrections" else f"no held-out {name}"
    if not approved.count:
        return f"held-out {name} {_held_out_text(name, every)} (none reviewed yet)"
    return f"approved held-out {name} {_held_out_text(name, approved)}, which decide; all held-out {name} {_held_out_text(name, every)}, which inform only"


def _held_out_text(name: str, c: Comparison) -> str:
    """Corrections as counts (they must improve), confirmed drawings as a share (they may lose their tolerance)."""
    if name != "corrections":
        return _change_text(c)
    changed = f" ({c.worse} lost, {c.better} gained, by chance {_chance_text(c.chance)})" if c.chance is not None and c.worse > c.better else ""
    return f"{c.right_before} -> {c.right_after} right of {c.count}{changed}"


def _change_text(c: Comparison) -> str:
    """"99.64% -> 99.55% (-0.09 points, tolerance 0.1)", with the changed drawings where they
    were counted: "(-0.09 points: 12 lost, 3 gained, by chance 4.2%; tolerance 0.1)"."""
    changed = ""
    if c.worse is not None and c.better is not None:
        changed = f": {c.worse:,} lost, {c.better:,} gained"
        if c.chance is not None and c.worse > c.better:
            changed += f", by chance {_chance_text(c.chance)}"
        if c.proven:
            changed += ", a loss the new model showed real"
    return f"{_share(c.right_before, c.count)} -> {_share(c.right_after, c.count)} ({c.change:+.2f} points{changed}{';' if changed else ','} tolerance {c.tolerance:.3g})"


def _chance_text(chance: float) -> str:
    """"0.098%", "1.3%", "27%": two figures where they matter."""
    return f"{chance * 100:.2g}%" if chance < 0.1 else f"{chance:.0%}"


def _share(right_count: int | None, count: int) -> str:
    return percent_text(right_count / count if count and right_count is not None else None)

"""The run page's decision as a reviewer reads it: a one-line verdict, a row per clause of the
gate (before, after, allowed, held or not) and the nets the gate tried, with the command that
activates or rolls back, naming real versions. Made here from the typed `Decision` alone, so
reports from before a field existed still read; the admin's template only loops over the rows.
(`training.runs.decision.decision_text` makes the same decision's words for the run log and record.)"""

from dataclasses import dataclass
from enum import StrEnum

from training.runs.decision import Comparison, Decision, Failure, failures_text
from training.runs.text import many_text, percent_text


class Outcome(StrEnum):
    """A clause's outcome, in words as well as colour: a failed row reads as failed in any theme."""

    HELD = "held"
    FAILED = "FAILED"
    INFORMS = "informs only"  # unreviewed drawings when reviewed ones decide
    NOT_JUDGED = "not judged"  # nothing held out, or no active model to compare with


@dataclass(frozen=True)
class ClauseRow:
    clause: str
    before: str
    after: str
    change: str
    allowed: str
    outcome: Outcome
    comparison: Comparison | None = None  # the counts the row rests on (None for a summary row)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    def short(self, *, allowed: bool = True) -> str:
        """"pen guard set, digit 1 (-2.32 points, -6 of 259; may lose 1 point)", for a sentence."""
        return f"{self.clause} ({self.change}; {self.allowed})" if allowed else f"{self.clause} ({self.change})"


@dataclass(frozen=True)
class TriedRow:
    """One net the gate judged: the new model, or a blend toward it from the active model."""

    net: str
    outcome: str
    failed: bool
    published: bool


@dataclass(frozen=True)
class DecisionView:
    verdict: str  # one line: promoted, or kept as a candidate because ..., resting on N held-out drawings
    refused: bool  # kept as a candidate: the gate did not put it into service
    rows: list[ClauseRow]
    tried: list[TriedRow]
    tried_note: str  # why no blend was tried, or that this older report did not keep them
    hint: str  # what the command does: activate it anyway, or roll back to the model it replaced
    command: str  # that command, naming the real version; "" when there is none to give

    @property
    def failed_rows(self) -> list[ClauseRow]:
        return [row for row in self.rows if row.failed]


def decision_view(*, decision: Decision, version: str, base_version: str, active_version: str | None) -> DecisionView:
    """The run page's decision for a finished run that published `version` over `base_version`."""
    d = decision
    rows = clause_rows(d)
    tried, tried_note = _tried(d)
    hint, command = "", ""
    if not d.promote and version:
        hint, command = "To serve it anyway:", f"manage.py activate_model {version}"
    elif version and version == active_version and base_version:
        hint, command = "To roll back to the model it replaced:", f"manage.py activate_model {base_version}"
    return DecisionView(
        verdict=_verdict(d, rows, tried), refused=not d.promote, rows=rows, tried=tried, tried_note=tried_note, hint=hint, command=command
    )  # fmt: skip


def clause_rows(d: Decision) -> list[ClauseRow]:
    """A row per clause of the gate, in the order it judges them: MNIST test and each of its
    digits that moved, the pen guard set and its digits, the refusal guard, the held-out
    corrections and confirmed right guesses. A clause a report has no figures for (older
    reports: no pen guard, no refusal guard, no digits) has no row."""
    rows = [_row("MNIST test", d.mnist)]
    rows += _digit_rows("MNIST test", d.mnist_digits)
    if d.pen.count:
        rows.append(_row("pen guard set", d.pen))
        rows += _digit_rows("pen guard set", d.pen_digits)
    if d.negatives.count:
        rows.append(_row('refusal guard: held-out not digits answered "not a digit"', d.negatives))
    rows += _corrections_rows(d)
    rows += _confirmed_rows(d)
    return rows


def _row(clause: str, c: Comparison, *, allowed: str | None = None, outcome: Outcome | None = None) -> ClauseRow:
    if not c.count:
        return ClauseRow(f"{clause}: none held out", "–", "–", "", "–", Outcome.NOT_JUDGED)
    compared = c.right_before is not None
    share = _share if c.tolerance is not None else _counted
    change = f"{c.change:+.2f} points, {c.right_after - c.right_before:+,} of {c.count:,}" if compared else ""
    if compared and c.worse is not None:  # the drawings whose answer changed, as the sign test counts them
        change += f": {c.worse:,} lost, {c.better:,} gained"
    if compared and c.tolerance is None:  # corrections: counts, with the count beside them already
        change = f"{c.right_after - c.right_before:+,}"
        if c.worse is not None and c.worse > c.better and c.chance is not None:
            change += f": {c.worse:,} lost, {c.better:,} gained, by chance {c.chance:.0%}"
    if outcome is None:
        outcome = Outcome.NOT_JUDGED if not compared else Outcome.FAILED if c.lost else Outcome.HELD
    return ClauseRow(
        clause, share(c.right_before, c.count), share(c.right_after, c.count), change, allowed or _allowed(c), outcome, comparison=c
    )  # fmt: skip


def _digit_rows(name: str, digits: tuple[Comparison, ...]) -> list[ClauseRow]:
    """The digits whose figure moved; one row saying so when none did."""
    moved = [(digit, c) for digit, c in enumerate(digits) if c.count and c.right_before is not None and c.right_after != c.right_before]
    if not moved and any(c.count and c.right_before is not None for c in digits):
        return [ClauseRow(f"{name}, each digit", "", "", "no digit changed", "–", Outcome.HELD)]
    return [_row(f"{name}, digit {digit}", c) for digit, c in moved]


def _corrections_rows(d: Decision) -> list[ClauseRow]:
    every, approved, deciding = d.corrections, d.approved_corrections, d.deciding_corrections
    if not deciding.count:
        return [ClauseRow("held-out corrections: none held out, so the guards alone decide", "–", "–", "", "–", Outcome.NOT_JUDGED)]
    if d.corrections_carry:
        allowed = "must improve"
    else:  # too few to show an improvement (RunOptions.min_held_out): they can only hold it back
        allowed = f"may not get worse beyond chance (under the {d.held_out_minimum} that carry a promotion)"
    failed = {Failure.CORRECTIONS_NOT_BETTER, Failure.CORRECTIONS_WORSE} & set(d.failures)
    outcome = Outcome.NOT_JUDGED if deciding.right_before is None else Outcome.FAILED if failed else Outcome.HELD
    if not approved.count:
        return [_row("held-out corrections (none reviewed yet)", every, allowed=allowed, outcome=outcome)]
    return [
        _row("approved held-out corrections", approved, allowed=allowed, outcome=outcome),
        _row("all held-out corrections", every, allowed="–", outcome=Outcome.INFORMS),
    ]


def _confirmed_rows(d: Decision) -> list[ClauseRow]:
    every, approved = d.confirmed, d.approved_confirmed
    if not every.count:
        return [_row("held-out confirmed right guesses", every)]
    if not approved.count:
        return [_row("held-out confirmed right guesses (none reviewed yet)", every)]
    return [
        _row("approved held-out confirmed right guesses", approved),
        _row("all held-out confirmed right guesses", every, allowed="–", outcome=Outcome.INFORMS),
    ]


def _allowed(c: Comparison) -> str:
    tolerance = c.tolerance
    if tolerance is None:
        return "must improve"
    # A digit's tolerance is at least one drawing of it (training.steps.gate.decide): 100/179 reads as 0.56.
    allowed = f"may lose {round(tolerance, 2):g} point{'' if tolerance == 1 else 's'}"
    if c.proven:
        allowed += " (the new model lost it beyond chance: this blend must hold it)"
    elif c.chance is not None and c.false_refusal_rate is not None:
        # The sign test (training.steps.gate): a larger loss fails only if chance explains it less than this often.
        allowed += f", or more by chance (here {c.chance:.0%}; fails under {c.false_refusal_rate:.0%})"
    return allowed


def _share(right: int | None, count: int) -> str:
    return percent_text(right / count if right is not None and count else None)


def _counted(right: int | None, count: int) -> str:
    """Held-out corrections as counts: "0 of 6 right" reads better than 0%."""
    return "–" if right is None else f"{right:,} of {count:,} right"


def _verdict(d: Decision, rows: list[ClauseRow], tried: list[TriedRow]) -> str:
    if d.mnist.right_before is None:
        return f"Promoted: there was no active model to compare with (MNIST test {_share(d.mnist.right_after, d.mnist.count)})."
    count = d.held_out_count
    rests = (
        f"resting on {many_text(count, 'held-out drawing')} of the users' ({many_text(d.corrections.count, 'correction')}, {d.confirmed.count:,} confirmed)"
        if count else "resting on the guards alone: none of the users' drawings were held out"
    )  # fmt: skip
    failed = _failed_text([row for row in rows if row.failed])
    if d.forced:
        return f"Promoted by force although it failed {failed}, {rests}."
    if not d.promote:
        blends = sum(1 for row in tried if row.failed) - 1
        also = "" if blends < 1 else ", and so did the blend tried" if blends == 1 else f", and so did all {blends} blends tried"
        return f"Kept as a candidate because it failed {failed}{also}, {rests}."
    if d.published == "blend":
        new_model = _failed_text([row for row in clause_rows(d.tried[0]) if row.failed]) if d.tried else failures_text(d.new_model_failures)
        return f"Promoted a blend keeping {d.keep:.0%} of the new weights, which held every clause (the new model failed {new_model}), {rests}."
    return f"Promoted: it held every clause, {rests}."


def _failed_text(failed: list[ClauseRow], *, allowed: bool = True, most: int = 2) -> str:
    """The failed clauses for a sentence; `most` of them, the table has the rest."""
    shown = "; ".join(row.short(allowed=allowed) for row in failed[:most])
    more = len(failed) - most
    return f"{shown}; and {more} more" if more > 0 else shown or "a clause"


def _tried(d: Decision) -> tuple[list[TriedRow], str]:
    """The nets the gate judged, with what each failed; and a note where that list says too little."""
    if d.tried is None:  # an older report: only the published net and the new model's failures are known
        if d.published == "blend":
            return [
                TriedRow("the new model", "failed " + (failures_text(d.new_model_failures) or "MNIST test"), True, False),
                TriedRow(f"a blend keeping {d.keep:.0%} of the new weights", "held every clause: published", False, True),
            ], "This run's report is older than the record of every blend tried: any tried between these are not listed."
        return [], "" if d.promote else "This run's report is older than the record of the blends tried."
    rows = []
    for index, net in enumerate(d.tried):
        failed = [row for row in clause_rows(net) if row.failed]
        # The published net: the blend that passed (the last judged), else the new model, active or kept as a candidate.
        published = index == len(d.tried) - 1 if d.published == "blend" else index == 0
        outcome = "failed " + _failed_text(failed, allowed=False, most=3) if failed else "held every clause"
        if published:
            outcome += ": published" + ("" if d.promote else " as a candidate") + (" by force" if d.forced else "")
        name = "the new model" if net.keep == 1.0 else f"a blend keeping {net.keep:.0%} of the new weights"
        rows.append(TriedRow(name, outcome, bool(failed), published))
    if len(d.tried) > 1:
        return rows, ""
    if not d.promote and {Failure.CORRECTIONS_NOT_BETTER, Failure.CORRECTIONS_WORSE} & set(d.failures):
        return rows, "No blend was tried: a blend cannot bring back held-out corrections the new model did not improve."
    if not d.promote and {Failure.PEN_WORSE, Failure.PEN_DIGIT_WORSE} & set(d.failures):
        return rows, (
            "No blend was tried: the new model read real pen drawings of the guard set worse beyond chance, so the "
            "corrections taught it something wrong (as poisoning does), and a blend would only dilute that."
        )
    if not d.promote:
        return rows, "No blend was tried: the fallback is off (fallback_keep is not between 0 and 1)."
    return [], "No blend was needed: the new model held every clause." if not d.forced else "No blend was tried: promoted by force."

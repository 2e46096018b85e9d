"""The gate step: whether a new model goes live, and which net is published.

It judges on what the site trusts. Promotion needs every trusted guard to hold:
- MNIST test, on the whole and digit by digit;
- the pen guard set (real pen drawings shipped with the code, training.nn.guard), on the whole and
  digit by digit;
- the held-out drawings a reviewer approved: corrections must improve, confirmed right guesses
  may lose only their tolerance;
- drawings that are not digits, never trained on: real handwritten characters of held-out writers
  and a held-out alphabet (training.nn.omniglot), and letters, scribbles and shapes made here and held
  out by font and seed (training.nn.negatives): the share answered "not a digit".
Each of these guard clauses fails only when it lost more than its tolerance and beyond chance:
judged on the drawings whose answer changed (a sign test, see FALSE_REFUSAL_RATE).
Held-out drawings nobody reviewed can only hold a model back (when none are approved, the
held-out corrections must improve too), never carry one past a guard: anyone can send them.
Without held-out corrections the guards alone decide, and with fewer than `min_held_out` the
corrections can only hold a model back, when it reads fewer of them right beyond chance (the
same sign test), and the guards decide.

When the new model fails a guard it may have forgotten (MNIST, the refusal guard, the confirmed
drawings), blends from the active model's weights toward the new ones (as in WiSE-FT: most of
what the corrections taught is kept, most of what was lost comes back) are judged by the same
rule, keeping less of the new each time, and the first that passes is published instead. A new
model that read the pen guard set worse beyond chance gets none (NOT_BLENDED).

`judge` returns a typed `Decision` (training.runs.decision, where its words are made too).
"""

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from recognizer.net import net_with_classes
from training.nn.data import Digits
from training.nn.inference import blend
from training.options import RunOptions
from training.runs.chance import FALSE_REFUSAL_RATE, holm, sign_test
from training.runs.decision import Comparison, Decision, Failure, decision_text, failures_text
from training.steps.data import RunData
from training.steps.evaluate import Readings, right

# The fewest held-out corrections that may carry a promotion (`RunOptions.min_held_out`, 5), by a
# sign test. If the new model were no better than the active one, each held-out drawing that one
# reads right and the other wrong would go either way with even odds, so k of k going the new
# model's way happens by chance with probability 2^-k: 1/16 for 4, 1/32 (3.1%) for 5. Under 5
# even a perfect score (0 -> 4 of 4) is not evidence at the 5% level, so it cannot carry a
# promotion; and by the same test neither is a total loss (4 -> 0 of 4): they hold a model back
# only when they got worse beyond chance (at FALSE_REFUSAL_RATE), which a larger min_held_out
# makes possible. One held-out drawing going wrong held back honest retrains that had halved
# their writers' errors (docs/results.md, "The pen-1 drift: its cause"). Corrections too few to
# do either are trained on instead (training.steps.data). The guard clauses are judged by the
# same sign test (training.runs.chance).


def decide(
    *, data: RunData, before: Readings | None, after: Readings, options: RunOptions, keep: float = 1.0, proven: frozenset = frozenset()
) -> Decision:
    """The gate's rule applied to one net's readings (`after`) against the active model's.
    `proven`: the guard clauses (`lost_clauses` of the new model's decision) a blend is judged on
    by their tolerance alone."""
    def compare(name: str, digits: Digits, tolerance: float | None = None, rows: np.ndarray | None = None) -> Comparison:
        was, now = (None if before is None else getattr(before, name)), getattr(after, name)
        if rows is not None:
            was, now, digits = (None if was is None else was[rows]), now[rows], digits.take(torch.from_numpy(rows))
        return Comparison(None if was is None else right(was, digits), right(now, digits), len(digits), tolerance)

    def guard(name: str, digits: Digits, tolerance: float | None, rows: np.ndarray | None = None) -> Comparison:
        """A guard clause: also which drawings it lost and gained, for its sign test."""
        comparison = compare(name, digits, tolerance, rows)
        if before is None:
            return comparison
        labels = digits.labels.numpy() if rows is None else digits.labels.numpy()[rows]
        was, now = getattr(before, name), getattr(after, name)
        if rows is not None:
            was, now = was[rows], now[rows]
        was_right, now_right = was == labels, now == labels
        return replace(comparison, worse=int((was_right & ~now_right).sum()), better=int((~was_right & now_right).sum()))

    def held_out_corrections(rows: np.ndarray | None = None) -> Comparison:
        """Held-out corrections (they must improve: no tolerance), with their changed drawings and
        the chance of losing that many, so that too few to carry a promotion hold it back only
        when they got worse beyond chance."""
        comparison = guard("corrections", data.corrections_test, None, rows)
        if before is None:
            return comparison
        return replace(comparison, chance=sign_test(worse=comparison.worse, better=comparison.better), false_refusal_rate=FALSE_REFUSAL_RATE)

    def by_digit(name: str, digits: Digits, tolerance: float) -> tuple[Comparison, ...]:
        # One drawing may always be lost: on a quick run's 100 images a digit, 0.5 points would be half of one.
        rows = [digits.labels.numpy() == digit for digit in range(10)]
        return tuple(guard(name, digits, max(tolerance, 100 / max(mask.sum(), 1)), rows=mask) for mask in rows)

    o = options
    figures = dict(
        mnist=guard("mnist", data.mnist_test, o.mnist_tolerance),
        mnist_digits=by_digit("mnist", data.mnist_test, o.mnist_digit_tolerance),
        pen=guard("pen", data.pen_guard, o.pen_tolerance),
        pen_digits=by_digit("pen", data.pen_guard, o.pen_digit_tolerance),
        corrections=held_out_corrections(),
        approved_corrections=held_out_corrections(rows=data.corrections_approved.numpy()),
        confirmed=compare("confirmed", data.confirmed_test, o.users_tolerance),
        approved_confirmed=compare("confirmed", data.confirmed_test, o.users_tolerance, rows=data.confirmed_approved.numpy()),
        negatives=guard("negatives", data.negatives_test, o.refusal_tolerance),
    )
    if before is not None:
        figures |= _sign_tested({name: figures[name] for name in GUARD_CLAUSES}, proven=proven)
    decision = Decision(
        promote=True, failures=(), published="new" if keep == 1.0 else "blend", keep=keep, held_out_minimum=options.min_held_out, **figures
    )  # fmt: skip
    if before is None:  # the first model: nothing to compare with
        return decision
    failures = []
    if decision.mnist.lost:
        failures.append(Failure.MNIST_WORSE)
    if any(c.lost for c in decision.mnist_digits):
        failures.append(Failure.MNIST_DIGIT_WORSE)
    if decision.pen.lost:
        failures.append(Failure.PEN_WORSE)
    if any(c.lost for c in decision.pen_digits):
        failures.append(Failure.PEN_DIGIT_WORSE)
    corrections = decision.deciding_corrections
    if decision.corrections_carry and corrections.right_after <= corrections.right_before:
        failures.append(Failure.CORRECTIONS_NOT_BETTER)
    elif corrections.count and corrections.right_after < corrections.right_before and _beyond_chance(corrections):
        failures.append(Failure.CORRECTIONS_WORSE)
    if decision.deciding_confirmed.lost:
        failures.append(Failure.CONFIRMED_WORSE)
    if decision.negatives.lost:
        failures.append(Failure.REFUSAL_WORSE)
    return replace(decision, promote=not failures or o.force, failures=tuple(failures), forced=bool(failures) and o.force)


def _beyond_chance(c: Comparison) -> bool:
    """Whether a comparison's loss is beyond chance (FALSE_REFUSAL_RATE); true where nothing counted the changed drawings."""
    return c.chance is None or c.false_refusal_rate is None or c.chance <= c.false_refusal_rate


GUARD_CLAUSES = ("mnist", "mnist_digits", "pen", "pen_digits", "negatives")  # the Decision's fields tested together


def _sign_tested(clauses: dict[str, Comparison | tuple[Comparison, ...]], *, proven: frozenset = frozenset()) -> dict[str, Comparison | tuple[Comparison, ...]]:
    """The guard clauses with their chance (FALSE_REFUSAL_RATE): each clause's one-sided sign
    test on its changed drawings, Holm-adjusted over every clause with drawings to judge; those
    in `proven` marked so (judged by their tolerance alone)."""
    flat = [(name, i, c) for name, i, c in _each_clause(clauses) if c.count]
    adjusted = holm([sign_test(worse=c.worse, better=c.better) for _, _, c in flat])
    out = {name: list(value) if isinstance(value, tuple) else value for name, value in clauses.items()}
    for (name, i, c), chance in zip(flat, adjusted):
        tested = replace(c, chance=chance, false_refusal_rate=FALSE_REFUSAL_RATE, proven=(name, i) in proven)
        if i is None:
            out[name] = tested
        else:
            out[name][i] = tested
    return {name: tuple(value) if isinstance(value, list) else value for name, value in out.items()}


def lost_clauses(decision: Decision) -> frozenset:
    """The guard clauses `decision`'s net lost (beyond the tolerance and beyond chance), as
    (field, digit or None)."""
    return frozenset((name, i) for name, i, c in _each_clause({name: getattr(decision, name) for name in GUARD_CLAUSES}) if c.lost)


def _each_clause(clauses: dict[str, Comparison | tuple[Comparison, ...]]):
    """(field, digit or None, comparison) for each guard clause: a whole set, or each of its digits."""
    for name, value in clauses.items():
        yield from ((name, i, c) for i, c in (enumerate(value) if isinstance(value, tuple) else [(None, value)]))


def blend_keeps(*, least: float, steps: int) -> list[float]:
    """The shares of the new weights the fallback tries, most first: `steps` steps from the new
    model toward the active one, the last keeping `least` (0.9, 0.8, 0.7 for 0.7 in 3)."""
    return [round(least + (1 - least) * step / steps, 6) for step in range(steps - 1, -1, -1)]


# Failures of the new model that no blend is tried for. Held-out corrections it did not improve:
# a blend cannot bring back what the new model did not learn. Real pen drawings of the guard set
# read worse beyond chance (PEN_WORSE, PEN_DIGIT_WORSE: a clause fails only so): the corrections
# taught the model something wrong, which is what poisoning does, and a blend only dilutes it.
# A 4 -> 9 attack's new model lost 12 guard 4s and gained 1; its 70% blend held the guard's 4s
# (3 lost, 1 gained) and served unused writers' 4s 3 points worse (docs/results.md, "The
# pen-1 drift: its cause"). Blends are for what a fine-tune forgets: MNIST, the refusal.
NOT_BLENDED = frozenset({Failure.CORRECTIONS_NOT_BETTER, Failure.CORRECTIONS_WORSE, Failure.PEN_WORSE, Failure.PEN_DIGIT_WORSE})


class Judged(NamedTuple):
    """What the gate gives the publish step: its decision, the net to publish and that net's readings."""

    decision: Decision
    net: torch.nn.Module
    readings: Readings


def judge(
    *,
    new: torch.nn.Module,
    active: torch.nn.Module | None,
    data: RunData,
    before: Readings | None,
    after: Readings,
    options: RunOptions,
    read: Callable[[torch.nn.Module, str], Readings],
    say: Callable[[str], None],
) -> Judged:
    """The decision, the net to publish and its readings. When the new model failed a guard
    (and its held-out corrections did improve), blends toward it from the active model are
    tried (`blend_keeps`), each read with `read(net, who)`: the first that passes is published.
    A guard the new model lost beyond chance is a real loss, and a blend lies on the line toward
    it: it must bring that guard within its tolerance, not merely lose too few drawings for the
    test to show it (a 4 -> 9 attack's 90% blend lost 8 pen 4s, none gained, chance 9% after
    Holm, and served unused writers' 4s at 84%: docs/results.md, "Poisoning").
    No blend is tried when the new model read the pen guard set worse beyond chance (NOT_BLENDED).
    The decision keeps every net's own decision in `tried`, the new model first."""
    decision = decide(data=data, before=before, after=after, options=options)
    say(f"the gate: {decision_text(decision)}")
    tried = [decision]  # every net judged, kept in the decision for the run's page
    if decision.promote or active is None or not 0 < options.fallback_keep < 1 or NOT_BLENDED & set(decision.failures):
        return Judged(replace(decision, tried=tuple(tried)), new, after)
    lost, proven = decision.mnist.change, lost_clauses(decision)
    active = net_with_classes(active, classes=new.classes)  # a model made before "not a digit" blends with a silent output for it
    say(f"the new model failed ({failures_text(decision.failures)}): trying blends toward it from the active model")
    for keep in blend_keeps(least=options.fallback_keep, steps=options.blend_steps):
        net = blend(active, new, keep=keep)
        readings = read(net, f"the blend keeping {keep:.0%} of the new weights")
        blended = replace(
            decide(data=data, before=before, after=readings, options=options, keep=keep, proven=proven),
            new_model_mnist_change=lost, new_model_failures=decision.failures,
        )
        say(f"the gate on the blend: {decision_text(blended)}")
        tried.append(blended)
        if blended.promote:
            return Judged(replace(blended, tried=tuple(tried)), net, readings)
    return Judged(replace(decision, tried=tuple(tried)), new, after)



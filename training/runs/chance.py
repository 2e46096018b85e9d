"""How likely a loss is by chance: the sign test the gate judges its clauses by
(training.steps.gate), and the fewest held-out corrections that can change a decision, which the
data step needs before any model is read (training.steps.data) and a sample's admin page names.
No torch: the admin imports it."""

from itertools import count
from math import comb

# The guard clauses (MNIST test and the pen guard set, whole and digit by digit, and the refusal
# of held-out not-digits: 23) are judged the same way, on the drawings whose answer changed
# between the active model and the new one (a paired sign test). If the new model were no worse,
# each such drawing would be lost or gained with even odds; a clause fails when it lost more
# than its tolerance and the chance of losing at least that many of its changed drawings is at
# most FALSE_REFUSAL_RATE, after Holm's correction for the clauses tested together. So a retrain
# that changes nothing is refused by chance at most 1 time in 20, whatever the number of clauses,
# the rate at which min_held_out was chosen; a real loss of one digit is refused once about 9
# more of its drawings are lost than gained (2^-9 = 0.2% < 5% / 23).
FALSE_REFUSAL_RATE = 0.05


def sign_test(*, worse: int, better: int) -> float:
    """The chance that a model no worse than the active one loses at least `worse` of the
    `worse + better` drawings whose answer changed: each goes either way with even odds (an exact
    one-sided binomial test). 1 when nothing changed."""
    changed = worse + better
    return sum(comb(changed, k) for k in range(worse, changed + 1)) / 2**changed


def holm(chances: list[float]) -> list[float]:
    """Holm's step-down adjustment: each clause's chance as the whole family's, so that failing
    the clauses whose adjusted chance is at most a rate refuses a model that changes nothing with
    at most that probability, however many clauses are tested."""
    order = sorted(range(len(chances)), key=chances.__getitem__)
    adjusted, running = [1.0] * len(chances), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(chances) - rank) * chances[index]))
        adjusted[index] = running
    return adjusted


def corrections_fewest_telling(*, min_held_out: int) -> int:
    """The fewest held-out corrections that can change the gate's decision: enough to carry a
    promotion (`min_held_out`), or to hold one back by all going wrong beyond chance (5 at
    FALSE_REFUSAL_RATE: 2^-5 is 3.1%, 2^-4 is 6.25%). Fewer are read and shown, and never decide."""
    beyond_chance = next(k for k in count(1) if sign_test(worse=k, better=0) <= FALSE_REFUSAL_RATE)
    return min(min_held_out, beyond_chance)

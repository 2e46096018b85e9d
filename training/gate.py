"""The promotion gate: whether a new model goes live, and which net is published.

A new model is promoted when it reads the users' held-out corrections better, and neither MNIST
test nor the held-out confirmed right guesses get worse beyond their tolerances; without
held-out corrections the guards alone decide. When the new model loses MNIST beyond the
tolerance, blends from the active model's weights toward the new ones (as in WiSE-FT: most of
what the corrections taught is kept, most of what MNIST lost comes back) are judged by the same
rule, keeping less of the new each time, and the first that passes is published instead.

`judge` returns a typed `Decision` (training.decision, where its words are made too).
"""

from collections.abc import Callable
from dataclasses import replace

import torch

from training.decision import Comparison, Decision, Failure, beyond, decision_text
from training.evaluate import Readings, right
from training.options import RunOptions
from training.run_data import RunData
from training.trainer import blend

BLEND_STEPS = 3  # blends tried at most: each costs one more reading of MNIST test (about 5 s)


def decide(*, data: RunData, before: Readings | None, after: Readings, options: RunOptions, keep: float = 1.0) -> Decision:
    """The gate's rule applied to one net's readings (`after`) against the active model's."""
    def compare(name: str, digits, tolerance: float | None = None) -> Comparison:
        was = None if before is None else right(getattr(before, name), digits)
        return Comparison(was, right(getattr(after, name), digits), len(digits), tolerance)

    mnist = compare("mnist", data.mnist_test, options.mnist_tolerance)
    corrections = compare("corrections", data.corrections_test)
    confirmed = compare("confirmed", data.confirmed_test, options.users_tolerance)
    published = "new" if keep == 1.0 else "blend"
    if before is None:  # the first model: nothing to compare with
        return Decision(promote=True, failures=(), published=published, keep=keep, mnist=mnist, corrections=corrections, confirmed=confirmed)
    failures = []
    if beyond(mnist.change, options.mnist_tolerance):
        failures.append(Failure.MNIST_WORSE)
    if corrections.count and corrections.right_after <= corrections.right_before:
        failures.append(Failure.CORRECTIONS_NOT_BETTER)
    if confirmed.count and beyond(confirmed.change, options.users_tolerance):
        failures.append(Failure.CONFIRMED_WORSE)
    return Decision(
        promote=not failures or options.force, failures=tuple(failures), published=published, keep=keep,
        mnist=mnist, corrections=corrections, confirmed=confirmed, forced=bool(failures) and options.force,
    )  # fmt: skip


def blend_keeps(*, least: float) -> list[float]:
    """The shares of the new weights the fallback tries, most first: three steps from the new
    model toward the active one, the last keeping `least` (0.9, 0.8, 0.7 for 0.7)."""
    return [round(least + (1 - least) * step / BLEND_STEPS, 6) for step in range(BLEND_STEPS - 1, -1, -1)]


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
) -> tuple[Decision, torch.nn.Module, Readings]:
    """The decision, the net to publish and its readings. When the new model lost MNIST beyond
    the tolerance and did not pass, blends toward it from the active model are tried
    (`blend_keeps`), each read with `read(net, who)`: the first that passes is published."""
    decision = decide(data=data, before=before, after=after, options=options)
    say(f"the gate: {decision_text(decision)}")
    if decision.promote or active is None or not 0 < options.fallback_keep < 1 or Failure.MNIST_WORSE not in decision.failures:
        return decision, new, after
    lost = decision.mnist.change
    say(f"the new model lost {-lost:.2f} points of MNIST test, beyond the tolerance: trying blends toward it from the active model")
    for keep in blend_keeps(least=options.fallback_keep):
        net = blend(active, new, keep=keep)
        readings = read(net, f"the blend keeping {keep:.0%} of the new weights")
        tried = decide(data=data, before=before, after=readings, options=options, keep=keep)
        say(f"the gate on the blend: {decision_text(tried)}")
        if tried.promote:
            return replace(tried, new_model_mnist_change=lost), net, readings
    return decision, new, after



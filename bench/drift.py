"""Where does a retrain that learns nothing drift? Short fine-tunes of the shipped model with no
users' drawings, one per recipe variant, each read on the pen guard set digit by digit, on MNIST
test and on the held-out not-digits, against the shipped model.

Counts of drawings that changed are few and noisy (a default no-op run moves 2 or 3 pen 1s), so
beside them this prints a continuous measure: the mean change, per digit, of the log-probability
the model gives the right answer (in thousandths of a nat), which shows a drift's direction
long before it flips drawings.

    python -m bench.drift [--variants default,no-negatives] [--mnist-per-epoch 10000] [--epochs 1]

Variants are train_digits options on top of the site's defaults (VARIANTS below). Measured on
the pen guard set, which the gate judges with: this chooses nothing that a run then trains on.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

VARIANTS: dict[str, dict] = {
    "default": {},
    "no-negatives": {"negatives_share": 0.0},
    "distill-1": {"distill": 1.0},
    # MNIST 1s given a lead-in and 7s a crossbar, as the shipped model learnt from scratch, which
    # a fine-tune lets its teacher alone label (training.nn.trainer): its pen 1s stay anchored.
    "teacher-styles": {"augment": {"styles": 0.5}},
}


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-drift-"))
    os.environ.update(DIGITSITE_DB_PATH=str(workdir / "db.sqlite3"), DIGITSITE_MODEL_DIR=str(workdir / "models"))
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    import numpy as np
    import torch.nn.functional as F
    from django.core.management import call_command

    from recognizer.labels import NOT_A_DIGIT
    from recognizer.publishing import active_weights_load
    from training.nn.inference import logits
    from training.options import site_options
    from training.steps.data import run_data_load
    from training.steps.fit import recipe_fit
    from training.steps.refusal import refusal_bias_limit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--mnist-per-epoch", type=int, default=10_000, help="MNIST images an epoch (default: 10000, a quarter of a run's)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs (default: 1, half a run's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    active = active_weights_load().net

    def reading(net) -> dict:
        out = {}
        for name, digits in (("pen", data.pen_guard), ("mnist", data.mnist_test), ("negatives", data.negatives_test)):
            z = logits(net, digits.images).float()
            labels = digits.labels
            out[name] = {"right": (z.argmax(1) == labels).numpy(), "logp": F.log_softmax(z, 1).gather(1, labels[:, None])[:, 0].numpy(),
                         "labels": labels.numpy(), "guess": z.argmax(1).numpy()}  # fmt: skip
        return out

    base = None
    for name in args.variants.split(","):
        options = site_options(use_users=False, seed=args.seed, epochs=args.epochs, mnist_per_epoch=args.mnist_per_epoch, progress=False, **VARIANTS[name]).on_this_machine()
        data = run_data_load(options=options, learnt=set(), say=lambda text: None)
        if base is None:
            base = reading(active)
        started = time.perf_counter()
        result = recipe_fit(options=options, data=data, active=active, say=lambda text: None, on_epoch=lambda r, n: {}, on_step=lambda *a: None)
        net, lowered = refusal_bias_limit(net=result.best, digits=data.mnist_val, max_refused=options.max_refused)
        now = reading(net)
        p, b = now["pen"], base["pen"]
        print(f"\n== {name} ({VARIANTS[name] or 'the defaults'}), {time.perf_counter() - started:.0f} s; refusal bias lowered {lowered:.2f}")
        for digit in range(10):
            m = p["labels"] == digit
            lost, gained = int((b["right"][m] & ~p["right"][m]).sum()), int((~b["right"][m] & p["right"][m]).sum())
            went = np.bincount(p["guess"][m][b["right"][m] & ~p["right"][m]], minlength=11)
            where = ", ".join(f"{'not a digit' if g == NOT_A_DIGIT else g}: {c}" for g, c in enumerate(went) if c)
            print(f"  pen {digit}: {b['right'][m].mean():.2%} -> {p['right'][m].mean():.2%} ({lost} lost{' to ' + where if where else ''}, {gained} gained); "
                  f"log-probability of the right answer {1000 * (p['logp'][m] - b['logp'][m]).mean():+.1f} mnat")  # fmt: skip
        for what in ("mnist", "negatives"):
            print(f"  {what}: {base[what]['right'].mean():.2%} -> {now[what]['right'].mean():.2%}; "
                  f"log-probability of the right answer {1000 * (now[what]['logp'] - base[what]['logp']).mean():+.1f} mnat")  # fmt: skip


if __name__ == "__main__":
    main()

"""The training app's admin, a module a page: runs (the runs' list and pages, and their buttons),
quality (how the users answered each model version), samples (the samples' list with training's
action and column, registered in place of feedback's own) and queue (the worker's jobs)."""

from training.admin import queue, runs, samples  # noqa: F401  (each registers its pages)

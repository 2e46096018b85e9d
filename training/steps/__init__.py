"""A training run's steps, one module each, called in order by `pipeline.training_run_execute`:
data -> evaluate -> fit -> refusal -> gate -> publish -> report."""

"""The queued job that builds a version's serving form: queued when a version without one is
activated (recognizer.store.model_activate, from the admin: a web request never builds one), run
by the training worker, which has torch."""

from django_tasks import task


@task()
def serving_form_build_task(*, version: str) -> str:
    from recognizer.publishing import serving_form_ensure  # torch: imported by the worker, not the web process

    return f"model {version}: serving form {'built' if serving_form_ensure(version=version) else 'already there'}"

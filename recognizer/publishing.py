"""Publishing models, and building their serving forms: the torch side of the store (training,
`train_digits`, the worker, `activate_model`, `build_serving_forms`). Web processes only read
what this writes (recognizer.store, recognizer.servingform).
"""

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction

from digitsite.files import write_atomically
from recognizer.formbuild import serving_form_build
from recognizer.modelfile import LoadedModel, model_from_bytes, model_load, model_to_bytes
from recognizer.net import DigitNet
from recognizer.servingform import FILE_MODE, ModelUnavailable, serving_form_to_bytes
from recognizer.store import SERVING_SUFFIX, active_version, model_activate, model_sha256, shipped_form_path, version_path

logger = logging.getLogger(__name__)


def serving_form_bytes(*, data: bytes, source: str) -> bytes:
    """The serving form of the model file `data` (checked as every model file is)."""
    loaded = model_from_bytes(data, source=source)
    form = serving_form_build(net=loaded.net, metadata=loaded.metadata, model_sha256=model_sha256(data=data))
    return serving_form_to_bytes(form=form)


def model_publish(*, net: DigitNet, metadata: dict[str, object], activate: bool) -> Path:
    """Keep the model as a version in the database (and a local copy), with its serving form
    built now, once; make it the active one if `activate`. Returns the local copy's path."""
    from recognizer.models import ModelVersion

    version = str(metadata["version"])
    path = version_path(version)
    data = model_to_bytes(net=net, metadata=metadata)
    form = serving_form_bytes(data=data, source=f"version {version}")  # never keep a model that cannot load
    write_atomically(path, data, mode=FILE_MODE)
    write_atomically(version_path(version, suffix=SERVING_SUFFIX), form, mode=FILE_MODE)
    metadata = model_from_bytes(data, source=f"version {version}").metadata
    ModelVersion.objects.create(
        version=version, data=data, sha256=model_sha256(data=data), metadata=metadata,
        serving_form=form, serving_sha256=model_sha256(data=form),
    )  # fmt: skip
    if activate:
        model_activate(version=version)
    return path


def serving_form_ensure(*, version: str) -> bool:
    """Build the serving form of a kept version that has none (a row from before serving forms).
    True if it built one. ModelUnavailable when the version is not kept or its weights are not
    those recorded."""
    from recognizer.models import ModelVersion

    row = ModelVersion.objects.filter(version=version).values_list("data", "sha256", "serving_sha256").first()
    if row is None:
        raise ModelUnavailable(f"no model version {version!r} in the database")
    data, sha256, serving_sha256 = bytes(row[0]), row[1], row[2]
    if serving_sha256:
        return False
    if model_sha256(data=data) != sha256:
        raise ModelUnavailable(f"model version {version} in the database does not match its recorded SHA-256: no serving form is built for it")
    form = serving_form_bytes(data=data, source=f"version {version}")  # torch, seconds: outside any transaction
    with transaction.atomic():
        updated = ModelVersion.objects.filter(version=version, sha256=sha256, serving_sha256="").update(
            serving_form=form, serving_sha256=model_sha256(data=form)
        )
    logger.info("model %s: serving form built", version)
    return bool(updated)


def serving_forms_build_missing(*, say=logger.info) -> list[str]:
    """Build the serving form of every kept version without one; the versions built."""
    from recognizer.models import ModelVersion

    built = []
    for version in ModelVersion.objects.filter(serving_sha256="").values_list("version", flat=True):
        try:
            if serving_form_ensure(version=version):
                built.append(version)
                say(f"model {version}: serving form built")
        except ModelUnavailable as error:
            logger.error("%s", error)
    return built


def shipped_serving_form_write() -> Path:
    """Build the shipped model's serving form again (after its weights change), beside them."""
    data = Path(settings.SHIPPED_MODEL).read_bytes()
    path = shipped_form_path()
    write_atomically(path, serving_form_bytes(data=data, source=str(settings.SHIPPED_MODEL)), mode=FILE_MODE)
    return path


def active_weights_load() -> LoadedModel:
    """The active model's PyTorch net (training fine-tunes it, the gate judges against it): the
    active version's weights, checked against their recorded SHA-256, or the shipped model's.
    ModelUnavailable when they cannot be used."""
    from recognizer.models import ModelVersion

    version = active_version()
    if version is None:
        return model_load(path=Path(settings.SHIPPED_MODEL))
    path = version_path(version)
    row = ModelVersion.objects.filter(version=version).values_list("sha256", flat=True).first()
    if row is None:
        raise ModelUnavailable(f"model version {version} is not in the database")
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if data is None or model_sha256(data=data) != row:
        data = bytes(ModelVersion.objects.filter(version=version).values_list("data", flat=True).get())
        if model_sha256(data=data) != row:
            raise ModelUnavailable(f"model version {version} in the database does not match its recorded SHA-256: it is not used")
        try:
            write_atomically(path, data, mode=FILE_MODE)
        except OSError as error:
            logger.warning("could not keep a local copy of model %s: %s", version, error.strerror or error)
    return model_from_bytes(data, source=f"version {version}")

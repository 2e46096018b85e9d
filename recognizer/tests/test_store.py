"""The store of models: versions kept in the database, one of them active, local copies."""

import hashlib
import importlib
import os

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from recognizer import formbuild
from recognizer.modelfile import ModelUnavailable, model_load
from recognizer.models import ModelVersion
from recognizer.publishing import model_publish
from recognizer.serving import active_model, active_model_problem
from recognizer.servingform import serving_form_from_bytes
from recognizer.store import (
    SERVING_SUFFIX,
    model_activate,
    model_versions,
    shipped_form_path,
    shipped_model,
    temp_files_clean,
    version_load,
    version_path,
)
from recognizer.tests.versions import publish, tiny_net


def test_a_published_version_is_kept_in_the_database_with_a_local_copy():
    path = publish("v1", activate=False)
    assert path == version_path("v1")
    assert model_load(path=path).version == "v1"
    row = ModelVersion.objects.get(version="v1")
    assert bytes(row.data) == path.read_bytes() and row.metadata["version"] == "v1" and not row.active


def test_publishing_records_the_sha256_of_the_bytes_it_keeps():
    path = publish("v1", activate=False)
    row = ModelVersion.objects.get(version="v1")
    assert row.sha256 == hashlib.sha256(bytes(row.data)).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    model_activate(version=shipped_model().version)  # the shipped model's row, made on first activation
    shipped_row = ModelVersion.objects.get(version=shipped_model().version)
    assert shipped_row.sha256 == hashlib.sha256(bytes(shipped_row.data)).hexdigest()


def test_the_migration_records_the_sha256_of_rows_kept_before_it():
    fill = importlib.import_module("recognizer.migrations.0002_model_version_sha256").sha256_fill
    publish("v1", activate=False)
    ModelVersion.objects.update(sha256="")  # as the rows were before the field existed
    fill(django_apps, None)
    row = ModelVersion.objects.get(version="v1")
    assert row.sha256 == hashlib.sha256(bytes(row.data)).hexdigest()


def test_a_local_copy_that_is_not_the_published_one_is_replaced_by_the_databases_bytes(isolated_models, settings):
    publish("v1", activate=False)
    path = version_path("v1", suffix=SERVING_SUFFIX)
    path.write_bytes(shipped_form_path().read_bytes())  # a valid serving form, of other weights
    assert version_load(version="v1").version == "v1"
    assert path.read_bytes() == bytes(ModelVersion.objects.get(version="v1").serving_form)


def test_publishing_stores_the_serving_form_of_those_weights_with_its_sha256_and_checks():
    publish("v1", activate=False)
    row = ModelVersion.objects.get(version="v1")
    form = serving_form_from_bytes(bytes(row.serving_form), source="test")
    assert row.serving_sha256 == hashlib.sha256(bytes(row.serving_form)).hexdigest()
    assert form.manifest["model_sha256"] == row.sha256 and form.manifest["metadata"]["version"] == "v1"
    assert version_path("v1", suffix=SERVING_SUFFIX).read_bytes() == bytes(row.serving_form)
    # An untrained net cannot be quantized: its form holds the float32 graph, which serves.
    assert [v["name"] for v in form.manifest["variants"]] == ["float32"]
    assert active_model_problem() is None or "v1" not in active_model_problem()


def test_a_serving_form_of_other_weights_is_never_served():
    publish("v1", activate=False)
    other = shipped_form_path().read_bytes()
    ModelVersion.objects.filter(version="v1").update(serving_form=other, serving_sha256=hashlib.sha256(other).hexdigest())
    with pytest.raises(ModelUnavailable, match="built from other weights"):
        version_load(version="v1")
    with pytest.raises(ModelUnavailable, match="built from other weights"):
        model_activate(version="v1")


def test_a_version_without_a_serving_form_is_activated_and_served_once_the_worker_built_it(settings, monkeypatch):
    settings.MODEL_CHECK_S = 0
    publish("v1")
    assert active_model().version == "v1"
    publish("v2", seed=1, activate=False)
    ModelVersion.objects.filter(version="v2").update(serving_form=None, serving_sha256="")  # as rows from before serving forms
    version_path("v2", suffix=SERVING_SUFFIX).unlink()

    def never(**kwargs):
        raise AssertionError("a serving form was built while activating")

    monkeypatch.setattr(formbuild, "serving_form_build", never)
    assert model_activate(version="v2") is None  # as the admin does: nothing is built in the request
    assert active_model().version == "v1"  # the last good model serves meanwhile
    assert "v2 has no serving form yet" in active_model_problem()
    monkeypatch.undo()
    call_command("build_serving_forms")  # what the worker does on starting, or a queued build
    assert active_model().version == "v2" and active_model_problem() is None


def test_a_model_that_cannot_load_is_never_published():
    net = tiny_net(0)
    with pytest.raises(ModelUnavailable, match="unusable temperature"):
        model_publish(net=net, metadata={"version": "v1", "temperature": 0}, activate=True)
    assert not ModelVersion.objects.exists() and not version_path("v1").exists()


def test_exactly_one_version_is_active_in_the_database():
    publish("v1")
    publish("v2", seed=1)
    model_activate(version="v1")
    assert list(ModelVersion.objects.filter(active=True).values_list("version", flat=True)) == ["v1"]
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(version="v2").update(active=True)


def test_a_row_that_cannot_load_is_never_activated():
    publish("v1")
    ModelVersion.objects.create(version="v2", data=b"not safetensors")
    with pytest.raises(ModelUnavailable, match="does not match its recorded SHA-256"):
        model_activate(version="v2")
    assert list(ModelVersion.objects.filter(active=True).values_list("version", flat=True)) == ["v1"]
    assert active_model().version == "v1" and active_model_problem() is None


def test_earlier_versions_are_kept_and_can_be_activated_again():
    publish("v1", seed=0)
    publish("v2", seed=1)
    versions = [m.version for m in model_versions()]
    assert versions[-2:] == ["v1", "v2"]
    assert shipped_model().version in versions
    model_activate(version="v1")
    assert active_model().version == "v1"
    model_activate(version=shipped_model().version)  # back to the shipped one, which gets a row
    assert active_model().version == shipped_model().version
    assert ModelVersion.objects.get(active=True).version == shipped_model().version


def test_a_candidate_is_kept_but_not_activated():
    publish("v1")
    publish("v2", seed=1, activate=False)
    assert active_model().version == "v1"
    assert "v2" in [m.version for m in model_versions()]


def test_listing_versions_leaves_out_a_row_that_cannot_load():
    publish("v1")
    ModelVersion.objects.create(version="v2", data=b"\x00" * 100)
    assert "v2" not in [m.version for m in model_versions()]


@pytest.mark.parametrize("version", ["nope", "../../etc/passwd"])
def test_activating_an_unknown_version_is_refused(version):
    with pytest.raises(ModelUnavailable):
        model_activate(version=version)


def test_publishing_listing_and_activating_build_no_serving_net(serving_nets_built):
    shipped = shipped_model()
    model_activate(version=shipped.version)  # the real shipped model, as the admin's button does
    publish("v1", activate=False)
    model_activate(version="v1")
    model_versions()
    version_load(version="v1")
    assert serving_nets_built == []


def test_a_version_missing_from_this_machine_is_fetched_from_the_database_and_copied(settings, tmp_path):
    publish("v1", activate=False)
    settings.MODEL_DIR = tmp_path / "another-machine"
    assert version_load(version="v1").version == "v1"
    copy = (tmp_path / "another-machine" / "versions" / "v1.serving.zip").read_bytes()
    assert copy == bytes(ModelVersion.objects.get(version="v1").serving_form)


def test_a_damaged_local_copy_is_fetched_again_from_the_database(isolated_models):
    publish("v1", activate=False)
    (isolated_models / "versions" / "v1.serving.zip").write_bytes(b"\x00" * 10)
    assert version_load(version="v1").version == "v1"
    assert serving_form_from_bytes((isolated_models / "versions" / "v1.serving.zip").read_bytes(), source="copy").manifest["metadata"]["version"] == "v1"


def test_a_version_in_neither_place_gives_a_clear_error():
    with pytest.raises(ModelUnavailable, match="model version v9 is not in the database"):
        version_load(version="v9")


def test_a_failed_write_leaves_the_active_model_untouched(isolated_models, monkeypatch):
    publish("v1")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        publish("v2", seed=1)
    assert list(ModelVersion.objects.values_list("version", "active")) == [("v1", True)]
    assert not list(isolated_models.rglob("*.tmp"))  # no half-written leftovers
    assert active_model().version == "v1"


def test_activate_model_command_lists_versions_and_switches(capsys):
    publish("v1", seed=0)
    publish("v2", seed=1)
    call_command("activate_model")
    listing = capsys.readouterr().out
    assert "* v2" in listing and "  v1" in listing
    call_command("activate_model", "v1")
    assert active_model().version == "v1"
    with pytest.raises(CommandError, match="no model version"):
        call_command("activate_model", "v9")


def test_only_temporary_files_old_enough_to_have_no_writer_are_cleaned(isolated_models):
    (isolated_models / "versions").mkdir(parents=True)
    old, new = isolated_models / "versions" / ".v1.safetensors.abc.tmp", isolated_models / ".v2.safetensors.def.tmp"
    old.write_bytes(b"half")
    new.write_bytes(b"half")
    os.utime(old, (0, 0))
    assert temp_files_clean(older_than_s=60) == [old]
    assert new.exists() and not old.exists()

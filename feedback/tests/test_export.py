"""Samples exported as a dataset: a zip of a CSV and PNG files, from the admin and the command."""

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from feedback.models import Sample
from feedback.tests.factories import SampleFactory
from recognizer.preprocessing import decode_image

CHANGELIST = "/admin/feedback/sample/"


@pytest.fixture
def samples(db):
    stroked = SampleFactory(guess=1, label=7, strokes=[[[120, 80], [200, 70], [150, 300]]], model_version="model-b", source="user:7")
    return [stroked, SampleFactory(guess=7, label=7), SampleFactory(guess=0, label=6, status="rejected")]


def read(archive_bytes: bytes) -> tuple[list[dict], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
    rows = list(csv.DictReader(io.TextIOWrapper(archive.open("samples.csv"), encoding="utf-8")))
    return rows, archive


def test_export_samples_writes_a_csv_and_the_28x28_inputs_and_drawings_as_png(samples, tmp_path):
    out = tmp_path / "samples.zip"
    call_command("export_samples", str(out), stdout=io.StringIO())
    rows, archive = read(out.read_bytes())
    # Rejected samples are left out by default, as training leaves them out.
    assert [int(row["id"]) for row in rows] == [samples[0].pk, samples[1].pk]
    first = rows[0]
    assert (first["label"], first["guess"], first["is_correction"], first["status"], first["model_version"]) == ("7", "1", "1", "new", "model-b")
    assert (first["source"], rows[1]["source"]) == ("user:7", "")  # who sent it; "" for a command's
    assert json.loads(first["strokes"]) == samples[0].strokes and rows[1]["strokes"] == ""
    for row in rows:
        pixels = decode_image(archive.read(row["input_png"]))
        assert pixels.shape[:2] == (28, 28)
        assert archive.read(row["drawing_png"]) == bytes(Sample.objects.get(pk=row["id"]).drawing)
    # The stroked sample's input is drawn from its strokes: there is ink.
    assert np.asarray(decode_image(archive.read(first["input_png"]))).max() > 0


def test_export_samples_can_keep_only_corrections_or_some_statuses(samples, tmp_path):
    out = tmp_path / "corrections.zip"
    call_command("export_samples", str(out), "--corrections-only", "--status", "new", "--status", "rejected", stdout=io.StringIO())
    rows, _ = read(out.read_bytes())
    assert [int(row["id"]) for row in rows] == [samples[0].pk, samples[2].pk]
    assert [path.name for path in tmp_path.iterdir()] == ["corrections.zip"]  # written beside it, then renamed into place


def test_the_admin_export_action_streams_the_selected_samples_as_a_zip(client, samples):
    # force_login: logging in with a password goes through django-axes, which needs the request.
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    chosen = samples[1:]
    response = client.post(CHANGELIST, {"action": "export", "_selected_action": [s.pk for s in chosen]})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="digitsite-samples-')
    rows, archive = read(b"".join(response.streaming_content))
    assert [int(row["id"]) for row in rows] == [s.pk for s in chosen]  # the rejected one too, when chosen
    assert len([name for name in archive.namelist() if name.endswith(".png")]) == 2 * len(chosen)


def test_the_export_is_streamed_a_sample_at_a_time_not_built_whole(samples):
    from feedback.selectors import sample_export_zip

    chunks = list(sample_export_zip(samples=Sample.objects.all()))
    assert len(chunks) >= len(samples) + 1  # the table, then one piece per sample's pictures
    rows, _ = read(b"".join(chunks))
    assert len(rows) == len(samples)

"""Serving forms: built once from the PyTorch net, served with ONNX Runtime alone, in 8 bits
where an 8-bit variant reads drawings as the net does on this processor."""

import hashlib
import io
import threading
import zipfile

import numpy as np
import pytest
import torch
from django.conf import settings

from recognizer import formbuild
from recognizer.modelfile import model_load
from recognizer.preprocessing import normalize, strokes_to_input
from recognizer.servingform import (
    FEATURES,
    PROBE_SLACK,
    ModelUnavailable,
    ServedModel,
    ServingForm,
    serving_form_from_bytes,
    serving_form_to_bytes,
    session_logits,
    session_make,
)
from recognizer.store import shipped_form_path, shipped_model
from recognizer.tests.drawings import STROKES, strokes


def _drawings() -> np.ndarray:
    """The test digits drawn as strokes at three sizes, normalised inputs."""
    return normalize(np.stack([strokes_to_input(strokes(d, height=h)).image for d in STROKES for h in (0.15, 0.4, 0.8)]))


def _rolled(form: ServingForm, name: str) -> ServingForm:
    """`form` with variant `name` swapped for the same graph answering one digit on: a variant
    that reads drawings differently here, as saturated 16-bit sums make one on AVX2."""
    net = model_load(path=settings.SHIPPED_MODEL).net
    with torch.no_grad():
        net.head[-1].weight.copy_(net.head[-1].weight.roll(1, dims=0))
        net.head[-1].bias.copy_(net.head[-1].bias.roll(1))
    inputs = normalize(formbuild.calibration_drawings()[0][::8])
    stranger = formbuild._quantize(formbuild._export(net), inputs, reduce_range=name == "int8-w7")
    return ServingForm(manifest=form.manifest, graphs={**form.graphs, name: stranger}, probe=form.probe)


def test_the_shipped_serving_form_is_built_from_the_shipped_weights():
    # After changing the weights: `manage.py build_serving_forms --shipped`.
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    weights = settings.SHIPPED_MODEL.read_bytes()
    assert form.manifest["model_sha256"] == hashlib.sha256(weights).hexdigest()
    assert form.manifest["metadata"] == model_load(path=settings.SHIPPED_MODEL).metadata


def test_the_shipped_model_serves_with_7_bit_weights_that_agree_with_the_net_on_every_processor():
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    variants = {v["name"]: v for v in form.manifest["variants"]}
    assert variants["int8-w7"]["agrees"] and variants["int8-w7"]["weight_bits"] == 7
    check = variants["int8-w7"]["check"]
    assert check["count"] > 2000 and check["net_accuracy"] - check["accuracy"] <= 0.001 and check["agreement"] >= 0.998
    assert shipped_model().serving_net().variant == "int8-w7"  # tried first: it cannot saturate


def test_the_served_net_reads_drawings_as_the_trained_net_does_in_8_bits():
    loaded, served = model_load(path=settings.SHIPPED_MODEL), shipped_model()
    images = _drawings()
    with torch.inference_mode():
        expected = torch.softmax(loaded.net(torch.from_numpy(images)) / loaded.temperature, dim=1).numpy()
    net = served.serving_net()
    logits = net(images) / served.temperature
    answers = np.exp(logits - logits.max(1, keepdims=True))
    answers /= answers.sum(1, keepdims=True)
    assert net.precision == "int8" and net.classes == expected.shape[1]
    assert (answers.argmax(1) == expected.argmax(1)).all()
    assert np.abs(answers - expected).max() < 0.05  # confidence shown to the user moves little


def _second_variant_portable(form: ServingForm) -> ServingForm:
    """`form` whose second 8-bit variant ("int8-w8") holds the 7-bit graph and its figures: a
    variant that reads as the net does on every processor, so that a test about the order in
    which variants are tried gets the same outcome with VNNI and without (8-bit weights
    saturate on AVX2 without VNNI, docs/results.md)."""
    variants = {v["name"]: v for v in form.manifest["variants"]}
    portable = {**variants["int8-w7"], "name": "int8-w8"}
    manifest = {**form.manifest, "variants": [portable if v["name"] == "int8-w8" else v for v in form.manifest["variants"]]}
    return ServingForm(manifest=manifest, graphs={**form.graphs, "int8-w8": form.graphs["int8-w7"]}, probe=form.probe)


def test_a_variant_that_reads_the_probe_differently_here_is_passed_over_for_the_next():
    form = _second_variant_portable(serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped"))
    net = ServedModel(form=_rolled(form, "int8-w7"), source="test").serving_net()
    assert net.precision == "int8" and net.variant == "int8-w8" and net.why is None


def test_the_shipped_form_serves_here_the_first_variant_whose_probe_reads_as_where_it_was_built(api_client_health):
    # The real probe, on this processor: with VNNI both 8-bit variants read it as where they were
    # built; on AVX2 alone 8-bit weights may not, and 7-bit ones always do. Either way the first
    # that does serves, and health says which.
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    probe, expected = normalize(form.probe), np.asarray(form.manifest["probe_expected"])
    reads_here = [
        v["name"] for v in form.manifest["variants"]
        if v["precision"] == "int8" and v["agrees"]
        and (session_logits(session_make(form.graphs[v["name"]]), probe).argmax(1) == expected).mean() >= v["check"]["probe_agreement"] - PROBE_SLACK
    ]  # fmt: skip
    assert reads_here[0] == "int8-w7"  # 7-bit weights cannot saturate: the first everywhere
    served = ServedModel(form=form, source="shipped")
    health = api_client_health(served)
    assert health["model"]["precision"] == "int8" and health["model"]["variant"] == reads_here[0]
    assert served.serving_note is None and health["status"] == "ok"


def test_with_no_8_bit_variant_that_agrees_here_32_bit_floats_serve_and_say_why(api_client_health):
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    form = _rolled(_rolled(form, "int8-w7"), "int8-w8")
    served = ServedModel(form=form, source="version test")
    net = served.serving_net()
    assert net.precision == "float32" and "int8-w7 reads" in net.why and "serving 32-bit floats" in net.why
    assert served.serving_note == net.why and served.serving_problem is None
    health = api_client_health(served)
    assert health["status"] == "ok" and health["model"]["precision"] == "float32" and "32-bit floats" in health["model"]["precision_note"]


@pytest.fixture
def api_client_health(db, monkeypatch):
    from rest_framework.test import APIClient

    from recognizer import api

    def health(served: ServedModel) -> dict:
        monkeypatch.setattr(api, "active_model", lambda: served)
        monkeypatch.setattr(api, "active_model_problem", lambda: None)
        return APIClient().get("/api/health/").json()

    return health


def test_a_variant_that_disagrees_with_the_net_when_built_is_never_served(monkeypatch):
    quantize = formbuild._quantize
    net = model_load(path=settings.SHIPPED_MODEL).net
    stranger_net = model_load(path=settings.SHIPPED_MODEL).net
    with torch.no_grad():
        stranger_net.head[-1].bias.copy_(stranger_net.head[-1].bias.roll(1))
        stranger_net.head[-1].weight.copy_(stranger_net.head[-1].weight.roll(1, dims=0))
    stranger = formbuild._export(stranger_net)
    # The second variant quantizes the real net with 7-bit weights too, so that it agrees with
    # the net on every processor (8-bit weights may not on AVX2 without VNNI).
    monkeypatch.setattr(formbuild, "_quantize", lambda model, cal, *, reduce_range: quantize(stranger if reduce_range else model, cal, reduce_range=True))
    form = formbuild.serving_form_build(net=net, metadata={"version": "x"}, model_sha256="0")
    variants = {v["name"]: v for v in form.manifest["variants"]}
    assert not variants["int8-w7"]["agrees"] and variants["int8-w8"]["agrees"]
    assert ServedModel(form=form, source="x").serving_net().variant == "int8-w8"


def test_the_sessions_are_made_once_however_many_threads_ask(serving_nets_built):
    served, nets, start = shipped_model(), [], threading.Barrier(4)

    def ask():
        start.wait()
        nets.append(served.serving_net())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(serving_nets_built) == 1 and all(net is serving_nets_built[0] for net in nets)


def test_a_graph_onnx_runtime_refuses_gives_a_clear_error_every_time_and_is_tried_once(serving_nets_built):
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    served = ServedModel(form=ServingForm(form.manifest, {**form.graphs, "float32": b"not onnx"}, form.probe), source="version broken")
    for _ in range(2):
        with pytest.raises(ModelUnavailable, match="version broken could not be prepared for serving"):
            served.serving_net()
    assert served.serving_problem and serving_nets_built == []


def test_a_serving_form_holding_a_pickle_is_refused():
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    data = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(serving_form_to_bytes(form=form))) as original, zipfile.ZipFile(data, "w") as changed:
        for name in original.namelist():
            if name != "probe.npy":
                changed.writestr(name, original.read(name))
        probe = io.BytesIO()
        np.save(probe, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        changed.writestr("probe.npy", probe.getvalue())
    with pytest.raises(ModelUnavailable, match="not usable"):
        serving_form_from_bytes(data.getvalue(), source="hostile")


def _without_features(form: ServingForm) -> ServingForm:
    """`form` as it was built before its graphs had a features output (issue 40)."""
    import onnx

    graphs = {}
    for name, graph in form.graphs.items():
        model = onnx.load_from_string(graph)
        kept = [output for output in model.graph.output if output.name != FEATURES]
        del model.graph.output[:]
        model.graph.output.extend(kept)
        graphs[name] = model.SerializeToString()
    return ServingForm(manifest=form.manifest, graphs=graphs, probe=form.probe)


def test_a_form_built_before_features_serves_the_same_guesses_with_the_memory_off_and_health_says_so(api_client_health):
    form = serving_form_from_bytes(shipped_form_path().read_bytes(), source="shipped")
    old = ServedModel(form=_without_features(form), source="version old").serving_net()
    new = ServedModel(form=form, source="version new").serving_net()
    assert (old.has_features, new.has_features) == (False, True)
    logits, features = new.read(_drawings())
    assert old.read(_drawings())[1] is None and np.array_equal(old(_drawings()), logits)
    assert features.shape == (len(logits), 128)
    health = api_client_health(ServedModel(form=_without_features(form), source="version old"))
    assert health["status"] == "ok" and health["model"]["memory"] is False and "without features" in health["model"]["memory_note"]
    assert api_client_health(ServedModel(form=form, source="version new"))["model"]["memory"] is True

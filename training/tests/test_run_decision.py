"""A run's decision as a reviewer reads it on the run's page: a one-line verdict, a row per
clause of the gate with the failed ones marked in words, the blends tried, the real version in
the command; and making a model the gate refused active asks first.

The refused decision is the real gate's: the shipped model against a net part of the way to
random weights, judged on 2,000 images of MNIST test, with the default fallback blends (90%, 80%,
70%). (A new model that loses the pen guard set beyond chance gets no blend: test_gate.)"""

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from django.conf import settings
from django.urls import reverse

from recognizer.modelfile import model_load
from recognizer.publishing import model_publish
from recognizer.serving import active_model
from recognizer.store import model_activate
from training.models import TrainingRun
from training.nn.data import mnist_load
from training.nn.inference import blend, predictions
from training.options import RunOptions
from training.runs.decision import Decision, Failure, decision_text
from training.runs.presentation import clause_rows, decision_view
from training.runs.report import RunReport, run_report_save
from training.runs.text import percent_text
from training.steps.evaluate import Readings
from training.steps.gate import blend_keeps, judge
from training.tests.test_gate import digits, run_data

pytestmark = pytest.mark.django_db

NEW = "20261206-180000-dcsn"  # the refused run's model
CORRECTIONS = 6  # held-out corrections, 0 to 5: the new model reads them all, the active one only the 0
MNIST = 2_000  # images of MNIST test the gate judges on here


def judged(*, fallback_keep: float, mnist_dir) -> Decision:
    shipped = model_load(path=settings.SHIPPED_MODEL).net
    torch.manual_seed(0)
    new = blend(shipped, type(shipped)(width=shipped.width, classes=shipped.classes), keep=0.3)
    test = mnist_load(data_dir=mnist_dir, train=False).take(slice(0, MNIST))
    data = run_data(mnist_test=test, corrections_test=digits(CORRECTIONS))
    learnt = np.arange(CORRECTIONS) % 10

    def read(net, who: str, corrections: np.ndarray = learnt) -> Readings:
        empty = np.zeros(0, np.int64)
        return Readings(mnist=predictions(net, test).numpy(), corrections=corrections, confirmed=empty, pen=empty)

    before = read(shipped, "", corrections=np.zeros(CORRECTIONS, np.int64))
    decision, _, _ = judge(
        new=new, active=shipped, data=data, before=before, after=read(new, ""), options=RunOptions(fallback_keep=fallback_keep), read=read, say=lambda text: None
    )  # fmt: skip
    return decision


@pytest.fixture(scope="module")
def refused(mnist_dir) -> Decision:
    decision = judged(fallback_keep=RunOptions().fallback_keep, mnist_dir=mnist_dir)
    assert not decision.promote  # no blend down to 70% brings MNIST back
    return decision


def finished_run(decision: Decision, *, status: str, version: str, base_version: str, **report_fields) -> TrainingRun:
    """A run as the pipeline leaves it, its model kept (the shipped weights under `version`);
    `report_fields`: more of its RunReport."""
    shipped = model_load(path=settings.SHIPPED_MODEL)
    model_publish(net=shipped.net, metadata={**shipped.metadata, "version": version}, activate=False)
    run = TrainingRun.objects.create(status=status, epochs=1, base_version=base_version)
    report = RunReport(
        decision=decision, epochs=[], best_epoch=1, mnist_test=0, corrections_repeats=1, confirmed_repeats=1, learnt_before=0, confusion={}, seconds=1.0,
        **report_fields,
    )  # fmt: skip
    run_report_save(run=run, report=report, model_version=version, sample_ids=[])
    return run


@pytest.fixture
def refused_run(refused) -> TrainingRun:
    run = finished_run(refused, status="candidate", version=NEW, base_version=active_model().version)
    assert run.status == TrainingRun.Status.CANDIDATE
    return run


def clause_table(html: str) -> list[tuple[bool, str, list[str]]]:
    """(marked failed, clause, its cells) for each row of the gate's clauses on a page."""
    rows = re.findall(r'<tr( class="failed")?><th scope="row">(.*?)</th>(.*?)</tr>', html)
    return [(bool(failed), clause, re.findall(r"<td[^>]*>(.*?)</td>", cells)) for failed, clause, cells in rows]


def test_the_run_page_shows_a_row_per_clause_of_the_gate_with_the_failed_ones_marked_in_words(admin_client, refused_run, refused):
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[refused_run.pk])).content.decode()
    table = clause_table(html)
    assert len(table) == len(clause_rows(refused))
    # Marked failed: exactly the MNIST clauses the gate found lost, each saying so in words.
    lost = {"MNIST test"} | {f"MNIST test, digit {digit}" for digit, c in enumerate(refused.mnist_digits) if c.lost}
    assert {clause for failed, clause, _ in table if failed} == lost and len(lost) > 2
    assert all(cells[-1] == "FAILED" for failed, _, cells in table if failed)
    mnist = refused.mnist
    assert dict((clause, cells) for _, clause, cells in table)["MNIST test"][:2] == [percent_text(mnist.right_before / mnist.count), percent_text(mnist.right_after / mnist.count)]
    # The corrections improved (1 -> 6 of 6) and held; no pen guard set was read here, so it has no row.
    assert ("held-out corrections (none reviewed yet)", ["1 of 6 right", "6 of 6 right", "+5", "must improve", "held"]) in [(c, cells) for _, c, cells in table]
    assert not any(clause.startswith("pen guard set") for _, clause, _ in table)
    verdict = re.search(r'<p class="run-verdict refused"><strong>(.*?)</strong></p>', html).group(1)
    assert verdict.startswith("Kept as a candidate because it failed MNIST test (") and "and so did all 3 blends tried" in verdict
    assert "resting on 6 held-out drawings of the users&#x27; (6 corrections, 0 confirmed)" in verdict


def test_the_run_page_says_how_many_corrections_chosen_to_be_held_out_it_trained_on_instead(admin_client, refused):
    run = finished_run(refused, status="candidate", version=NEW, base_version=active_model().version, held_out_taught=3)
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert "Trained on instead of held out: the 3 corrections chosen by id to judge with, too few to change the gate's decision" in html
    other = finished_run(refused, status="candidate", version=NEW + "-2", base_version=active_model().version)
    assert "Trained on instead" not in admin_client.get(reverse("admin:training_trainingrun_change", args=[other.pk])).content.decode()


def test_the_run_page_lists_every_blend_the_gate_tried_with_what_each_failed(admin_client, refused_run, refused):
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[refused_run.pk])).content.decode()
    assert [net.keep for net in refused.tried] == [1.0, *blend_keeps(least=RunOptions().fallback_keep, steps=RunOptions().blend_steps)] == [1.0, 0.9, 0.8, 0.7]
    listed = re.findall(r'<li class="failed">(.*?)</li>', html)
    assert [item.split(":")[0] for item in listed] == [
        "the new model", "a blend keeping 90% of the new weights", "a blend keeping 80% of the new weights", "a blend keeping 70% of the new weights",
    ]  # fmt: skip
    for item, net in zip(listed, refused.tried):
        assert item.split(": ")[1].startswith("failed MNIST test")  # the whole set, or one of its digits
        if Failure.MNIST_WORSE in net.failures:  # the whole set, with its figures
            assert f"MNIST test ({net.mnist.change:+.2f} points, {net.mnist.right_after - net.mnist.right_before:+,} of 2,000: " in item
    assert Failure.MNIST_WORSE in refused.tried[0].failures  # the new model itself lost MNIST beyond chance
    assert listed[0].endswith(": published as a candidate")
    # The log's words for a refused blend say it was tried, not published.
    assert all(". Tried " in decision_text(net) and "Published" not in decision_text(net) for net in refused.tried[1:])


def test_a_published_blend_is_listed_last_after_the_nets_that_failed_and_the_verdict_says_what_the_new_model_failed(mnist_dir):
    decision = judged(fallback_keep=0.05, mnist_dir=mnist_dir)  # blends 68%, 37%, 5% of the way to the new model
    view = decision_view(decision=decision, version=NEW, base_version="20261128-164514-8335", active_version=NEW)
    assert decision.promote and decision.published == "blend" and decision.tried[-1].keep == decision.keep < 1
    assert [(net.failed, net.published) for net in view.tried] == [(True, False)] * (len(decision.tried) - 1) + [(False, True)]
    assert view.tried[-1].outcome == "held every clause: published" and view.tried[0].outcome.startswith("failed MNIST test (")
    assert view.verdict.startswith(f"Promoted a blend keeping {decision.keep:.0%} of the new weights, which held every clause (the new model failed MNIST test (")
    assert not view.failed_rows and view.command == "manage.py activate_model 20261128-164514-8335"  # the way back


def test_the_hint_to_activate_a_refused_model_names_its_real_version(admin_client, refused_run):
    assert refused_run.decision.endswith(f"Activate it anyway with: manage.py activate_model {NEW}.") and "<version>" not in refused_run.decision
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[refused_run.pk])).content.decode()
    assert f"To serve it anyway: <code>manage.py activate_model {NEW}</code>" in html and "&lt;version&gt;" not in html


def test_a_promoted_runs_page_names_the_model_it_replaced_to_roll_back_to(admin_client, refused):
    shipped = active_model().version
    promoted = replace(refused.tried[-1], promote=True, failures=())
    run = finished_run(promoted, status="promoted", version=NEW, base_version=shipped)
    model_activate(version=NEW)
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert f"To roll back to the model it replaced: <code>manage.py activate_model {shipped}</code>" in html


def test_activating_a_refused_candidate_asks_first_naming_the_failed_clauses_and_activates_only_once_confirmed(admin_client, refused_run, refused):
    shipped = active_model().version
    activate = reverse("admin:training_trainingrun_activate", args=[refused_run.pk])
    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[refused_run.pk])).content.decode()
    assert 'value="Make this model active…"' in page  # the button says it asks
    question = admin_client.post(activate)
    html = question.content.decode()
    assert question.status_code == 200 and active_model().version == shipped  # asked, nothing changed
    failed = [clause for marked, clause, _ in clause_table(html) if marked]
    assert failed == [row.clause for row in clause_rows(refused) if row.failed] and "MNIST test" in failed
    assert all(marked for marked, _, _ in clause_table(html))  # only the failed ones
    assert f"manage.py activate_model {shipped}" in html  # the way back, named
    # The question is a plain form posting back, no script: it works under the CSP and without JavaScript.
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form.group(1) == activate and '<input type="hidden" name="confirm" value="yes">' in form.group(2)
    assert "onclick" not in html and "<script>" not in html

    no = admin_client.post(activate, {"confirm": "no"})
    assert no.status_code == 200 and active_model().version == shipped
    answer = admin_client.post(activate, {"confirm": "yes"}, follow=True)
    assert active_model().version == NEW and f"Model {NEW} is now active." in answer.content.decode()


def test_the_activate_action_on_a_refused_candidate_asks_first_too(admin_client, refused_run):
    shipped = active_model().version
    answer = admin_client.post(reverse("admin:training_trainingrun_changelist"), {"action": "activate", "_selected_action": [refused_run.pk]})
    assert answer.status_code == 200 and "Yes, make it active anyway" in answer.content.decode()
    assert active_model().version == shipped


def test_activating_a_promoted_model_again_is_not_asked(admin_client, refused):
    shipped = active_model().version
    promoted = replace(refused.tried[-1], promote=True, failures=())
    run = finished_run(promoted, status="promoted", version=NEW, base_version=shipped)  # active once, replaced since
    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert 'value="Make this model active"' in page
    answer = admin_client.post(reverse("admin:training_trainingrun_activate", args=[run.pk]))
    assert answer.status_code == 302 and active_model().version == NEW


def test_a_run_page_with_a_decision_from_before_the_guards_and_the_blends_record_still_reads(admin_client):
    old = {
        "promote": False, "failures": [Failure.MNIST_WORSE.value], "published": "new", "keep": 1.0, "new_model_mnist_change": None, "forced": False,
        "mnist": {"right_before": 9954, "right_after": 9931, "count": 10000, "tolerance": 0.1},
        "corrections": {"right_before": 0, "right_after": 3, "count": 4, "tolerance": None},
        "confirmed": {"right_before": 0, "right_after": 0, "count": 0, "tolerance": 1.0},
    }  # fmt: skip
    run = TrainingRun.objects.create(status="candidate", epochs=1, model_version="20261128-164514-8335", decision="old words")
    TrainingRun.objects.filter(pk=run.pk).update(report={
        "decision": old, "epochs": [], "best_epoch": 1, "mnist_test": 10000, "corrections_repeats": 1, "confirmed_repeats": 1,
        "learnt_before": 0, "confusion": {}, "seconds": 100.0,
    })  # fmt: skip
    html = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert [(marked, clause) for marked, clause, _ in clause_table(html)] == [
        (True, "MNIST test"), (False, "held-out corrections (none reviewed yet)"), (False, "held-out confirmed right guesses: none held out"),
    ]  # fmt: skip
    assert "Kept as a candidate because it failed MNIST test (-0.23 points, -23 of 10,000; may lose 0.1 points)" in html
    assert "older than the record of the blends tried" in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_refused_runs_decision_reads_on_a_laptop_and_its_question_works_without_javascript(browser, live_server, refused):
    from playwright.sync_api import expect

    from training.tests.test_browser import logged_in

    context = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    run = finished_run(refused, status="candidate", version=NEW, base_version=active_model().version)
    page = logged_in(context.new_page(), live_server, f"/admin/training/trainingrun/{run.pk}/change/")
    verdict = page.locator(".run-verdict")
    expect(verdict).to_contain_text("Kept as a candidate because it failed MNIST test (")
    expect(verdict).to_be_in_viewport()  # the first thing read, without scrolling
    failed = page.locator(".gate-clauses tr.failed")
    expect(failed).to_have_count(len([row for row in clause_rows(refused) if row.failed]))
    expect(failed.first.locator(".outcome")).to_have_text("FAILED")
    table = page.locator(".gate-clauses").bounding_box()
    assert table["x"] + table["width"] <= 1280  # every column beside the sidebar, no sideways scrolling
    expect(page.locator(".nets-tried li")).to_have_count(4)

    page.get_by_role("button", name="Make this model active…").click()
    expect(page.get_by_role("heading", name=f"Make model {NEW} active, although the gate refused it?")).to_be_visible()
    expect(page.locator(".gate-clauses tr.failed").first).to_contain_text("MNIST test")
    assert active_model().version != NEW
    page.get_by_role("button", name="Yes, make it active anyway").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Model {NEW} is now active.")
    assert active_model().version == NEW
    context.close()


def test_failures_are_stored_as_short_codes_and_a_report_stored_with_english_failures_reads_the_same(refused):
    from training.runs.decision import FAILURE_TEXT

    stored = refused.as_dict()
    assert stored["failures"] and all(" " not in f for f in stored["failures"])  # codes: "mnist_digit_lost", not sentences
    assert set(stored["failures"]) <= {f.value for f in Failure}

    def in_words(values: dict) -> dict:  # as reports were stored before the codes
        words = {**values, **{name: [FAILURE_TEXT[Failure(f)] for f in values[name]] for name in ("failures", "new_model_failures")}}
        if values.get("tried") is not None:
            words["tried"] = [in_words(net) for net in values["tried"]]
        return words

    old = Decision.from_dict(in_words(stored))
    assert old == Decision.from_dict(stored) == refused
    assert decision_text(old, version=NEW) == decision_text(refused, version=NEW)
    assert "MNIST test got worse beyond its tolerance" in decision_text(old)

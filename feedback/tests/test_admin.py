import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from feedback.models import Sample
from feedback.selectors import sample_is_held_out, samples_for_training
from feedback.services import sample_relabel, sample_review
from feedback.tests.factories import SampleFactory

CHANGELIST = "/admin/feedback/sample/"


@pytest.fixture
def samples(db):
    # (guess, label): a 1 corrected to 7, a confirmed 7, a 0 corrected to 6.
    return [SampleFactory(guess=guess, label=label) for guess, label in [(1, 7), (7, 7), (0, 6)]]


@pytest.fixture
def admin_client(client, db):
    # force_login: logging in with a password goes through django-axes, which needs the request.
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    return client


def test_sample_list_shows_the_drawing_and_its_28x28_input_labels_guesses_and_status(admin_client, samples):
    html = admin_client.get(CHANGELIST).content.decode()
    assert html.count('<img src="data:image/png;base64,') == 2 * len(samples)  # the drawing and the input
    assert html.count('class="sample-image pixelated"') == len(samples)
    assert 'style="' not in html.split('id="result_list"')[1].split("</table>")[0]  # no inline style in the rows
    for heading in ["Label (guess)", "Confidence", "Status", "Model version", "Created"]:
        assert heading in html


def test_sample_list_marks_corrections(admin_client, samples):
    html = admin_client.get(CHANGELIST).content.decode()
    assert html.count("7 ✗ guessed 1") == 1 and html.count("6 ✗ guessed 0") == 1
    assert html.count("7 ✓ guessed right") == 1
    assert html.count('class="sample-correction"') == 2


@pytest.mark.parametrize(
    "query, expected",
    [
        ("label=6", 1), ("guess=7", 1), ("status__exact=new", 3), ("model_version=model-a", 3),
        ("guess_was=wrong", 2), ("guess_was=right", 1),
        ("q=7", 2), ("q=6", 1), ("q=model-a", 0), ("q=a", 0), ("q=", 3),
    ],
)  # fmt: skip
def test_sample_list_filters_and_search(admin_client, samples, query, expected):
    response = admin_client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == expected


def test_sample_detail_shows_the_drawing_large_and_the_28x28_input(admin_client, samples):
    html = admin_client.get(f"{CHANGELIST}{samples[0].pk}/change/").content.decode()
    assert 'width="320"' in html and 'class="sample-image pixelated"' in html
    assert "What the model saw (28x28)" in html


def bulk(admin_client, action, samples):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [s.pk for s in samples]}, follow=True)


def test_bulk_approve_and_reject(admin_client, samples):
    bulk(admin_client, "approve", samples[:2])
    bulk(admin_client, "reject", samples[2:])
    statuses = dict(Sample.objects.values_list("pk", "status"))
    assert [statuses[s.pk] for s in samples] == ["approved", "approved", "rejected"]
    assert all(s.reviewed_at for s in Sample.objects.all())


def test_bulk_relabel_sets_the_label_and_approves(admin_client, samples):
    response = bulk(admin_client, "relabel_9", samples[:2])
    assert "relabelled as 9" in response.content.decode()
    relabelled = Sample.objects.filter(pk__in=[s.pk for s in samples[:2]])
    assert {(s.label, s.status) for s in relabelled} == {(9, "approved")}
    assert Sample.objects.get(pk=samples[2].pk).label == 6


def test_rejected_samples_are_never_trained_on_and_approved_only_restricts(samples):
    sample_review(samples=samples[:1], status="rejected")
    sample_review(samples=samples[1:2], status="approved")
    assert list(samples_for_training()) == [samples[1], samples[2]]
    assert list(samples_for_training(approved_only=True)) == [samples[1]]


def test_review_with_an_unknown_status_is_refused(samples):
    with pytest.raises(ValidationError):
        sample_review(samples=samples, status="maybe")
    with pytest.raises(ValidationError):
        sample_relabel(samples=samples, label=11)  # 10 is "not a digit"; 11 is nothing
    assert set(Sample.objects.values_list("status", flat=True)) == {"new"}


def test_the_held_out_share_is_stable_and_close_to_what_was_asked():
    held = [sample_is_held_out(sample_id=i, holdout_share=0.2) for i in range(1, 5001)]
    assert 0.18 < sum(held) / len(held) < 0.22
    assert held == [sample_is_held_out(sample_id=i, holdout_share=0.2) for i in range(1, 5001)]
    assert not any(sample_is_held_out(sample_id=i, holdout_share=0) for i in range(1, 500))


def test_searching_a_number_finds_that_sample_by_id_as_well_as_by_label(admin_client, samples):
    target = samples[2]
    response = admin_client.get(f"{CHANGELIST}?q={target.pk}")
    found = {sample.pk for sample in response.context["cl"].result_list}
    assert target.pk in found
    assert found == {target.pk} | {s.pk for s in samples if s.label == target.pk}

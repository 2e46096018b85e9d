import numpy as np
import pytest
from django.contrib.auth.models import User

from feedback.services import sample_create
from recognizer.preprocessing import strokes_to_input, to_data_url, to_png
from recognizer.tests.drawings import strokes


@pytest.fixture
def admin_client(client, db):
    # force_login: logging in with a password goes through django-axes, which needs the request.
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    return client


def test_a_strokes_sample_shows_the_input_drawn_from_its_strokes(admin_client):
    drawn = [np.round(stroke, 1) for stroke in strokes(4, height=0.1)]
    sample = sample_create(strokes=drawn, label=4)
    html = admin_client.get(f"/admin/feedback/sample/{sample.pk}/change/").content.decode()
    assert "strokes: 1 stroke(s), 4 points" in html
    assert to_data_url(to_png(strokes_to_input(drawn).image)) in html

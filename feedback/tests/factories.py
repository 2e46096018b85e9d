"""Rows for tests that are not about the model: what a sample holds is set here, not guessed."""

import factory
import numpy as np

from feedback.models import Sample
from recognizer.preprocessing import to_png


class SampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sample

    label = 0
    guess = factory.SelfAttribute("label")  # a confirmed right guess unless told otherwise
    confidence = 0.9
    model_version = "model-a"
    model_input = factory.LazyFunction(lambda: bytes(28 * 28))
    drawing = factory.LazyFunction(lambda: to_png(np.full((400, 400), 255, np.uint8)))


def staff_user(*, username: str, permissions: list[str]):
    """A staff user, not a superuser, holding exactly these permissions ("app_label.codename")."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username, is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # a fresh object: has_perm caches what it read


def offered_actions(response) -> set[str]:
    """The bulk actions a changelist page offers its user (none at all: no action form)."""
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()

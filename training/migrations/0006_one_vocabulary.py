"""One vocabulary: "feedback" named two things (all the users' drawings trained on, and only the
held-out corrections) and "holdout" three; the columns now say which."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("training", "0005_samples_without_reverse_relation")]

    operations = [
        migrations.RenameField("trainingrun", "feedback_samples", "users_samples"),
        migrations.RenameField("trainingrun", "feedback_holdout", "corrections_held_out"),
        migrations.RenameField("trainingrun", "confirmed_holdout", "confirmed_held_out"),
        migrations.RenameField("trainingrun", "feedback_accuracy_before", "corrections_accuracy_before"),
        migrations.RenameField("trainingrun", "feedback_accuracy", "corrections_accuracy"),
    ]

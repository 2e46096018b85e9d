"""The training queue's own records (django-tasks-db's jobs), listed on the admin's index as
"Task Results", which told a reviewer nothing: a run's page already follows its job. Only a
superuser, who may need to see why the worker failed a job, sees the section, named for what it
is (training.apps.TrainingQueueConfig)."""

from django.contrib import admin
from django_tasks_db.admin import DBTaskResultAdmin
from django_tasks_db.models import DBTaskResult


class TrainingQueueAdmin(DBTaskResultAdmin):
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser


admin.site.unregister(DBTaskResult)
admin.site.register(DBTaskResult, TrainingQueueAdmin)

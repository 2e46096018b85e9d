from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from digitsite.metrics import metrics_view
from recognizer.views import favicon, index

urlpatterns = [
    path("", index, name="index"),
    path("favicon.ico", favicon, name="favicon"),
    path("api/", include("recognizer.urls")),
    path("api/", include("feedback.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file (?script), not inline: the docs keep working under a
    # Content-Security-Policy that forbids inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),  # 404 unless DIGITSITE_METRICS=on and allowed
]

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the page posts corrections with the CSRF token from this cookie
def index(request):
    return render(request, "recognizer/index.html")

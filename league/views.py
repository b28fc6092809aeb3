"""Site shell views: home, sign-up, racer alias, account (API token), /healthz and error pages."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from league import api_errors, health
from league.forms import AliasForm, SignUpForm
from league.services import api_token_exists, api_token_regenerate, racer_alias, racer_set_alias


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "league/home.html")


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else default


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account, then choose the alias; ``next`` (e.g. an invite link) is kept through both."""
    next_url = _safe_next(request, "")
    if request.user.is_authenticated:
        return redirect(next_url or "home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Pitlane! Pick the racer alias shown on leaderboards.")
        alias_url = reverse("alias")
        return redirect(f"{alias_url}?{urlencode({'next': next_url})}" if next_url else alias_url)
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@login_required
def alias(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, resolve_url(settings.LOGIN_REDIRECT_URL))
    current = racer_alias(request.user)
    if current is not None:
        return render(request, "league/alias.html", {"current": current, "next": next_url})
    form = AliasForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            racer_set_alias(request.user, form.cleaned_data["alias"])
        except ValidationError as error:
            form.add_error("alias", error)
        else:
            messages.success(request, f"You race as {form.cleaned_data['alias'].strip()}.")
            return redirect(next_url)
    return render(request, "league/alias.html", {"form": form, "next": next_url})


@login_required
@never_cache
def account(request: HttpRequest) -> HttpResponse:
    # The key is in the session only until this page shows it once.
    new_token = request.session.pop("new_api_token", None)
    context = {
        "alias": racer_alias(request.user),
        "has_token": api_token_exists(request.user),
        "new_token": new_token,
    }
    return render(request, "league/account.html", context)


@login_required
@require_POST
def account_token(request: HttpRequest) -> HttpResponse:
    request.session["new_api_token"] = api_token_regenerate(request.user)
    messages.success(request, "New API token created. Copy it now: it is shown only once.")
    return redirect("account")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's, JSON): the site's icon, not a 404."""
    return redirect(static("league/favicon.svg"))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if api_errors.is_api_request(request):
        return api_errors.api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if api_errors.is_api_request(request):
        return api_errors.api_server_error(request)
    return defaults.server_error(request)

import importlib.util

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from league import views


def _include_if_present(module: str) -> list:
    # The races and evaluator apps add their routes as they are built; the site runs without them.
    return [include(module)] if importlib.util.find_spec(module) is not None else []


urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/alias/", views.alias, name="alias"),
    path("accounts/", views.account, name="account"),
    path("accounts/token/", views.account_token, name="account_token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema", template_name="league/api/swagger_ui.html"),
         name="api_docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api_schema", template_name="league/api/redoc.html"),
         name="api_redoc"),
    path("admin/", admin.site.urls),
]
urlpatterns += [path("evaluator/", target) for target in _include_if_present("evaluator.urls")]
urlpatterns += [path("", target) for target in _include_if_present("races.urls")]

handler404 = "league.views.page_not_found"
handler500 = "league.views.server_error"

import html
import re

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from league.decorators import alias_required
from league.services import racer_alias, racer_set_alias

pytestmark = pytest.mark.django_db


def test_home_page_explains_pitlane_and_links_to_sign_up(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Train a car. Upload it. Race the league." in body
    assert reverse("signup") in body
    assert reverse("api_docs") in body


def test_favicon_ico_leads_to_the_site_icon(client):
    """The admin's pages name no icon, so browsers ask for /favicon.ico: it must not be a 404 in the log."""
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith(".svg")
    assert "favicon" in response["Location"]


def test_sign_up_signs_in_and_asks_for_the_alias(client):
    response = client.post(
        reverse("signup"),
        {"username": "carla", "email": "", "password1": "a-Strong-pass-42", "password2": "a-Strong-pass-42"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("alias")
    assert User.objects.get(username="carla").email == ""
    assert client.get(reverse("account")).status_code == 200


def test_sign_up_rejects_mismatched_passwords(client):
    response = client.post(
        reverse("signup"), {"username": "dan", "password1": "a-Strong-pass-42", "password2": "other-pass-42"}
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="dan").exists()


def test_sign_in_and_sign_out(client):
    User.objects.create_user("erin", password="pw-erin-12345")
    response = client.post(reverse("login"), {"username": "erin", "password": "pw-erin-12345"})
    assert response.status_code == 302
    assert client.get(reverse("account")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("account")).status_code == 302


def test_alias_page_sets_the_alias_once_and_redirects_to_next(client):
    user = User.objects.create_user("fay", password="pw")
    client.force_login(user)
    response = client.post(reverse("alias"), {"alias": "FastFay", "next": "/accounts/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/"
    assert racer_alias(user) == "FastFay"

    # Once set, the page only shows it (and a way on): a second POST cannot change it.
    response = client.post(reverse("alias"), {"alias": "Other"})
    assert response.status_code == 200
    assert "FastFay" in response.content.decode()
    assert '<a class="button" href="/">Continue</a>' in response.content.decode()
    assert racer_alias(user) == "FastFay"


def test_alias_page_shows_why_an_alias_is_refused(client):
    racer_set_alias(User.objects.create_user("gus"), "Taken")
    client.force_login(User.objects.create_user("hal", password="pw"))
    response = client.post(reverse("alias"), {"alias": "taken"})
    assert response.status_code == 200
    assert "is taken" in response.content.decode()


def test_alias_page_ignores_an_off_site_next(client):
    client.force_login(User.objects.create_user("ivy", password="pw"))
    response = client.post(reverse("alias"), {"alias": "Ivy", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_alias_required_sends_users_without_alias_to_choose_one():
    view = alias_required(lambda request: HttpResponse("ok"))
    request = RequestFactory().get("/races/1/submit/")
    request.user = User.objects.create_user("jo")
    response = view(request)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/alias/?next=%2Fraces%2F1%2Fsubmit%2F"
    racer_set_alias(request.user, "Jo-racer")
    assert view(request).content == b"ok"


def test_api_token_is_shown_once(client):
    user = User.objects.create_user("kim", password="pw")
    client.force_login(user)
    assert "Create token" in client.get(reverse("account")).content.decode()

    response = client.post(reverse("account_token"), follow=True)
    key = user.auth_token.key
    assert key in response.content.decode()
    page = client.get(reverse("account")).content.decode()
    assert key not in page
    assert "Regenerate token" in page


def test_api_token_authenticates_api_requests(client):
    user = User.objects.create_user("lee", password="pw")
    client.force_login(user)
    client.post(reverse("account_token"))
    client.logout()
    key = User.objects.get(pk=user.pk).auth_token.key
    assert client.get("/api/schema/", headers={"Authorization": f"Token {key}"}).status_code == 200
    assert client.get("/api/schema/", headers={"Authorization": "Token not-a-token"}).status_code == 401


def test_token_creation_requires_post_and_sign_in(client):
    assert client.post(reverse("account_token")).status_code == 302  # to the sign-in page
    client.force_login(User.objects.create_user("max", password="pw"))
    assert client.get(reverse("account_token")).status_code == 405


def test_an_invite_link_is_kept_through_sign_in_sign_up_and_the_alias(client):
    invite = "/races/join/AbC123/"
    login_page = client.get(reverse("login"), {"next": invite}).content.decode()
    assert f'href="{reverse("signup")}?next={invite}">Create an account</a>' in login_page

    signup_page = client.get(reverse("signup"), {"next": invite}).content.decode()
    assert f'<input type="hidden" name="next" value="{invite}">' in signup_page
    response = client.post(reverse("signup"), {"username": "gil", "password1": "a-Strong-pass-42",
                                                "password2": "a-Strong-pass-42", "next": invite})
    assert response["Location"] == f"{reverse('alias')}?next=%2Fraces%2Fjoin%2FAbC123%2F"

    alias_page = client.get(response["Location"]).content.decode()
    assert f'<input type="hidden" name="next" value="{invite}">' in alias_page
    response = client.post(reverse("alias"), {"alias": "Gil", "next": invite})
    assert response["Location"] == invite


def test_sign_up_ignores_a_next_that_leaves_the_site(client):
    response = client.post(reverse("signup"), {"username": "hal", "password1": "a-Strong-pass-42",
                                                "password2": "a-Strong-pass-42", "next": "https://evil.example/"})
    assert response["Location"] == reverse("alias")


def test_the_alias_pattern_attribute_is_the_rule_the_server_applies(client):
    import re

    from league.forms import AliasForm
    from league.services import ALIAS_PATTERN

    pattern = AliasForm().fields["alias"].widget.attrs["pattern"]
    # Browsers compile `pattern` with the `v` flag: a '-' inside a class must be escaped there.
    assert not re.search(r"\[[^\]]*[^\\]-\]", pattern)
    for alias in ("nova", "a_b-c", "x" * 32, "ab", "with space", "ünï", "x" * 33):
        assert bool(re.fullmatch(pattern, alias)) == bool(ALIAS_PATTERN.fullmatch(alias)), alias


def test_the_home_page_gives_the_install_commands_and_links_the_repository(client, settings):
    page = client.get("/").content.decode()
    # Short lines joined by backslashes (a flag cut in two at the card's edge read "-\n-track"): as a shell reads them.
    block = re.search(r'<pre class="install"><code>(.*?)</code></pre>', page, re.S).group(1)
    commands = re.sub(r"\\\n\s*", "", html.unescape(block)).splitlines()
    assert commands[-2:] == [".venv/bin/pip install -r requirements.txt",
                             ".venv/bin/python -m sim train my-model --track pitlane_technical --vehicle pitlane_racer "
                             "--reward-example community_racing_line --warm-start --max-minutes 10"]
    assert all(len(line) <= 32 for line in html.unescape(block).splitlines()[1:]), "a line wider than the card"
    settings.PITLANE_SOURCE_URL = "https://git.example.org/league/pitlane.git"
    page = client.get("/").content.decode()
    assert '<a href="https://git.example.org/league/pitlane.git">' in page
    assert "git clone https://git.example.org/league/pitlane.git pitlane" in page


@pytest.mark.parametrize(("docs", "marker"), [("api_docs", 'id="swagger-ui"'), ("api_redoc", "redoc")])
def test_both_api_docs_pages_lead_back_to_the_site(client, docs, marker):
    page = client.get(reverse(docs)).content.decode()
    assert f'<a class="brand" href="{reverse("home")}">' in page and marker in page

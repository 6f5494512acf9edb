"""Issue #16, the review app's hand-kept CSRF and its templates: every state-changing
route refuses a post without the session's token (sign-in included, before the throttle
counts it), signing in gives a fresh token, and the templates escape whatever their name."""

import pytest
from jinja2 import DictLoader, UndefinedError
from starlette.routing import Route

from curation_assets.review_app import create_app
from curation_assets.review_app.pages import page_templates
from curation_assets_tests.fixtures import page_fields
from curation_assets_tests.test_review_app import (
    PASSWORD,
    _client,
    _items,
    _login,
    _stored,
    _world,
    users_store,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.usefixtures("quick_password_hashes")  # the app, not the hash

#: Every POST route: who posts it (None: nobody signed in), the page that serves its
#: form, and the form's other fields (a hidden ``token`` is taken from that page).
FORMS = {
    "/login": (None, "/login", {"username": "bob", "password": PASSWORD}),
    "/logout": ("ann", "/review", {}),
    "/decide": ("ann", "/review", {"decision": "accept"}),
    "/bulk": ("ann", "/bulk", {"decision": "accept", "example_id": "c000"}),
    "/admin/users": (
        "root",
        "/admin",
        {"username": "newbie", "password": PASSWORD, "role": "reviewer"},
    ),
}


@pytest.fixture
def world(tmp_path, users_store):  # noqa: F811
    return _world(tmp_path, _items(6), users_store)


def _post_routes(settings) -> set[str]:
    app = create_app(settings, secret="test-secret")
    return {r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())}


def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(world):
    assert _post_routes(world) == set(FORMS)  # a new POST route must be added above
    stranger = page_fields(_client(world, "cy").get("/review").text)["csrf"]
    for path, (who, page, fields) in FORMS.items():
        client = _client(world, who)
        served = page_fields(client.get(page).text)
        data = {**fields, **({"token": served["token"]} if "token" in served else {})}
        for csrf in (None, "", served["csrf"][:-4] + "AAAA", stranger):
            sent = data if csrf is None else {**data, "csrf": csrf}
            response = client.post(path, data=sent)
            assert response.status_code == 403, (path, csrf, response.status_code)
            assert "CSRF" in response.text, (path, csrf)
        if who is not None:  # still signed in: /logout did not run
            assert client.get("/history").status_code == 200, path
    assert _stored(world).empty
    admin = _client(world, "root").get("/admin").text
    assert "newbie" not in admin
    # the refused sign-ins were never counted: bob is not locked out
    assert _login(_client(world), "bob").status_code == 303


def test_signing_in_gives_a_fresh_csrf_token(world):
    client = _client(world)
    before = page_fields(client.get("/login").text)["csrf"]
    signed_in = client.post(
        "/login", data={"csrf": before, "username": "ann", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    after = page_fields(client.get("/review").text)["csrf"]
    assert after and after != before
    assert client.post("/logout", data={"csrf": before}).status_code == 403
    assert client.post("/logout", data={"csrf": after}).status_code == 303


def test_every_page_carries_the_session_token_and_shows_a_flash_once(world):
    client = _client(world, "ann")
    pages = [client.get(path) for path in ("/review", "/bulk", "/history")]
    tokens = {page_fields(page.text)["csrf"] for page in pages}
    assert len(tokens) == 1 and all(page.template.name for page in pages)
    served = page_fields(pages[0].text)
    data = {"csrf": served["csrf"], "token": served["token"], "decision": "reject"}
    assert client.post("/decide", data=data).status_code == 303
    assert 'id="flash"' in client.get("/history").text
    assert 'id="flash"' not in client.get("/history").text  # shown once, then gone


def test_templates_escape_whatever_the_file_name_and_refuse_undefined_names():
    env = page_templates().env.overlay(loader=DictLoader({"note.txt": "{{ text }}"}))
    template = env.get_template("note.txt")
    assert template.render(text="<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    with pytest.raises(UndefinedError):
        template.render()

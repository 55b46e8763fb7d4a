"""An observer logs in with the observatory's hashtag; forms are CSRF-protected, scripts are not."""

from __future__ import annotations


def test_login_form_carries_a_csrf_token(csrf_client, make):
    page = csrf_client.get("/login")
    assert page.status_code == 200
    assert make.csrf_token_of(page.get_data(as_text=True))


def test_login_without_csrf_token_is_refused(csrf_client, observatory):
    resp = csrf_client.post("/login", data={"hashtag": observatory["hashtag"]})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_login_then_logout(csrf_client, observatory, make):
    page = csrf_client.get("/login?next=/followup").get_data(as_text=True)
    resp = csrf_client.post(
        "/login",
        data={
            "hashtag": observatory["hashtag"],
            "next": "/followup",
            "csrf_token": make.csrf_token_of(page),
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/followup"
    with csrf_client.session_transaction() as sess:
        token = sess["observatory_token"]
        assert observatory["hashtag"] not in token  # the cookie never carries the key itself
    home = csrf_client.get("/").get_data(as_text=True)
    assert observatory["name"] in home and "Log out" in home

    # logging out is a POST with the token, never a GET
    assert csrf_client.get("/logout").status_code == 405
    assert csrf_client.post("/logout").status_code == 400
    resp = csrf_client.post("/logout", data={"csrf_token": make.csrf_token_of(home)})
    assert resp.status_code == 303
    with csrf_client.session_transaction() as sess:
        assert "observatory_token" not in sess
    assert "Log in" in csrf_client.get("/").get_data(as_text=True)


def test_wrong_hashtag_shows_the_form_again(client):
    resp = client.post("/login", data={"hashtag": "nope.nope"})
    assert resp.status_code == 401
    assert "Unknown or revoked hashtag" in resp.get_data(as_text=True)
    with client.session_transaction() as sess:
        assert "observatory_token" not in sess


def test_next_must_be_a_local_path(client, observatory):
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        resp = client.post("/login", data={"hashtag": observatory["hashtag"], "next": evil})
        assert resp.status_code == 303 and resp.headers["Location"] == "/", evil


def test_login_json(client, observatory):
    resp = client.post("/login?format=json", data={"hashtag": observatory["hashtag"]})
    assert resp.get_json() == {"observatory": observatory["name"]}
    bad = client.post("/login?format=json", data={"hashtag": "x.y"})
    assert bad.status_code == 401 and bad.get_json()["error"]


def test_pages_for_logged_in_observers_redirect_to_login(client):
    for path in ("/submit", "/newevent"):
        resp = client.get(path)
        assert resp.status_code == 303
        assert resp.headers["Location"].startswith(f"/login?next=%2F{path[1:]}")


def test_revoked_key_ends_the_session(client, runner, make):
    name, key = make.observatory()
    make.login(client, key)
    assert client.get("/submit").status_code == 200
    assert runner.invoke(args=["observatory", "revoke", name]).exit_code == 0
    assert client.get("/submit").status_code == 303


def test_script_endpoints_need_no_csrf_token(csrf_client, observatory):
    """curl posts /upload and /newevent with the hashtag and no token: no CSRF error."""
    resp = csrf_client.post(
        "/newevent",
        data={
            "hashtag": observatory["hashtag"],
            "EventID": "ivo://test/csrf-exempt",
            "name": "CsrfExempt1",
            "ra": "10",
            "dec": "20",
        },
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    resp = csrf_client.post(
        "/cgi/upload", data={"hashtag": "bad.key", "EventID": "x", "outputFormat": "json"}
    )
    assert resp.status_code == 401 and resp.get_json()["error"] == "unknown or revoked hashtag"


def test_newevent_by_session_cookie_alone_needs_the_token(csrf_client, observatory, make):
    make.login(csrf_client, observatory["hashtag"])
    form = {"EventID": "ivo://test/cookie-only", "name": "CookieOnly1", "ra": "1", "dec": "2"}
    assert csrf_client.post("/newevent", data=form).status_code == 400
    page = csrf_client.get("/newevent").get_data(as_text=True)
    form["csrf_token"] = make.csrf_token_of(page)
    assert csrf_client.post("/newevent", data=form).status_code == 201


def test_logout_ends_the_session_on_the_server(csrf_app, make):
    """A copy of the cookie taken before the logout (a shared machine, a stolen cookie) stops
    working once its owner logs out."""
    _, key = make.observatory()
    browser, thief = csrf_app.test_client(), csrf_app.test_client()
    make.login(browser, key)
    cookie = browser.get_cookie("session")
    thief.set_cookie(cookie.key, cookie.value)
    assert thief.get("/submit").status_code == 200  # the copy works while logged in

    home = browser.get("/").get_data(as_text=True)
    resp = browser.post("/logout", data={"csrf_token": make.csrf_token_of(home)})
    assert resp.status_code == 303
    assert thief.get("/submit").status_code == 303  # sent to the login page
    assert "Log in" in thief.get("/").get_data(as_text=True)

    make.login(browser, key)  # logging in again works, with a new cookie
    assert "Log out" in browser.get("/").get_data(as_text=True)

"""A logged-in observer adds an alert through the browser form."""

from __future__ import annotations


def test_form_adds_the_alert_and_goes_to_its_page(csrf_client, observatory, make):
    make.login(csrf_client, observatory["hashtag"])
    page = csrf_client.get("/newevent")
    assert page.status_code == 200
    name = f"Form{make.token()}"
    resp = csrf_client.post(
        "/newevent",
        data={
            "csrf_token": make.csrf_token_of(page.get_data(as_text=True)),
            "outputFormat": "html",
            "EventID": f"ivo://test/{name}",
            "name": name,
            "ra": "295.00471",
            "dec": "47.75811",
            "url": "https://example.org/alert",
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == f"/alerts/{name}"
    shown = csrf_client.get(f"/alerts/{name}").get_data(as_text=True)
    assert f"ivo://test/{name}" in shown and "295.00471" in shown


def test_form_errors_are_shown_on_the_form(client, observatory, make):
    make.login(client, observatory["hashtag"])
    form = {"outputFormat": "html", "EventID": "not-an-ivorn", "name": "X", "ra": "1", "dec": "2"}
    resp = client.post("/newevent", data=form)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "EventID must be an IVORN" in html and 'value="not-an-ivorn"' in html

    name = make.alert()
    form.update(EventID=f"ivo://test/{name}", name=name)
    resp = client.post("/newevent", data=form)
    assert resp.status_code == 409 and "alert exists" in resp.get_data(as_text=True)


def test_script_answer_is_unchanged(client, observatory, make):
    name = f"Script{make.token()}"
    resp = client.post(
        "/cgi/newevent",
        data={
            "hashtag": observatory["hashtag"],
            "EventID": f"ivo://x/{name}",
            "name": name,
            "ra": "1",
            "dec": "2",
        },
    )
    assert resp.status_code == 201
    assert resp.get_json()["name"] == name

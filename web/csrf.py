"""CSRF protection for browser forms; the script endpoints (hashtag in the form) stay exempt.

Scripts post `/upload` and `/newevent` with their hashtag and no cookie, so a forged cross-site
request gains nothing there. A browser posting those forms with only its login cookie is checked by
:func:`require_csrf` in the view instead.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

#: Views that scripts call with a hashtag (`/upload`, `/newevent`, `DELETE /followup/<id>`), and
#: the bulk job-status read (it changes nothing and needs no login): exempt from the automatic
#: check.
SCRIPT_VIEWS = (
    "web.upload_api.upload",
    "web.alert_registry.newevent",
    "web.job_status.bulk_status",
    "web.followups.delete",
)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    for view in SCRIPT_VIEWS:
        csrf.exempt(view)


def require_csrf() -> None:
    """Check the CSRF token now (for an exempt view answering a cookie-authenticated browser)."""
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()

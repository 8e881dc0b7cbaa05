"""What the public pages' templates are given: the form (its errors, the values typed, the
disclaimer) and the confirmation page. The server renders them through Litestar; `config check`
renders them with samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from leadctl import rendering
from leadctl.resumes import ACCEPT_HINT, ACCEPTED_TYPES, size_limit_text
from leadctl.validation import EMAIL_MAX, NAME_MAX, check_consent

if TYPE_CHECKING:
    from leadctl.settings import Settings

FORM = "pages/form.html"
CONFIRMATION = "pages/confirmation.html"
STYLESHEET = "pages/form.css"
# The form's fields in page order: an error on any other field is shown at the top of the form.
FIELDS = ("first_name", "last_name", "email", "resume", "consent")
TEXT_FIELDS = ("first_name", "last_name", "email")
# The browser stops typing where the server would refuse (leadctl.validation).
MAX_LENGTHS = {"first_name": NAME_MAX, "last_name": NAME_MAX, "email": EMAIL_MAX}


def form(
    settings: Settings,
    token: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str | None, str] | None = None,
) -> dict[str, Any]:
    """The form's context. `errors` maps a field (None or "form": the whole form) to its
    message; the first field in error gets the focus (`first_error`, an `autofocus`)."""
    values = values or {}
    shown: dict[str, str] = {}
    for field, message in (errors or {}).items():
        if field in FIELDS or field == "form":
            shown.setdefault(str(field), message)
        else:  # resume_url, a header: no field of the page holds it
            shown["form"] = " ".join(filter(None, (shown.get("form"), f"{field}: {message}")))
    in_error = [field for field in FIELDS if field in shown]
    try:
        consent_given = check_consent(values.get("consent"))
    except ValueError:
        consent_given = False
    return {
        **rendering.base_context(settings),
        "token": token,
        "values": {field: values.get(field, "") for field in TEXT_FIELDS},
        "max_lengths": MAX_LENGTHS,
        "errors": shown,
        "error_fields": in_error,
        "first_error": in_error[0] if in_error else None,
        "accept": ACCEPT_HINT,
        "accepted_types": ACCEPTED_TYPES,
        "size_limit": size_limit_text(settings.max_resume_bytes),
        "max_resume_bytes": settings.max_resume_bytes,
        "disclaimer": rendering.disclaimer(settings).html,
        "require_consent": settings.require_consent,
        "consent_given": consent_given,
    }


def confirmation(settings: Settings, first_name: str, reference: str) -> dict[str, Any]:
    """The confirmation page's context: shown to the person who sent the form, in their browser
    (the confirmation email echoes nothing they typed)."""
    return {**rendering.base_context(settings), "first_name": first_name, "reference": reference}

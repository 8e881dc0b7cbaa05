"""The public HTML pages: the intake form (with errors and kept values) and the confirmation."""

from __future__ import annotations

from html import escape

from leadctl.resumes import ACCEPT_HINT

STYLESHEET = """
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1b1b; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input[type=text], input[type=email] { width: 100%; padding: .5rem; font-size: 1rem;
       box-sizing: border-box; }
.error { color: #b00020; margin: .25rem 0 0; }
.hint { color: #555; font-size: .9rem; margin: .25rem 0 0; }
button { margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; }
.reference { font-size: 1.6rem; font-weight: 700; letter-spacing: .1em; }
.hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
"""

FIELDS = (
    ("first_name", "First name", "text", "given-name"),
    ("last_name", "Last name", "text", "family-name"),
    ("email", "Email", "email", "email"),
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{escape(title)}</title>\n<link rel="stylesheet" href="/form.css">\n</head>\n'
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _error(field: str, errors: dict[str, str]) -> str:
    if field not in errors:
        return ""
    return f'<p class="error" id="{field}-error" role="alert">{escape(errors[field])}</p>'


def form_page(
    token: str, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> str:
    """The intake form; after a failed submission, each error sits under its field.

    `token` is the signed render time (intake.formtoken); the `website` field is a honeypot:
    off-screen for people, hidden from screen readers, labelled to be left empty.
    """
    values, errors = values or {}, errors or {}
    parts = [
        "<h1>Tell us about yourself</h1>",
        "<p>Leave your details and your resume, and an attorney will contact you.</p>",
    ]
    if errors:
        parts.append('<p class="error" role="alert">Please correct the fields marked below.</p>')
        if "form" in errors:
            parts.append(_error("form", errors))
    parts.append('<form method="post" action="/" enctype="multipart/form-data" novalidate>')
    parts.append(f'<input type="hidden" name="form_token" value="{escape(token)}">')
    parts.append(
        '<div class="hp" aria-hidden="true">'
        '<label for="website">Leave this field empty</label>'
        '<input id="website" name="website" type="text" tabindex="-1" autocomplete="off">'
        "</div>"
    )
    for name, label, kind, autocomplete in FIELDS:
        described = (
            f' aria-describedby="{name}-error" aria-invalid="true"' if name in errors else ""
        )
        parts.append(
            f'<label for="{name}">{label}</label>\n'
            f'<input id="{name}" name="{name}" type="{kind}" autocomplete="{autocomplete}" '
            f'maxlength="320" required value="{escape(values.get(name, ""))}"{described}>\n'
            + _error(name, errors)
        )
    described = (
        ' aria-describedby="resume-hint resume-error" aria-invalid="true"'
        if "resume" in errors
        else ' aria-describedby="resume-hint"'
    )
    parts.append(
        '<label for="resume">Resume</label>\n'
        f'<input id="resume" name="resume" type="file" accept="{ACCEPT_HINT}" '
        f"required{described}>\n"
        '<p class="hint" id="resume-hint">PDF, Word, OpenDocument, RTF or plain text.'
        + (" Please choose the file again." if errors else "")
        + "</p>\n"
        + _error("resume", errors)
    )
    parts.append('<button type="submit">Send</button>\n</form>')
    return _page("Contact us", "\n".join(parts))


def confirmation_page(first_name: str, reference: str) -> str:
    body = (
        f"<h1>Thank you, {escape(first_name)}</h1>\n"
        "<p>We have received your details. Your reference is:</p>\n"
        f'<p class="reference">{escape(reference)}</p>\n'
        "<p>We have sent a confirmation to your email address. An attorney will contact you, "
        "usually within two business days.</p>"
    )
    return _page("Thank you", body)

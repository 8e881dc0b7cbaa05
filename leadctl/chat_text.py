"""The text a Slack or Teams channel shows for a webhook event (`LEADS_WEBHOOK_FORMAT=slack`):
our words, with every outside value inert in both chat formats."""

from __future__ import annotations

from typing import Any

from leadctl.text import visible


def slack_escape(text: Any) -> str:
    """Outside text as Slack shows it literally: `&`, `<` and `>` escaped as Slack documents
    (so `<!channel>` or `<https://evil|click>` is no mention and no link), control characters
    visible."""
    return visible(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: Any) -> str:
    """Outside text made inert in Slack mrkdwn and Teams Markdown alike: `slack_escape`d, and
    set in inline code, where neither renders `*bold*`, `_italic_`, `[click](https://evil)`,
    nor makes a bare `https://evil.example/login` a link. A backtick inside, which would end
    the code early, becomes the look-alike U+02CB (ˋ)."""
    shown = slack_escape(text).replace("`", "\u02cb")
    return f"`{shown}`" if shown.strip() else "(blank)"


def slack_text(payload: dict[str, Any]) -> str:
    """The one line a Slack or Teams channel shows: our words, and every outside value (a
    name, an attorney's or actor's address, a reason) as inert inline code."""
    e = inert
    lead, data = payload["lead"], payload.get("data") or {}
    reference = slack_escape(lead["reference"])  # ours: four letters or digits, a dash, four
    what = f"Lead {reference} (#{int(lead['id'])})"
    actor = e(payload["actor"]) if payload.get("actor") else "someone"
    kind = payload["type"]
    if kind == "lead.created":
        who = data.get("prospect")
        name = f": {e(who['first_name'])} {e(who['last_name'])}" if who else ""
        to = data.get("attorney")
        where = f", assigned to {e(to)}" if to else ", in the intake inbox"
        return f"New lead {reference} (#{int(lead['id'])}){name}{where}."
    if kind == "lead.reached_out":
        return f"{what} was reached out by {actor}."
    if kind == "lead.reopened":
        return f"{what} was reopened by {actor}."
    if kind == "lead.assigned":
        reason = f" ({e(data['reason'])})" if data.get("reason") else ""
        to = data.get("attorney")
        where = f"assigned to {e(to)}" if to else "moved to the intake inbox"
        return f"{what} was {where} by {actor}{reason}."
    if kind == "lead.erased":
        return f"{what} was erased by {actor}."
    if kind == "lead.purged":
        return f"{what} was erased under the retention policy."
    return f"{what}: {e(kind)}."

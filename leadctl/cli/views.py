"""How each kind of record is shown: the table columns and the detail and stats views.

Commands hand these to `Output` (`rows`, `obj`), which makes every value visible first.
"""

from __future__ import annotations

from typing import Any

from leadctl.cli.output import Column, age

LEAD_COLUMNS = [
    Column("ID", lambda r: r["id"], style="bold"),
    Column("REFERENCE", lambda r: r["reference"]),
    # Names are required at intake: only an erased lead's are blank.
    Column("NAME", lambda r: f"{r['first_name']} {r['last_name']}".strip() or "(erased)"),
    Column("EMAIL", lambda r: r["email"]),
    Column("STATE", lambda r: r["state"], style="cyan"),
    Column("ATTORNEY", lambda r: r["attorney"]),
    Column("CREATED", lambda r: r["created_at"], on_terminal=lambda r: age(r["created_at"])),
]

ATTORNEY_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("NAME", lambda r: r["name"]),
    Column("EMAIL", lambda r: r["email"]),
    Column("ROLE", lambda r: r["role"]),
    Column("ACTIVE", lambda r: r["active"], on_terminal=lambda r: "yes" if r["active"] else "no"),
]

TOKEN_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("ATTORNEY", lambda r: r["attorney"]),
    Column("NAME", lambda r: r["name"]),
    Column("HINT", lambda r: r["hint"]),
    Column("CREATED", lambda r: r["created_at"], on_terminal=lambda r: age(r["created_at"])),
    Column(
        "LAST USED",
        lambda r: r["last_used_at"],
        on_terminal=lambda r: age(r["last_used_at"]) or "never",
    ),
    Column(
        "REVOKED",
        lambda r: r["revoked_at"],
        on_terminal=lambda r: "revoked" if r["revoked_at"] else "",
    ),
]

OUTBOX_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("LEAD", lambda r: r["lead_id"]),
    Column("PURPOSE", lambda r: r["purpose"]),
    Column("TO", lambda r: r["recipient"]),
    Column("STATUS", lambda r: r["status"]),
    Column("ATTEMPTS", lambda r: r["attempts"]),
    Column("NEXT ATTEMPT", lambda r: r["next_attempt_at"]),
    Column("LAST ERROR", lambda r: r["last_error"]),
]


def render_detail(d: dict[str, Any]) -> str:
    if d.get("erased_at"):
        return _render_tombstone(d)
    lines = [
        f"Lead {d['id']}  {d['reference']}  {d['state']}",
        f"Name:         {d['first_name']} {d['last_name']}",
        f"Email:        {d['email']}",
        f"Attorney:     {d['attorney'] or '(unassigned)'}",
        f"Created:      {d['created_at']}",
        f"Updated:      {d['updated_at']}",
    ]
    if d.get("reached_out_at"):
        lines.append(f"Reached out:  {d['reached_out_at']} by {d.get('reached_out_by') or '?'}")
    if d.get("quarantined"):
        lines.append(f"Quarantined:  {d.get('quarantine_reason') or 'suspected spam'}")
    if d.get("consent_at"):
        version = d.get("disclaimer_version") or "?"
        lines.append(f"Consent:      {d['consent_at']} (disclaimer {version[:12]})")
    else:
        lines.append("Consent:      not recorded")
    for n, earlier in enumerate(d.get("earlier_leads") or []):
        label = "Returning:" if n == 0 else ""
        lines.append(f"{label:<14}{_earlier(earlier)}")
    r = d.get("resume")
    if r:
        lines.append(f"Resume:       {r['filename']} ({r['content_type']}, {r['size']:,} bytes)")
        lines.append(f"SHA-256:      {r['sha256']}")
    elif d.get("resume_url"):
        lines.append(f"Resume:       a link (not fetched): {d['resume_url']}")
    hits = d.get("conflicts") or []
    if hits:
        lines.append(f"Conflicts:    {len(hits)} possible, found at intake:")
        lines.extend(f"  {_hit(h)}" for h in hits)
    lines.extend(_history(d))
    return "\n".join(lines)


def _earlier(e: Any) -> str:
    if not isinstance(e, dict):
        return f"earlier lead {e}"  # an older server's plain id
    when, state = e.get("created_at"), e.get("state")
    if e.get("id") is None:  # another attorney's, withheld (LEADS_ATTORNEY_SCOPE=own)
        return f"an earlier lead of {e.get('owner')}  {when}  {state}"
    return f"earlier lead {e.get('id')}  {e.get('reference')}  {when}  {state}"


def _hit(h: Any) -> str:
    """One conflict hit (leadctl.conflicts): what matched, on what, how closely."""
    if not isinstance(h, dict):
        return str(h)
    how = f"{h.get('matched') or 'name'}, score {float(h.get('score') or 0):.2f}"
    if h.get("source") == "erased":
        return f"an erased lead of {h.get('date')} ({how})"
    if h.get("source") == "party":
        extra = "  ".join(str(h[k]) for k in ("role", "matter") if h.get(k))
        return f"party {h.get('id')}  {h.get('name')}  {extra}  ({how})".replace("    ", "  ")
    if h.get("id") is None:  # another attorney's, withheld (LEADS_ATTORNEY_SCOPE=own)
        return f"a lead of {h.get('owner')} of {h.get('date')} ({how})"
    ref = f"  {h['reference']}" if h.get("reference") else ""
    return f"lead {h.get('id')}{ref}  {h.get('name')}  {h.get('date')}  ({how})"


def _render_tombstone(d: dict[str, Any]) -> str:
    """An erased lead: what is left of it, and when it went."""
    lines = [
        f"Lead {d['id']}  {d['reference']}  {d['state']}  (erased)",
        f"Attorney:     {d['attorney'] or '(unassigned)'}",
        f"Created:      {d['created_at']}",
        f"Updated:      {d['updated_at']}",
    ]
    if d.get("reached_out_at"):
        lines.append(f"Reached out:  {d['reached_out_at']}")
    lines.append(f"Erased:       erased on {d['erased_at']}; the person's data is gone")
    lines.extend(_history(d))
    return "\n".join(lines)


def _history(d: dict[str, Any]) -> list[str]:
    lines = ["", "History:"]
    for e in d.get("events", []):
        lines.append(event_line(e))
    return lines


def event_line(e: dict[str, Any]) -> str:
    """One event as a history line: when, who, what, and its details."""
    return f"  {e['at']}  {e['actor']:<24} {e['kind']:<14} {event_details(e)}".rstrip()


def event_details(e: dict[str, Any]) -> str:
    """An event's details as `key=value, …`; conflict hits read as `show` prints them."""
    details = e.get("details") or {}
    return ", ".join(f"{key}={_detail(key, details[key])}" for key in sorted(details))


def _detail(key: str, value: Any) -> str:
    if key == "hits" and isinstance(value, list):
        return "[" + "; ".join(_hit(h) for h in value) + "]"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f}m"
    hours = minutes / 60
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"


def render_stats(s: dict[str, Any]) -> str:
    fc = s["first_contact"]
    lines = [
        f"Leads:            {s['total']:,}" + (f" since {s['since']}" if s["since"] else ""),
        *(f"  {state:<16}{n:,}" for state, n in s["by_state"].items()),
        *([f"  {'(erased)':<16}{s['erased']:,}"] if s.get("erased") else []),
        f"Overdue (>24h):   {s['overdue_24h']:,}",
        f"Reminded:         {s['reminded']:,}   escalated: {s['escalated']:,}",
        f"First contact:    median {_duration(fc['median_seconds'])}, "
        f"p90 {_duration(fc['p90_seconds'])} "
        f"({fc['reached_out']:,} reached out)",
        "",
        "Per attorney:",
    ]
    for a in s["per_attorney"]:
        lines.append(
            f"  {a['attorney'] or '(unassigned)':<32} {a['leads']:>6,} leads  "
            f"{a['pending']:>6,} pending  "
            f"median {_duration(a['median_seconds'])}  p90 {_duration(a['p90_seconds'])}"
        )
    return "\n".join(lines)

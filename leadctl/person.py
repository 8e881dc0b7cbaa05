"""Everything held about one person, by email address: to show, and to export with their files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from leadctl.errors import InvalidInput, LeadctlError
from leadctl.models import Event, Lead, OutboxMessage, Resume, email_key
from leadctl.names import keyed_hash
from leadctl.private import FILE_MODE, private_folder
from leadctl.resumes import fit_filename
from leadctl.timeutil import iso, utcnow

EXPORT_FILE = "person.json"
RESUMES = "resumes"
# Names Windows keeps for devices: a file called `con` or `nul.pdf` cannot be opened there.
_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')


def check_address(email: str) -> str:
    """The address as leads are filed under it (`email_key`); InvalidInput when it is not one."""
    key = email_key(email)
    if not key or len(key) > 320 or "@" not in key or not key.isprintable() or " " in key:
        raise InvalidInput([("email", "give the person's email address, like jane@example.com")])
    return key


def person_leads(email: str) -> tuple[list[int], list[dict[str, Any]]]:
    """(ids of the live leads under the address in any case, the address's tombstones)."""
    key = check_address(email)
    live = [
        r.id
        for r in Lead.select(Lead.id)
        .where((Lead.email_key == key) & Lead.erased_at.is_null())
        .order_by(Lead.id)
    ]
    return live, tombstones(key)


def tombstones(key: str) -> list[dict[str, Any]]:
    """The erased leads whose address had this key: only their reference and dates."""
    query = (
        Lead.select(Lead.id, Lead.reference, Lead.created_at, Lead.erased_at)
        .where(Lead.erased_email_hash == keyed_hash(key))
        .order_by(Lead.id)
    )
    return [
        {
            "id": r.id,
            "reference": r.reference,
            "created_at": iso(r.created_at),
            "erased_at": iso(r.erased_at),
        }
        for r in query
    ]


def show(email: str) -> dict[str, Any]:
    """Every lead filed under the address in any case (quarantined ones too), each with its
    consent, resume metadata or link, history and emails; and the address's erased leads
    (reference and dates only: that is all they keep)."""
    key = check_address(email)
    leads = Lead.select().where(Lead.email_key == key).order_by(Lead.id)
    return {
        "email": key,
        "leads": [_lead(lead) for lead in leads if lead.erased_at is None],
        "erased": tombstones(key),
    }


def _lead(lead: Lead) -> dict[str, Any]:
    resume = (
        Resume.select(Resume.filename, Resume.content_type, Resume.size, Resume.sha256)
        .where(Resume.lead == lead.id)
        .first()
    )
    history = Event.select().where(Event.lead == lead.id).order_by(Event.at, Event.id)
    messages = (
        OutboxMessage.select(
            OutboxMessage.id,
            OutboxMessage.purpose,
            OutboxMessage.recipient,
            OutboxMessage.subject,
            OutboxMessage.status,
            OutboxMessage.created_at,
            OutboxMessage.sent_at,
        )
        .where(OutboxMessage.lead == lead.id)
        .order_by(OutboxMessage.id)
    )
    return {
        "id": lead.id,
        "reference": lead.reference,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "state": lead.state,
        "attorney": _attorney_email(lead),
        "created_at": iso(lead.created_at),
        "updated_at": iso(lead.updated_at),
        "reached_out_at": iso(lead.reached_out_at),
        "reached_out_by": lead.reached_out_by,
        "quarantined": bool(lead.quarantined),
        "consent_at": iso(lead.consent_at),
        "disclaimer_version": lead.disclaimer_version,
        "resume": {
            "filename": resume.filename,
            "content_type": resume.content_type,
            "size": resume.size,
            "sha256": resume.sha256,
        }
        if resume
        else None,
        "resume_url": lead.resume_url,
        "events": [
            {"at": iso(e.at), "actor": e.actor, "kind": e.kind, "details": e.details}
            for e in history
        ],
        "messages": [
            {
                "id": m.id,
                "purpose": m.purpose,
                "recipient": m.recipient,
                "subject": m.subject,
                "status": m.status,
                "created_at": iso(m.created_at),
                "sent_at": iso(m.sent_at),
            }
            for m in messages
        ],
    }


def _attorney_email(lead: Lead) -> str | None:
    attorney = lead.attorney if lead.attorney_id is not None else None
    return attorney.email if attorney is not None else None


def safe_filename(name: str, fallback: str = "resume") -> str:
    """A stored file name made safe to create in a folder: no path (`../../etc/passwd` is
    `passwd`), no control or reserved characters, no device name (`con`), not hidden, at most
    150 bytes of UTF-8 (resumes.fit_filename: a file name's limit is 255 bytes, not characters)."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_CHARS.sub("_", base).strip(" .")
    if _DEVICES.match(base):
        base = f"_{base}"
    return fit_filename(base) if base else fallback


def export(
    email: str, folder: str | os.PathLike[str], *, overwrite: bool = False
) -> dict[str, Any]:
    """Write `person.json` (what `show` gives, with each email's text) and each resume file into
    `folder` (made 0700 if missing; files 0600, never through a symlink). An existing file is an
    error naming it unless `overwrite`; then nothing is written."""
    data = show(email)
    data["exported_at"] = iso(utcnow())
    target = Path(folder)
    planned: list[tuple[Path, bytes | None, dict[str, Any] | None]] = []
    for lead in data["leads"]:
        texts = OutboxMessage.select(OutboxMessage.id, OutboxMessage.body_text).where(
            OutboxMessage.lead == lead["id"]
        )
        bodies = {m.id: m.body_text for m in texts}
        for message in lead["messages"]:
            message["body_text"] = bodies.get(message["id"], "")
        if lead["resume"] is not None:
            name = f"{lead['id']}-{safe_filename(lead['resume']['filename'])}"
            lead["resume"]["saved_as"] = f"{RESUMES}/{name}"
            planned.append((target / RESUMES / name, None, lead))
    planned.insert(0, (target / EXPORT_FILE, None, None))
    if not overwrite:
        for path, _, _ in planned:
            if path.exists() or path.is_symlink():
                raise LeadctlError(f"{path} exists; pass --force to overwrite it")
    try:
        private_folder(target)
        if len(planned) > 1:
            private_folder(target / RESUMES)
    except OSError as exc:
        raise LeadctlError(f"cannot make the folder {target}: {exc.strerror}") from None
    files = []
    for path, _, lead in planned:
        if lead is None:
            content = (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()
        else:
            content = bytes(Resume.get(Resume.lead == lead["id"]).data)
        _write(path, content, overwrite)
        files.append({"path": str(path), "bytes": len(content)})
    return {
        "email": data["email"],
        "folder": str(target),
        "leads": len(data["leads"]),
        "erased": len(data["erased"]),
        "files": files,
    }


def _write(path: Path, content: bytes, overwrite: bool) -> None:
    """A new 0600 file; with `overwrite` an old one (or a symlink planted there) is removed
    first, so the write never follows a link out of the folder."""
    if overwrite:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise LeadctlError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)

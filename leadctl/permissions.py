"""Who may read and change which lead: the one rule, for the staff API and local mode alike.

Changing a lead (reach-out, reopen, note, assign) is for its attorney, for any attorney while
it sits in the intake inbox (no attorney), and for admins. Reading is open to every attorney,
unless `LEADS_ATTORNEY_SCOPE=own`: then an attorney reads their own leads and the inbox's.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadctl.errors import Forbidden
from leadctl.models import Attorney, Lead, email_key

SCOPES = ("all", "own")


@dataclass(frozen=True)
class Caller:
    """Who asks. `name` is what the history records; the rest are their rights.

    `attorney_id` and `role` are None for someone who is not an active attorney; `refusal` then
    says why they may not act. `unrestricted` is a firm with no attorney at all yet (a fresh
    install, a bootstrap script): there is no one whose leads need keeping apart.
    """

    name: str
    attorney_id: int | None = None
    role: str | None = None
    unrestricted: bool = False
    refusal: str = ""

    @property
    def is_admin(self) -> bool:
        return self.unrestricted or self.role == "admin"


def of_attorney(attorney: Attorney) -> Caller:
    """The holder of a staff token (authentication has already refused an inactive one)."""
    return Caller(attorney.email, attorney.id, attorney.role)


def local(actor: str) -> Caller:
    """The local actor (`--as`, `LEADCTL_ACTOR`, else the OS user), with their attorney's rights.

    Someone who is not an attorney (the OS user, an unknown address) acts freely only while the
    firm has no attorney at all; once it has one, they must say which attorney they are.
    """
    attorney = Attorney.get_or_none(Attorney.email == email_key(actor)) if "@" in actor else None
    if attorney is not None and attorney.active:
        return of_attorney(attorney)
    if attorney is not None:
        return Caller(actor, refusal=f"attorney {attorney.email} is deactivated")
    if not Attorney.select().exists():
        return Caller(actor, unrestricted=True)
    return Caller(
        actor,
        refusal=f"{actor} is not an attorney here; act as one with leadctl --as EMAIL "
        "(an admin's for any lead; see: leadctl attorney list)",
    )


def check_admin(caller: Caller, what: str, hint: str = "") -> None:
    """Forbidden (403) unless `caller` is an admin; `what` names the act (suspected spam is
    an admin's to read and release), `hint` how to act as one."""
    if not caller.is_admin:
        raise Forbidden(f"{what} needs an admin" + (f"; {hint}" if hint else ""))


def owner_of(lead: Lead) -> str | None:
    """The email of the lead's attorney, or None when it sits in the intake inbox."""
    if lead.attorney_id is None:
        return None
    attorney = lead.attorney
    return attorney.email if attorney is not None else None


def check_change(caller: Caller, lead: Lead) -> None:
    """Forbidden (403) unless `caller` may change `lead`; the message names its owner."""
    if not may_change(caller, lead.attorney_id):
        raise Forbidden(
            f"lead {lead.id} is assigned to {owner_of(lead)}; only they or an admin may change it"
        )


def may_change(caller: Caller, attorney_id: int | None) -> bool:
    """The rule: admins change any lead; an attorney their own and the inbox's (None).

    Forbidden, saying why, for someone who is not an active attorney.
    """
    if caller.is_admin:
        return True
    if caller.role is None:
        raise Forbidden(caller.refusal)
    return attorney_id is None or attorney_id == caller.attorney_id


def reads_only(caller: Caller, scope: str) -> int | None:
    """The attorney id whose leads (with the inbox's) `caller` alone may read, or None for all.

    Forbidden for someone who is not an attorney under `own` (an admin sees everything).
    """
    if scope != "own" or caller.is_admin:
        return None
    if caller.attorney_id is None:
        raise Forbidden(f"{caller.refusal} (LEADS_ATTORNEY_SCOPE=own)")
    return caller.attorney_id


def check_read(caller: Caller, lead: Lead, scope: str) -> None:
    """Forbidden (403) unless `caller` may read `lead` under `scope`, naming its owner."""
    only = reads_only(caller, scope)
    if only is None or lead.attorney_id is None or lead.attorney_id == only:
        return
    raise Forbidden(
        f"lead {lead.id} is assigned to {owner_of(lead)}; with LEADS_ATTORNEY_SCOPE=own an "
        "attorney reads only their own leads and the intake inbox's"
    )

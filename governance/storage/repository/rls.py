"""Row-level security: entering one tenant, or all of them (migration 0002)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


APP_ROLE = "governance_app"


def enter_tenant(session: Session, tenant: str) -> None:
    """For the rest of this transaction, act as the app role and see only `tenant`'s rows.

    Call first in the transaction: PostgreSQL's policies then hide, and refuse to write, any
    other tenant's rows, whatever a later query forgets to filter.
    """
    session.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    session.execute(text("SELECT set_config('governance.tenant', :tenant, true)"), {"tenant": tenant})


def enter_all_tenants(session: Session) -> None:
    """For jobs that are cross-tenant by design (outbox relay, reconciler, fan-outs, metrics)."""
    session.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    session.execute(text("SELECT set_config('governance.all_tenants', 'on', true)"))

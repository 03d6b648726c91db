"""The active model per tenant and the Batch API jobs of re-embedding."""
from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.embedding_tables import EmbeddingBatchJob, TenantModel


def active_tenant_model(session: Session, tenant: str) -> tuple[str, int, str] | None:
    """(spec, dims, model_id) the tenant embeds with; one index probe, cheap enough per decision."""
    row = session.execute(select(TenantModel.spec, TenantModel.dims, TenantModel.model_id)
                          .where(TenantModel.tenant == tenant, TenantModel.active)).first()
    return None if row is None else (row[0], row[1], row[2])


def activate_tenant_model(session: Session, tenant: str, spec: str, dims: int, model_id: str) -> None:
    """Make (spec, dims) the tenant's only active model, in this transaction."""
    session.execute(update(TenantModel).where(TenantModel.tenant == tenant, TenantModel.active)
                    .values(active=False))
    stmt = insert(TenantModel).values(tenant=tenant, spec=spec, dims=dims, model_id=model_id, active=True,
                                      switched_at=func.now())
    session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "spec", "dims"],
                                               set_={"active": True, "model_id": model_id,
                                                     "switched_at": func.now()}))


def lock_tenant_models(session: Session, tenant: str) -> None:
    """Serialise model switches of one tenant (transaction-scoped)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"tenant_models|{tenant}"})


def insert_batch_job(session: Session, *, tenant: str, job_name: str, model: str, dims: int, task: str,
                     items: list[list]) -> None:
    session.add(EmbeddingBatchJob(tenant=tenant, job_name=job_name, model=model, dims=dims, task=task,
                                  items=items, state="open"))
    session.flush()


def open_batch_jobs(session: Session, tenant: str, model: str, dims: int) -> list[EmbeddingBatchJob]:
    return list(session.scalars(select(EmbeddingBatchJob).where(
        EmbeddingBatchJob.tenant == tenant, EmbeddingBatchJob.model == model, EmbeddingBatchJob.dims == dims,
        EmbeddingBatchJob.state == "open").order_by(EmbeddingBatchJob.id)))


def finish_batch_job(session: Session, tenant: str, job_pk: int, state: str) -> None:
    session.execute(update(EmbeddingBatchJob).where(EmbeddingBatchJob.tenant == tenant, EmbeddingBatchJob.id == job_pk)
                    .values(state=state, finished_at=func.now()))

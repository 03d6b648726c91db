"""What a key can learn about itself."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from governance.access.api_keys import Principal
from web.deps import principal
from web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["keys"])


class Me(BaseModel):
    key_id: str
    tenant: str
    scopes: list[str]
    name: str | None


@router.get("/me", response_model=Me, summary="The calling key: its id, tenant, scopes and name",
            responses=problem_responses(401, 429))
def me(who: Principal = Depends(principal(None))) -> Me:
    return Me(key_id=who.key_id, tenant=who.tenant, scopes=sorted(who.scopes), name=who.name)

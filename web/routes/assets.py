"""POST /v1/assets (a multipart upload, streamed with the data_b64 size limit) and GET /v1/assets/{id}."""
from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from governance.ingest.events import InvalidEvent, decode_json
from governance.moderation.decisions import asset_history
from web.bodies import BodyTooLarge, declared_length, drain, limited_stream, media_type, too_large
from web.deps import TenantScope, tenant_scope
from web.ingest import accept_and_answer
from web.problems import Problem, problem_responses
from web.routes.events import WAIT
from web.schemas import AssetHistory, IngestResult

router = APIRouter(prefix="/v1", tags=["assets"])

TEXT_FIELDS = ("asset_id", "event_id", "title", "mime_type", "metadata")
FIELD_LIMIT_BYTES = 64 * 1024  # each form field
FORM_OVERHEAD_BYTES = len(TEXT_FIELDS) * FIELD_LIMIT_BYTES + 16 * 1024  # fields and part headers

_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "asset_id"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       "asset_id": {"type": "string", "minLength": 1, "maxLength": 256},
                       "event_id": {"type": "string", "minLength": 1, "maxLength": 256},
                       "title": {"type": "string"}, "mime_type": {"type": "string"},
                       "metadata": {"type": "string", "description": "a JSON object"}},
        "additionalProperties": False}}},
}


async def read_upload(request: Request, max_bytes: int) -> tuple[dict[str, str], UploadFile]:
    """The form's text fields and its one file, spooled to a temporary file as it arrives; the
    size limit is enforced on the stream, so an oversized file is never held whole."""
    if media_type(request) != "multipart/form-data":
        raise Problem("unsupported-media-type", "send multipart/form-data with a file part and asset_id")
    limit = max_bytes + FORM_OVERHEAD_BYTES
    declared = declared_length(request)
    if declared is not None and declared > limit:
        await drain(request.stream())
        raise too_large(f"the upload has {declared} bytes; files of at most {max_bytes} bytes are accepted")
    parser = MultiPartParser(request.headers, limited_stream(request, limit), max_files=1,
                             max_fields=len(TEXT_FIELDS), max_part_size=FIELD_LIMIT_BYTES)
    try:
        form = await parser.parse()
    except BodyTooLarge:
        await drain(request.stream())
        raise too_large(f"files of at most {max_bytes} bytes are accepted") from None
    except MultiPartException as exc:
        raise Problem("invalid-request", f"multipart: {exc.message}") from None
    fields, files = {}, []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, value))
        elif name not in TEXT_FIELDS:
            raise Problem("invalid-request", f"unknown_field: {name}")
        else:
            fields[name] = value
    if len(files) != 1 or files[0][0] != "file":
        raise Problem("invalid-request", "exactly one file part, named file, is required")
    upload = files[0][1]
    if upload.size is not None and upload.size > max_bytes:
        raise too_large(f"the file has {upload.size} bytes; at most {max_bytes} are accepted")
    return fields, upload


def upload_event(fields: dict[str, str], upload: UploadFile) -> dict:
    """The upload as the event `publish` would take: its bytes as data_b64."""
    if not fields.get("asset_id"):
        raise Problem("invalid-request", "missing_field: asset_id is required")
    event = {name: fields[name] for name in ("asset_id", "event_id", "title", "mime_type") if fields.get(name)}
    if "mime_type" not in event and upload.content_type not in (None, "", "application/octet-stream"):
        event["mime_type"] = upload.content_type
    if fields.get("metadata"):
        try:
            event["metadata"] = decode_json(fields["metadata"])
        except InvalidEvent as exc:
            raise Problem("invalid-request", f"metadata: {exc}") from None
    upload.file.seek(0)
    event["data_b64"] = base64.b64encode(upload.file.read()).decode("ascii")
    return event


@router.post("/assets", status_code=202, response_model=IngestResult,
             summary="Upload a file as an event (multipart: file, asset_id, optional event_id, title, metadata)",
             responses={200: {"model": IngestResult, "description": "with ?wait=: the event has an outcome"},
                        **problem_responses(401, 403, 409, 413, 415, 422, 429)},
             openapi_extra={"requestBody": _UPLOAD_BODY})
async def upload_asset(request: Request, wait: float | None = WAIT,
                       scope: TenantScope = Depends(tenant_scope("ingest"))):
    fields, upload = await read_upload(request, scope.settings.max_bytes)
    try:
        event = upload_event(fields, upload)
    finally:
        await upload.close()
    return await run_in_threadpool(accept_and_answer, scope, [(0, event)], True, wait)


@router.get("/assets/{asset_id}", response_model=AssetHistory,
            summary="An asset: what is stored of it, its decisions and its review history",
            responses=problem_responses(401, 403, 404, 422, 429))
def get_asset(asset_id: str = Path(min_length=1, max_length=256),
              scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        history = asset_history(session, scope.tenant, asset_id)
    if history is None:
        raise Problem("not-found", f"no asset {asset_id!r}")
    return history

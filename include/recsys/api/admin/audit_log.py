"""The audit trail, read back as JSON or as a formula-safe CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from include.recsys.api.web import platform
from include.recsys.contract.csvsafe import escape_cell

router = APIRouter()


AUDIT_COLUMNS = ("id", "ts", "actor", "tenant_id", "action", "object", "source", "request_id", "details")


@router.get("/audit")
def list_audit(
    request: Request,
    tenant_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    source: str | None = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    clauses, params = [], []
    with platform(request).db.transaction() as cur:
        if tenant_id is not None:
            cur.execute("SELECT id FROM tenants WHERE id = %s OR slug = %s", (tenant_id, tenant_id))
            found = cur.fetchone()
            # A deleted tenant's trail stays readable by its id.
            clauses.append("tenant_id = %s")
            params.append(found["id"] if found else tenant_id)
        if action is not None:
            clauses.append("action = %s")
            params.append(action)
        if since is not None:
            clauses.append("ts >= %s")
            params.append(since)
        if source is not None:
            clauses.append("details ->> 'source' = %s")
            params.append(source)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        cur.execute(
            "SELECT id, ts, actor, tenant_id, action, object, details ->> 'source' AS source, request_id, details"
            f" FROM audit_log{where} ORDER BY id LIMIT %s",
            (*params, limit),
        )
        rows = cur.fetchall()
    entries = [{**r, "ts": r["ts"].isoformat()} for r in rows]
    if format == "json":
        return JSONResponse({"count": len(entries), "entries": entries})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS)
    writer.writeheader()
    for entry in entries:
        # source and request_id are caller-supplied: escaped so the export cannot carry a formula.
        row = {**entry, "details": json.dumps(entry["details"], sort_keys=True)}
        writer.writerow({column: escape_cell(value) for column, value in row.items()})
    return Response(out.getvalue(), media_type="text/csv")

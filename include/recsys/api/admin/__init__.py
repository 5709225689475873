"""Admin routes (/api/admin/...): tenants, API keys, data uploads, models, deployments, audit.

Every route needs Authorization: Bearer <RECSYS_ADMIN_TOKEN>. Wherever a path says {tenant}, the
tenant's id or its slug is accepted. Every state change writes its audit row in the same transaction.

Each resource has its module here; this one joins their routes under the admin token.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from include.recsys.api.admin import audit_log, deployments, keys, models, plans, tenants, uploads
from include.recsys.api.web import require_admin

router = APIRouter(prefix="/api/admin", dependencies=[Depends(require_admin)])
for part in (tenants, plans, keys, uploads, models, deployments, audit_log):
    router.include_router(part.router)

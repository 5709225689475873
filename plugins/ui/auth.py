"""Who may see the Journey UI: exactly whom Airflow's auth manager accepts for the journey DAG's runs.

Airflow mounts plugin apps without protecting them. The dependency here takes the caller's credential the way
Airflow's own API does (``Authorization: Bearer`` from ``POST /auth/token``, else the UI's ``_token`` cookie),
lets the configured auth manager decode it, and asks that manager whether the user may read the DAG's runs.
Anything else is 401: reports name tenants and hold their data. A valid user without access to the DAG is 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

JOURNEY_DAG_ID = "onboarding_journey"
_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def operator(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Any:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
    else:
        token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in to Airflow first (no token or session)", _CHALLENGE)
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except Exception:  # expired, revoked, forged or malformed: the auth manager's verdict, never ours to soften
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token rejected by Airflow's auth manager", _CHALLENGE
        ) from None
    allowed = manager.is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=JOURNEY_DAG_ID), user=user
    )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"user may not read runs of {JOURNEY_DAG_ID}")
    return user

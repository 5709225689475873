"""The platform service: the API process's long-lived state (connections, caches, served models, counters)
and the transactions that change what it serves (deploying a model, ending a candidate)."""

from __future__ import annotations

import logging
import threading
import time

from include.recsys import audit, storage
from include.recsys.api import deploys
from include.recsys.api.auth import KeyCache, KeyOwner
from include.recsys.api.cache import ResponseCache
from include.recsys.api.errors import ApiError
from include.recsys.api.health import HealthChecker
from include.recsys.api.ratelimit import RateLimiter
from include.recsys.audit import ServedCounter
from include.recsys.db import Database, DatabaseUnavailable
from include.recsys.ml import serving
from include.recsys.settings import Settings

log = logging.getLogger(__name__)

# How long a tenant without a deployed model keeps the same popularity fallback.
POPULARITY_TTL_S = 30.0
POPULARITY_DEPTH = 1000
BACKGROUND_PERIOD_S = 5.0


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.s3 = storage.client(settings)
        self.registry = serving.Registry()
        self.keys = KeyCache(self._lookup_key)
        self.limiter = RateLimiter()
        self.served = ServedCounter(self.db)
        self.cache = ResponseCache(settings.redis_url, ttl_s=settings.cache_ttl_s)
        self.health = HealthChecker(settings, self.db, cache=self.cache)
        self.deploy_lock = threading.Lock()
        self._popularity: dict[str, tuple[float, serving.Popularity]] = {}
        self._deployments_loaded = False
        self._stop = threading.Event()
        self._background: threading.Thread | None = None

    def _lookup_key(self, key_hash: str) -> KeyOwner | None:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT k.id, k.tenant_id, k.key_prefix, t.slug, p.name AS plan, p.requests, p.window_s"
                " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
                " JOIN rate_plans p ON p.name = COALESCE(k.plan, t.plan)"
                " WHERE k.key_hash = %s AND k.revoked_at IS NULL AND t.status = 'active'",
                (key_hash,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return KeyOwner(
            key_id=row["id"],
            tenant_id=row["tenant_id"],
            tenant_slug=row["slug"],
            prefix=row["key_prefix"],
            plan=row["plan"],
            rate_limit=row["requests"],
            rate_window_s=row["window_s"],
        )

    def build_model(self, tenant_id: str, version: str, artifact_uri: str) -> serving.TenantModel:
        """Artifacts from S3 plus the model's catalog and users' history from the database."""
        artifacts = serving.load_artifacts(self.s3, artifact_uri)
        with self.db.transaction() as cur:
            # The categories of the catalog the model was trained on; a model registered without one uses the
            # tenant's merged catalog.
            cur.execute(
                "SELECT c.item_id, c.category FROM model_versions m JOIN catalog_items c ON c.upload_id = m.catalog_upload_id"
                " WHERE m.tenant_id = %s AND m.version = %s",
                (tenant_id, version),
            )
            rows = cur.fetchall()
            if not rows:
                cur.execute("SELECT item_id, category FROM items WHERE tenant_id = %s", (tenant_id,))
                rows = cur.fetchall()
            categories = {row["item_id"]: row["category"] for row in rows}
            cur.execute(
                "SELECT user_id, array_agg(item_id) AS items FROM interactions WHERE tenant_id = %s GROUP BY user_id",
                (tenant_id,),
            )
            history = {row["user_id"]: row["items"] for row in cur.fetchall()}
        return serving.TenantModel.build(artifacts, version=version, categories=categories, history=history)

    def deploy(
        self,
        *,
        tenant: dict,
        version: str,
        traffic_percent: int,
        protect_newer_live: bool,
        actor: str,
        source: str | None,
        request_id: str,
    ) -> deploys.Deployed:
        """Serve ``version`` of ``tenant`` live (``traffic_percent`` > 0) or as a candidate (0): build its index,
        record the deployment and its audit row in one transaction, then swap the served model."""
        role = "candidate" if traffic_percent == 0 else "live"
        tenant_id = tenant["id"]
        with self.db.transaction() as cur:
            model_row = deploys.registered_model(cur, tenant, version)
            live = deploys.live_deployment(cur, tenant_id)
        # Checked before the index is built (a refusal costs nothing) and again under the tenant's row lock below.
        if role == "live" and protect_newer_live:
            deploys.refuse_older(live, version=version, logical_date=model_row["logical_date"])
        if role == "candidate":
            deploys.refuse_candidate_of_live(live, version=version, tenant_slug=tenant["slug"])
        # One deploy at a time: building an index is CPU-bound and two racing deploys of one tenant must
        # leave the database and the served model agreeing on the winner.
        with self.deploy_lock:
            try:
                model = self.build_model(tenant_id, version, model_row["artifact_uri"])
            except storage.StorageError as exc:
                raise ApiError(422, "artifacts_unreadable", str(exc)) from None
            except ValueError as exc:
                raise ApiError(422, "artifacts_invalid", str(exc)) from None
            with self.db.transaction() as cur:
                deploys.lock_tenant(cur, tenant_id)
                live = deploys.live_deployment(cur, tenant_id)
                if role == "live":
                    if protect_newer_live:
                        deploys.refuse_older(live, version=version, logical_date=model_row["logical_date"])
                    deployment_id, reused = deploys.deploy_live(
                        cur, tenant_id=tenant_id, version=version, traffic_percent=traffic_percent, live=live
                    )
                else:
                    if live is not None and live["version"] == version:
                        raise ApiError(409, "version_is_live", f"{version} became the live model meanwhile")
                    deployment_id, reused = deploys.deploy_candidate(cur, tenant_id=tenant_id, version=version)
                live_version = live["version"] if live is not None else None
                replaced = live_version if role == "live" and live_version != version else None
                audit.record(
                    cur,
                    actor=actor,
                    action="model.deployed",
                    tenant_id=tenant_id,
                    object_ref=f"model:{version}",
                    details={
                        "source": source,
                        "version": version,
                        "role": role,
                        "index_size": model.index_size,
                        "traffic_percent": traffic_percent,
                        "deployment_id": deployment_id,
                        "replaced": replaced,
                        "reused": reused,
                    },
                    request_id=request_id,
                )
            if role == "live":
                self.registry.put(tenant_id, model)
            else:
                self.registry.put_candidate(tenant_id, model)
            # The rebuilt model may answer differently (its users' history grew), and a replaced one serves no more.
            dropped = sum(self.cache.invalidate(tenant_id=tenant_id, version=v) for v in {version, replaced} if v)
        return deploys.Deployed(
            tenant_id=tenant_id,
            version=version,
            role=role,
            deployment_id=deployment_id,
            reused=reused,
            replaced=replaced,
            logical_date=model_row["logical_date"],
            traffic_percent=traffic_percent,
            model=model,
            cache_dropped=dropped,
        )

    def end_deployment(
        self, *, tenant: dict, deployment_id: str, actor: str, source: str | None, request_id: str
    ) -> dict:
        """End a candidate deployment and unload it; the deployment row as it is now. Ending an ended one
        changes nothing; the live one is only ever replaced by deploying another version (409)."""
        with self.deploy_lock, self.db.transaction() as cur:
            deploys.lock_tenant(cur, tenant["id"])
            row, ended = deploys.end_candidate(cur, tenant=tenant, deployment_id=deployment_id)
            if ended:
                audit.record(
                    cur,
                    actor=actor,
                    action="model.undeployed",
                    tenant_id=tenant["id"],
                    object_ref=f"model:{row['version']}",
                    details={
                        "source": source,
                        "version": row["version"],
                        "role": row["role"],
                        "deployment_id": row["id"],
                    },
                    request_id=request_id,
                )
            self.registry.drop_candidate(tenant["id"], row["version"])
        self.cache.invalidate(tenant_id=tenant["id"], version=row["version"])
        return row

    def reload_deployments(self) -> None:
        """Serves again what was active before a restart, live models and candidates; a model that fails to
        load is logged and skipped."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT d.tenant_id, d.version, d.role, m.artifact_uri FROM deployments d"
                " JOIN model_versions m ON m.tenant_id = d.tenant_id AND m.version = d.version WHERE d.active"
            )
            active = cur.fetchall()
        for row in active:
            if self.registry.get_version(row["tenant_id"], row["version"]) is not None:
                continue
            try:
                model = self.build_model(row["tenant_id"], row["version"], row["artifact_uri"])
            except (storage.StorageError, ValueError) as exc:  # unreadable, or corrupt / unservable
                log.error("cannot reload tenant %s version %s: %s", row["tenant_id"], row["version"], exc)
                continue
            if row["role"] == "candidate":
                self.registry.put_candidate(row["tenant_id"], model)
            else:
                self.registry.put(row["tenant_id"], model)
            log.info(
                "reloaded tenant %s %s version %s (%d items)",
                row["tenant_id"],
                row["role"],
                row["version"],
                model.index_size,
            )
        self._deployments_loaded = True

    def popularity(self, tenant_id: str) -> serving.Popularity:
        """Most-interacted catalog items, for tenants with no deployed model yet."""
        cached = self._popularity.get(tenant_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT i.item_id, i.category FROM items i"
                " LEFT JOIN interactions x ON x.tenant_id = i.tenant_id AND x.item_id = i.item_id"
                " WHERE i.tenant_id = %s GROUP BY i.item_id, i.category"
                " ORDER BY count(x.event_id) DESC, i.item_id LIMIT %s",
                (tenant_id, POPULARITY_DEPTH),
            )
            rows = cur.fetchall()
        popularity = serving.Popularity(
            tuple(row["item_id"] for row in rows), {row["item_id"]: row["category"] for row in rows}
        )
        self._popularity[tenant_id] = (time.monotonic() + POPULARITY_TTL_S, popularity)
        return popularity

    def start(self) -> None:
        try:
            self.reload_deployments()
        except DatabaseUnavailable as exc:
            log.warning("deployments not reloaded yet (will retry): %s", exc)
        self._background = threading.Thread(target=self._background_loop, name="recsys-background", daemon=True)
        self._background.start()

    def _background_loop(self) -> None:
        while not self._stop.wait(BACKGROUND_PERIOD_S):
            try:
                self.served.flush()
                if not self._deployments_loaded:
                    self.reload_deployments()
            except DatabaseUnavailable as exc:
                log.warning("background work deferred: %s", exc)
            except Exception:
                # This thread must outlive any one failure, or counts stop being flushed.
                log.exception("background work failed; retrying in %ss", BACKGROUND_PERIOD_S)

    def stop(self) -> None:
        self._stop.set()
        if self._background is not None:
            self._background.join(timeout=5)
        self.served.flush()
        self.health.close()
        self.db.close()

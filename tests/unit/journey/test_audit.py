"""audit's pure logic: the platform's audit entries tallied per action, and the frames its suite checks."""

from __future__ import annotations

from plugins.journey.audit import RUN_ACTIONS, TENANT_ACTIONS, frames, tally


def _entry(action, *, rows=None, source="2026-01-01-abcd", tenant_id="t1"):
    details = {"source": source, **({"rows": rows} if rows is not None else {})}
    return {"action": action, "tenant_id": tenant_id, "details": details}


def test_tally_counts_every_required_action_and_the_rows_ingestion_accounts_for():
    entries = [
        _entry("upload.registered"),
        _entry("upload.registered"),
        _entry("interactions.ingested", rows=500),
        _entry("interactions.ingested", rows=250),
        _entry("model.registered"),
        _entry("tenant.created", source=None),
    ]
    audited = tally(entries)
    assert audited["found"] == {
        "upload.registered": 2,
        "interactions.ingested": 2,
        "model.registered": 1,
        "model.deployed": 0,
        "apikey.created": 0,
        "tenant.created": 1,
    }
    assert audited["rows_ingested"] == 750
    assert audited["entries"][0] == {"action": "upload.registered", "tenant_id": "t1", "source": "2026-01-01-abcd"}
    assert audited["entries"][-1]["source"] is None


def test_an_entry_without_details_counts_but_ingests_nothing():
    audited = tally([{"action": "interactions.ingested", "tenant_id": "t1", "details": None}])
    assert audited["found"]["interactions.ingested"] == 1 and audited["rows_ingested"] == 0


def test_frames_list_every_required_action_even_when_missing():
    audited = tally([_entry("model.deployed")])
    found = frames(audited)
    assert found["actions"]["action"].tolist() == [*RUN_ACTIONS, *TENANT_ACTIONS]
    assert dict(zip(found["actions"]["action"], found["actions"]["found"], strict=True))["model.deployed"] == 1
    assert found["actions"]["found"].sum() == 1
    assert found["audit_rows"].columns.tolist() == ["action", "tenant_id", "source"]
    assert frames(tally([]))["audit_rows"].empty

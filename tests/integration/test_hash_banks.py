"""Hash banks on a real PostgreSQL: imports, matching before the vote, allowlists, retroactive
re-checks, enable/disable and export, with hashes written by threatexchange's own hasher."""
import base64
import hashlib
import json

from sqlalchemy import select
from threatexchange.signal_type.pdq.signal import PdqSignal

from governance.moderation import review
from governance.moderation.batch_pipeline import process_upload
from governance.moderation.exemplar_banks import import_exemplars
from governance.moderation.hash_banks import export_hashes, import_hashes, set_hashes_enabled
from governance.moderation.hash_files import Defaults, parse_hash_file
from governance.moderation.policy_store import apply_policy
from governance.storage import repository
from governance.storage.hash_tables import AssetHash
from tests.integration.helpers import publish
from tests.synthetic_photos import TRANSFORMS, encode, photo

POLICY = """
version = "hashes-1"
[labels.landscape]
action = "allow"
[labels.known_bad]
action = "block"
on_hash_match = "block"
[labels.spam]
action = "block"
near_duplicate_distance = 0.05
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_upload(db, ctx, tenant, asset_id, data: bytes) -> dict:
    [(_, event_id)] = publish(db, {"asset_id": asset_id, "tenant": tenant, "data_b64": b64(data)})
    return process_upload(db, ctx, tenant, event_id)


def seed_landscapes(db, ctx, tenant) -> None:
    """A bank of one allowed label, so that an unbanked picture is allowed by the vote."""
    result = import_exemplars(db, ctx, [{"asset_id": f"land-{i}", "tenant": tenant, "label": "landscape",
                                         "data_b64": b64(encode(photo(500 + i)))} for i in range(3)])
    assert result.imported == 3
    apply_policy(db, POLICY, tenant=tenant)


def test_a_threatexchange_hash_file_imports_and_blocks_a_recompressed_copy(db, ctx, tenant, tmp_path):
    seed_landscapes(db, ctx, tenant)
    original = photo(1)
    signal = PdqSignal.hash_from_bytes(encode(original, "JPEG", quality=95))  # threatexchange's own hasher
    assert len(signal) == 64
    listing = tmp_path / "partner.txt"
    listing.write_text(f"{signal}\n")
    entries = parse_hash_file(listing.read_bytes(), Defaults(signal_type="pdq", label="known_bad", source="partner"))
    imported = import_hashes(db, ctx, tenant, entries, who="ops")
    assert (imported.imported, imported.by_type, imported.bank_version) == (1, {"pdq": 1}, 1)

    decision = image_upload(db, ctx, tenant, "copy-1", TRANSFORMS["jpeg_q40"](original))
    assert decision["action"] == "block"
    assert decision["reason"].startswith("hash_match: pdq distance ")
    [match] = decision["hash_matches"]
    assert match["signal_type"] == "pdq" and match["label"] == "known_bad" and match["source"] == "partner"
    assert match["bank_version"] == 1 and 0 <= match["distance"] <= 31
    assert decision["hash_missed"] is None

    unrelated = image_upload(db, ctx, tenant, "other-1", encode(photo(2)))
    assert unrelated["hash_matches"] == [] and unrelated["action"] == "allow"
    # The stored decision exports the same evidence.
    [row] = [d for d in repository.iter_decisions(db, tenant) if d.asset_id == "copy-1"]
    assert row.hash_matches == decision["hash_matches"]


def test_exact_md5_and_sha256_hits_and_an_allowlist_hash(db, ctx, tenant):
    seed_landscapes(db, ctx, tenant)
    bad, fine = encode(photo(3), "JPEG", quality=80), encode(photo(4), "JPEG", quality=80)
    rows = (f'{{"signal_type": "md5", "signal": "{hashlib.md5(bad).hexdigest()}", "label": "spam"}}\n'
            f'{{"signal_type": "sha256", "signal": "{hashlib.sha256(fine).hexdigest()}", "label": "known_bad"}}\n'
            f'{{"signal_type": "pdq", "signal": "{PdqSignal.hash_from_bytes(fine)}", "label": "known_bad", '
            f'"polarity": "negative", "source": "reviewed-ok"}}\n')
    import_hashes(db, ctx, tenant, parse_hash_file(rows.encode(), Defaults(source="feed")))

    spam = image_upload(db, ctx, tenant, "u-md5", bad)
    assert spam["action"] == "review"  # spam's on_hash_match is the default, review
    assert [(m["signal_type"], m["distance"], m["source"]) for m in spam["hash_matches"]] == [("md5", 0, "feed")]

    spared = image_upload(db, ctx, tenant, "u-allow", fine)
    assert spared["action"] == "allow"
    assert {(m["signal_type"], m.get("polarity", "positive")) for m in spared["hash_matches"]} == {
        ("sha256", "positive"), ("pdq", "negative")}


def test_the_near_duplicate_rule_shows_what_the_hash_bank_missed(db, ctx, tenant):
    apply_policy(db, POLICY, tenant=tenant)
    picture = encode(photo(5))
    assert import_exemplars(db, ctx, [{"asset_id": "spam-ex", "tenant": tenant, "label": "spam",
                                       "data_b64": b64(picture)}]).imported == 1
    exemplar_hashes = db.scalars(select(AssetHash.signal_type).where(AssetHash.tenant == tenant)).all()
    assert sorted(exemplar_hashes) == ["md5", "pdq"]  # image exemplars are hashed too (SHA-256: the asset row)

    decision = image_upload(db, ctx, tenant, "dup", picture)
    assert decision["action"] == "block" and decision["reason"].startswith("near_duplicate")
    assert decision["hash_matches"] == []
    assert decision["hash_missed"] == {"label": "spam", "asset_id": "spam-ex", "distance": 0.0, "pdq_distance": 0,
                                       "hash_distance": 31}


def test_a_new_known_bad_hash_rechecks_recent_allowed_uploads(db, ctx, tenant):
    seed_landscapes(db, ctx, tenant)
    first, second = encode(photo(6)), encode(photo(7), "JPEG", quality=85)
    assert image_upload(db, ctx, tenant, "early-1", first)["action"] == "allow"
    assert image_upload(db, ctx, tenant, "early-2", second)["action"] == "allow"
    third = encode(photo(11))
    assert image_upload(db, ctx, tenant, "early-3", third)["action"] == "allow"

    pdq = PdqSignal.hash_from_bytes(encode(photo(6), "JPEG", quality=60))
    rows = (f"signal_type,signal,label\npdq,{pdq},known_bad\nmd5,{hashlib.md5(second).hexdigest()},known_bad\n"
            f"md5,{'0' * 32},known_bad\nsha256,{hashlib.sha256(third).hexdigest()},known_bad\n")
    result = import_hashes(db, ctx, tenant, parse_hash_file(rows.encode(), Defaults(source="late-list")))
    assert sorted((r["asset_id"], r["signal_type"]) for r in result.retroactive) == [
        ("early-1", "pdq"), ("early-2", "md5"), ("early-3", "sha256")]
    pending = {item["asset_id"]: item for item in review.pending(db, tenant) if item["kind"] == "retroactive"}
    assert set(pending) == {"early-1", "early-2", "early-3"}
    assert pending["early-2"]["trigger_asset_id"] == f"hash:md5:{hashlib.md5(second).hexdigest()}"
    # Importing the same list again opens nothing new.
    again = import_hashes(db, ctx, tenant, parse_hash_file(rows.encode(), Defaults(source="late-list")))
    assert again.retroactive == [] and again.bank_version == result.bank_version + 1


def test_disable_and_enable_by_source_and_export_round_trip(db, ctx, tenant):
    seed_landscapes(db, ctx, tenant)
    original = photo(8)
    signal = PdqSignal.hash_from_bytes(encode(original))
    import_hashes(db, ctx, tenant, parse_hash_file(f"pdq {signal}\n".encode(),
                                                   Defaults(label="known_bad", source="list-a")), who="ops")
    off = set_hashes_enabled(db, ctx, tenant, False, source="list-a", who="ops")
    assert [c[:3] for c in off.changed] == [("pdq", signal, "known_bad")] and off.bank_version == 2
    assert image_upload(db, ctx, tenant, "while-off", TRANSFORMS["half_size"](original))["hash_matches"] == []

    on = set_hashes_enabled(db, ctx, tenant, True, signal=signal.upper(), who="ops")
    assert len(on.changed) == 1 and on.bank_version == 3
    assert [r["asset_id"] for r in on.retroactive] == ["while-off"]  # allowed while the hash was off
    blocked = image_upload(db, ctx, tenant, "when-on", TRANSFORMS["greyscale"](original))
    assert blocked["action"] == "block" and blocked["hash_matches"][0]["bank_version"] == 3

    [exported] = list(export_hashes(db, tenant))
    assert (exported["signal"], exported["source"], exported["enabled"], exported["created_by"]) == (
        signal, "list-a", True, "ops")
    assert parse_hash_file(json.dumps(exported).encode(), Defaults())[0].signal == signal
    audit = [e.kind for e in repository.audit_entries(db, tenant)]
    assert {"hash_import", "hash_disable", "hash_enable"} <= set(audit)


def test_a_backtest_replays_the_stored_hash_evidence_under_the_candidate_policy(db, ctx, tenant):
    from governance.moderation.backtest import backtest
    from governance.moderation.policy_store import parse_policy

    seed_landscapes(db, ctx, tenant)
    original = photo(9)
    import_hashes(db, ctx, tenant, parse_hash_file(f"pdq {PdqSignal.hash_from_bytes(encode(original))}\n".encode(),
                                                   Defaults(label="known_bad", source="list")))
    assert image_upload(db, ctx, tenant, "hit", TRANSFORMS["jpeg_q40"](original))["action"] == "block"
    candidate = parse_policy(POLICY.replace('on_hash_match = "block"', 'on_hash_match = "review"')
                             .replace("hashes-1", "hashes-2")).policy
    result = backtest(db, ctx, tenant, candidate)
    assert result.stored_to_candidate[("block", "review")] == 1
    [example] = result.examples[("block", "review")]
    assert example["asset_id"] == "hit" and example["reason"].startswith("hash_match: pdq")

"""vPDQ on a real PostgreSQL, where the vpdq package builds: a video hashed by threatexchange's own
VPDQSignal is banked, a re-encoded copy upload matches it, an unrelated video does not; a video
exemplar keeps its vPDQ hash; the bank exports, re-imports and disables by the hash's key."""
import base64
import json
import tempfile

import pytest
from sqlalchemy import select

from governance.ingest.content_hashes import VPDQ_AVAILABLE, vpdq_key
from governance.moderation.batch_pipeline import process_upload
from governance.moderation.exemplar_banks import import_exemplars
from governance.moderation.hash_banks import export_hashes, import_hashes, set_hashes_enabled
from governance.moderation.hash_files import Defaults, parse_hash_file
from governance.moderation.policy_store import apply_policy
from governance.storage.hash_tables import AssetHash
from governance.storage.tables import Asset
from tests.integration.helpers import publish
from tests.synthetic_photos import photo_video, reencoded_video

pytestmark = pytest.mark.skipif(not VPDQ_AVAILABLE, reason="vpdq is installed only where the FFmpeg dev libs are")

POLICY = """
version = "vpdq-1"
anomaly_action = "allow"
[labels.clips]
action = "allow"
[labels.known_bad]
action = "block"
on_hash_match = "block"
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def threatexchange_vpdq(video: bytes) -> str:
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
        handle.write(video)
        handle.flush()
        return VPDQSignal.hash_from_file(handle.name)


def upload(db, ctx, tenant, asset_id, data: bytes) -> dict:
    [(_, event_id)] = publish(db, {"asset_id": asset_id, "tenant": tenant, "data_b64": b64(data)})
    return process_upload(db, ctx, tenant, event_id)


def test_a_reencoded_copy_of_a_banked_video_matches_and_an_unrelated_one_does_not(db, ctx, tenant):
    banned, unrelated, clip = photo_video([1, 2, 3]), photo_video([7, 8, 9]), photo_video([20, 21])
    result = import_exemplars(db, ctx, [{"asset_id": "clip-1", "tenant": tenant, "label": "clips",
                                         "data_b64": b64(clip)}])
    assert result.imported == 1
    apply_policy(db, POLICY, tenant=tenant)
    signal = threatexchange_vpdq(banned)
    listing = json.dumps({"signal_type": "vpdq", "signal": signal, "label": "known_bad", "source": "partner"})
    entries = parse_hash_file(listing.encode(), Defaults())
    assert import_hashes(db, ctx, tenant, entries, who="ops").by_type == {"vpdq": 1}

    copy = upload(db, ctx, tenant, "copy", reencoded_video(banned))
    assert copy["action"] == "block" and copy["reason"].startswith("hash_match: vpdq distance"), copy["reason"]
    [match] = [m for m in copy["hash_matches"] if m["signal_type"] == "vpdq"]
    assert (match["label"], match["source"], match["bank_version"]) == ("known_bad", "partner", 1)
    assert 0 <= match["distance"] <= 20  # at least threatexchange's 80% of the copy's frames matched

    other = upload(db, ctx, tenant, "other", unrelated)
    assert other["hash_matches"] == [] and other["action"] == "allow", other["reason"]

    # The exemplar and the uploads keep their vPDQ hashes, keyed by the SHA-256 of the JSON.
    stored = db.execute(select(Asset.asset_id, AssetHash.signal, AssetHash.features)
                        .join(AssetHash, AssetHash.asset_pk == Asset.id)
                        .where(Asset.tenant == tenant, AssetHash.signal_type == "vpdq")).all()
    assert sorted(asset_id for asset_id, _, _ in stored) == ["clip-1", "copy", "other"]
    assert all(key == vpdq_key(features) and json.loads(features) for _, key, features in stored)

    [exported] = list(export_hashes(db, tenant))
    assert exported["signal"] == signal  # the JSON itself, as threatexchange wrote it: it imports again
    assert parse_hash_file(json.dumps(exported).encode(), Defaults())[0].signal == signal
    off = set_hashes_enabled(db, ctx, tenant, False, signal=vpdq_key(signal), who="ops")
    assert [(t, lab) for t, _, lab, _ in off.changed] == [("vpdq", "known_bad")]
    again = upload(db, ctx, tenant, "copy-again", reencoded_video(banned))
    assert again["hash_matches"] == [], again["hash_matches"]

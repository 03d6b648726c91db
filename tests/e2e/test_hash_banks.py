"""Hash banks end to end: a list written with threatexchange's hasher, imported by the CLI, and
uploads decided by a real worker, whose decisions carry `hash_matches`."""
import hashlib
import json
import uuid

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from tests import media_samples as ms
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.synthetic_photos import TRANSFORMS, encode, photo

pytestmark = pytest.mark.e2e

POLICY = """
version = "hash-e2e-1"
[labels.landscape]
action = "allow"
[labels.known_bad]
action = "block"
on_hash_match = "block"
"""


def test_a_recompressed_copy_of_a_banked_photo_and_a_banked_video_are_blocked_by_the_worker(
        e2e_env, worker, tmp_path):
    tenant = f"hashes-{uuid.uuid4().hex[:8]}"
    root = e2e_env["FILE_ROOT"]
    banned, video = photo(21), ms.mp4_bytes(2, colour=(0, 90, 200))
    files = {"copy.jpg": TRANSFORMS["jpeg_q40"](banned), "other.png": encode(photo(22)), "clip.mp4": video,
             **{f"land-{i}.png": encode(photo(600 + i)) for i in range(3)}}
    for name, data in files.items():
        with open(f"{root}/{tenant}-{name}", "wb") as handle:
            handle.write(data)

    def uri(name):
        return f"file://{root}/{tenant}-{name}"

    (tmp_path / "policy.toml").write_text(POLICY)
    cli(e2e_env, "policy", "apply", str(tmp_path / "policy.toml"), "--tenant", tenant)
    exemplars = [{"asset_id": f"land-{i}", "tenant": tenant, "uri": uri(f"land-{i}.png"), "label": "landscape"}
                 for i in range(3)]
    assert cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", exemplars))).stdout.strip() == "3"

    listing = tmp_path / "partner.txt"  # as `threatexchange hash photo` prints it
    listing.write_text(f"pdq {PdqSignal.hash_from_bytes(encode(banned, 'JPEG', quality=95))}\n")
    done = json.loads(cli(e2e_env, "hashes", "import", str(listing), "--tenant", tenant, "--label", "known_bad",
                          "--source", "partner").stdout)
    assert done["imported"] == 1 and done["by_type"] == {"pdq": 1}
    md5_list = tmp_path / "videos.csv"
    md5_list.write_text(f"signal_type,signal,label,source\nvideo_md5,{hashlib.md5(video).hexdigest()},known_bad,"
                        "video-list\n")
    assert json.loads(cli(e2e_env, "hashes", "import", str(md5_list), "--tenant", tenant).stdout)["bank_version"] == 2

    events = [{"asset_id": name.split(".")[0], "tenant": tenant, "uri": uri(name)}
              for name in ("copy.jpg", "other.png", "clip.mp4")]
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "uploads.jsonl", events)))
    w = worker()
    found = {d["asset_id"]: d for d in wait_for_decisions(e2e_env, tenant, len(events))}

    assert found["copy"]["action"] == "block", found["copy"]
    assert found["copy"]["reason"].startswith("hash_match: pdq distance")
    [match] = found["copy"]["hash_matches"]
    assert (match["signal_type"], match["label"], match["source"]) == ("pdq", "known_bad", "partner")
    assert match["distance"] <= 31 and match["bank_version"] == 2
    assert found["clip"]["action"] == "block"
    assert [(m["signal_type"], m["distance"], m["source"]) for m in found["clip"]["hash_matches"]] == [
        ("md5", 0, "video-list")]
    assert found["other"]["hash_matches"] == [] and found["other"]["action"] == "allow", found["other"]
    assert w.alive()

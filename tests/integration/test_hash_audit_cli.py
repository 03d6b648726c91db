"""`governance banks audit` on hash banks, through the CLI under row-level security: planted
contradictions inside the hash bank and between it and the image exemplars are found with the
command that fixes them, and a consistent bank gives none."""
from __future__ import annotations

import base64
import hashlib
import json
import shlex
import uuid

import pytest
from threatexchange.signal_type.pdq.signal import PdqSignal

from governance.moderation.hash_matching import pdq_distance
from tests.integration.test_bank_audit_cli import audit
from tests.integration.test_cli_rls import delete_tenants, probe_url  # noqa: F401 - the RLS probe role
from tests.synthetic_photos import TRANSFORMS, encode, photo
from worker import cli

HASH_KINDS = {"hash_contradiction", "hash_near_contradiction", "bank_contradiction"}


def write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def import_bank(tmp_path, tenant: str, exemplars: dict[str, tuple[int, str]], hashes: list[dict]) -> None:
    """Image exemplars {asset_id: (photo seed, label)} and hash rows, through the CLI."""
    rows = [{"asset_id": asset_id, "tenant": tenant, "label": label,
             "data_b64": base64.b64encode(encode(photo(seed))).decode()}
            for asset_id, (seed, label) in exemplars.items()]
    assert cli.main(["exemplars", "import", write_jsonl(tmp_path / f"{tenant}-ex.jsonl", rows)]) == 0
    assert cli.main(["hashes", "import", write_jsonl(tmp_path / f"{tenant}-h.jsonl", hashes), "--tenant", tenant,
                     "--source", "planted"]) == 0


@pytest.fixture
def tenants(database_url):
    made = [f"haudit-{uuid.uuid4().hex[:8]}", f"haudit-c-{uuid.uuid4().hex[:8]}"]
    yield made
    delete_tenants(database_url, *made)


def test_planted_hash_contradictions_are_found_and_fixed_and_a_clean_bank_has_none(
        probe_url, tenants, capsys, tmp_path):  # noqa: F811
    tenant, clean = tenants
    banned = PdqSignal.hash_from_bytes(TRANSFORMS["jpeg_q40"](photo(41)))  # a copy of the cats exemplar
    near_a = PdqSignal.hash_from_bytes(encode(photo(50)))
    near_b = PdqSignal.hash_from_bytes(TRANSFORMS["half_size"](photo(50)))
    assert 0 < pdq_distance(near_a, near_b) <= 31 and pdq_distance(banned, near_a) > 31
    md5 = hashlib.md5(b"a known file").hexdigest()
    import_bank(tmp_path, tenant, {"cats-1": (41, "cats"), "dogs-1": (42, "dogs"), "dogs-2": (43, "dogs")}, [
        {"signal_type": "pdq", "signal": banned, "label": "known_bad"},
        {"signal_type": "md5", "signal": md5, "label": "spam"},
        {"signal_type": "md5", "signal": md5, "label": "ham", "polarity": "negative"},
        {"signal_type": "pdq", "signal": near_a, "label": "spam"},
        {"signal_type": "pdq", "signal": near_b, "label": "scam"}])

    report = audit(capsys, tmp_path, tenant)
    assert report["hashes"] == {"md5": 2, "pdq": 3} and report["hash_bank_version"] == 1
    found = {f["kind"]: f for f in report["findings"] if f["modality"] == "hash"}
    assert [f["kind"] for f in report["findings"] if f["modality"] == "hash"] == [
        "hash_contradiction", "hash_near_contradiction", "bank_contradiction"]
    same = found["hash_contradiction"]
    assert same["detail"] == {"signal_type": "md5", "signal": md5, "labels": ["ham", "spam"],
                              "polarities": {"spam": "positive", "ham": "negative"}}
    assert same["fix"] == [f"governance hashes disable --signal {md5} --signal-type md5 --label {label} "
                           f"--tenant {tenant}" for label in ("spam", "ham")]
    near = found["hash_near_contradiction"]
    assert near["detail"]["labels"] == ["scam", "spam"] and near["detail"]["distance"] == pdq_distance(near_a, near_b)
    cross = found["bank_contradiction"]
    assert [(m["bank"], m["asset_id"], m["label"]) for m in cross["members"]] == [
        ("exemplars", "cats-1", "cats"), ("hashes", None, "known_bad")]
    assert cross["detail"]["exemplar_label"] == "cats" and cross["detail"]["hash_label"] == "known_bad"
    assert cross["fix"] == [f"governance exemplars disable cats-1 --label cats --tenant {tenant}",
                            f"governance hashes disable --signal {banned} --signal-type pdq --label known_bad "
                            f"--tenant {tenant}"]
    page = (tmp_path / "audit" / "audit.html").read_text()
    assert "bank_contradiction" in page and f"pdq {banned} [known_bad]" in page
    assert page.count("<img alt='' src='data:image/png;base64,") >= 1  # the exemplar's thumbnail

    for command in (cross["fix"][1], same["fix"][1]):  # take the hash-bank side out of each
        assert cli.main(shlex.split(command)[1:]) == 0
    after = audit(capsys, tmp_path, tenant)
    assert after["hash_bank_version"] == 3 and after["hashes"] == {"md5": 1, "pdq": 2}
    assert [f["kind"] for f in after["findings"] if f["modality"] == "hash"] == ["hash_near_contradiction"]

    # Consistent: a same-label copy, unrelated hashes, an exemplar matching a hash of its own label.
    own = PdqSignal.hash_from_bytes(TRANSFORMS["jpeg_q40"](photo(46)))
    import_bank(tmp_path, clean, {"cats-1": (46, "cats"), "dogs-1": (45, "dogs")}, [
        {"signal_type": "pdq", "signal": own, "label": "cats"},
        {"signal_type": "pdq", "signal": near_a, "label": "spam"},
        {"signal_type": "pdq", "signal": near_b, "label": "spam"},
        {"signal_type": "md5", "signal": md5, "label": "spam"}])
    consistent = audit(capsys, tmp_path, clean)
    assert consistent["hashes"] == {"md5": 1, "pdq": 3} and consistent["exemplars"] == {"image": 2}
    assert not HASH_KINDS & {f["kind"] for f in consistent["findings"]}, consistent["findings"]

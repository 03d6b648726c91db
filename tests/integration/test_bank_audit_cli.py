"""`governance banks audit` through the CLI, under row-level security, on a bank with flipped labels."""
from __future__ import annotations

import base64
import io
import json
import shlex
import uuid

import numpy as np
import pytest

from governance.embedding.backends.hashing import HashingEmbedder
from governance.storage import repository
from governance.storage.db import session_factory, transaction
from tests.integration.test_cli_rls import delete_tenants, probe_url  # noqa: F401 - the RLS probe role
from tests.unit.test_bank_audit import cleanlab_baseline, recall_precision
from worker import cli

CLASSES, PER_CLASS, FLIPPED = 10, 20, 10  # 5% of 200
SCRIPT = "<script>alert(1)</script>"


def class_texts(seed: int = 2) -> list[tuple[str, str]]:
    """(text, true label): each class draws most words from a vocabulary of its own."""
    rng = np.random.default_rng(seed)
    common = [f"common{i}" for i in range(20)]
    out = []
    for c in range(CLASSES):
        vocabulary = [f"topic{c}word{i}" for i in range(25)]
        for n in range(PER_CLASS):
            words = list(rng.choice(vocabulary, size=8)) + list(rng.choice(common, size=3))
            out.append((" ".join(words), f"label{c}"))
    return out


def png_b64() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 40, 90)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def flipped_bank(database_url, settings, tmp_path):
    tenant, other = f"audit-{uuid.uuid4().hex[:8]}", f"audit-o-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(9)
    items = class_texts()
    flips = {int(i) for i in rng.choice(len(items), size=FLIPPED, replace=False)}
    lines = []
    for i, (text, label) in enumerate(items):
        if i in flips:
            label = f"label{(int(label[5:]) + 1 + int(rng.integers(CLASSES - 1))) % CLASSES}"
        if i == min(flips):
            text = f"{SCRIPT} {text}"  # the excerpt must reach the HTML escaped
        lines.append({"asset_id": f"ex-{i:03d}", "tenant": tenant, "text": text, "label": label})
    lines.append({"asset_id": "ex-000", "tenant": other, "text": items[0][0], "label": "label5"})
    for asset_id, label in (("img-a", "cats"), ("img-b", "dogs")):  # the same picture under two labels
        lines.append({"asset_id": asset_id, "tenant": other, "data_b64": png_b64(), "label": label})
    path = tmp_path / "bank.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    yield tenant, other, path, {f"ex-{i:03d}" for i in flips}
    delete_tenants(database_url, tenant, other)


def audit(capsys, tmp_path, tenant: str) -> dict:
    capsys.readouterr()
    assert cli.main(["banks", "audit", "--tenant", tenant, "--out", str(tmp_path / "audit")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["json"] == str(tmp_path / "audit" / "audit.json")
    return json.loads((tmp_path / "audit" / "audit.json").read_text())


def test_audit_finds_flipped_labels_under_rls_and_its_fix_command_works(
        probe_url, flipped_bank, database_url, capsys, tmp_path):  # noqa: F811
    tenant, other, path, flipped = flipped_bank
    assert cli.main(["exemplars", "import", str(path)]) == 0
    report = audit(capsys, tmp_path, tenant)
    assert report["tenant"] == tenant and report["exemplars"] == {"text": CLASSES * PER_CLASS}
    assert report["model"] == HashingEmbedder(768).model_id and report["notes"] == []
    assert report["hashes"] == {} and report["hash_bank_version"] == 0
    mislabelled = [f for f in report["findings"] if f["kind"] == "mislabelled"]
    ranked = [f["members"][0]["asset_id"] for f in mislabelled]
    recall, precision = recall_precision(ranked, flipped)

    with transaction(session_factory(database_url)) as session:  # the same vectors, for the baseline
        rows = repository.audit_exemplar_vectors(session, tenant, report["model"], report["dims"])
    vectors = np.stack([vector for _, _, _, vector in rows])
    ids = [asset.asset_id for _, asset, _, _ in rows]
    name, baseline = cleanlab_baseline(vectors, [exemplar.label for exemplar, _, _, _ in rows])
    base_recall, base_precision = recall_precision([ids[i] for i in baseline], flipped)
    with capsys.disabled():
        print(f"\nCLI audit, {len(flipped)}/{len(ids)} flipped: recall {recall:.2f} precision {precision:.2f}; "
              f"{name} recall {base_recall:.2f} precision {base_precision:.2f}")
    assert recall >= 0.8 and precision >= 0.5

    first = mislabelled[0]
    member = first["members"][0]
    assert first["fix"] == [f"governance exemplars disable {member['asset_id']} --label {member['label']} "
                            f"--tenant {tenant}"]
    page = (tmp_path / "audit" / "audit.html").read_text()
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    argv = shlex.split(first["fix"][0])[1:]
    assert cli.main(argv) == 0
    after = audit(capsys, tmp_path, tenant)
    assert after["bank_version"] == report["bank_version"] + 1
    assert member["asset_id"] not in {m["asset_id"] for f in after["findings"] for m in f["members"]}
    assert after["exemplars"] == {"text": CLASSES * PER_CLASS - 1}

    alone = audit(capsys, tmp_path, other)  # the other tenant's bank is its own
    assert alone["exemplars"] == {"image": 2, "text": 1}
    assert [(f["modality"], f["kind"], f["label"], [m["asset_id"] for m in f["members"]])
            for f in alone["findings"]] == [
        ("image", "mislabelled", "cats", ["img-a"]), ("image", "mislabelled", "dogs", ["img-b"]),
        ("image", "contradiction", None, ["img-a", "img-b"]),
        ("image", "thin_label", "cats", ["img-a"]), ("image", "thin_label", "dogs", ["img-b"]),
        ("text", "thin_label", "label5", ["ex-000"])]
    contradiction = alone["findings"][2]
    assert contradiction["detail"] == {"labels": ["cats", "dogs"], "exact": True}
    assert contradiction["fix"] == [f"governance exemplars disable img-a --label cats --tenant {other}",
                                    f"governance exemplars disable img-b --label dogs --tenant {other}"]
    page = (tmp_path / "audit" / "audit.html").read_text()
    assert page.count("<img alt='' src='data:image/png;base64,") == 6  # each image is a member 3 times

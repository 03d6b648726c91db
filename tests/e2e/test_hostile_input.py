"""Hostile lines through the real CLI: each is refused on stderr with its line number and reason,
and every other line of the same file or stream is accepted."""
import json
import subprocess
import uuid

import pytest
from sqlalchemy import select

from governance.storage.db import session_factory
from governance.storage.tables import Event
from tests.e2e.conftest import CLI, cli

pytestmark = pytest.mark.e2e

BAD = {  # the line's content after its tenant and asset_id, and the reason it must be refused with
    "nul-text": (b'"text": "x\\u0000y"', "nul_character: NUL in text"),
    "surrogate": (b'"text": "\\ud800"', "lone_surrogate: U+D800 in text"),
    "utf8": (b'"text": "caf\xe9"', "invalid_utf8: byte 0xe9"),
    "nan": (b'"text": "x", "metadata": {"n": NaN}', "invalid_number: NaN is not a JSON number"),
    "inf": (b'"text": "x", "metadata": {"n": 1e400}', "invalid_number: 1e400 is out of range"),
    "digits": (b'"text": "x", "metadata": {"n": ' + b"7" * 5000 + b"}", "invalid_number: an integer has more"),
    "deep": (b'"text": "x", "metadata": ' + b'{"k": ' * 10_000 + b"1" + b"}" * 10_000,
             "too_deep: JSON nested more than 32 levels"),
}


def hostile_stream(tenant: str, extra: bytes = b"") -> tuple[bytes, dict[int, str], set[str]]:
    """Good and bad lines interleaved: (the bytes, reason by bad line number, good asset ids)."""
    lines, bad, good = [], {}, set()
    for name, (rest, reason) in BAD.items():
        good.add(f"good-{name}")
        lines.append(json.dumps({"tenant": tenant, "asset_id": f"good-{name}", "text": f"fine {name}"}).encode())
        lines.append(b'{"tenant": "%s", "asset_id": "bad-%s", %s%s}' % (tenant.encode(), name.encode(), rest, extra))
        bad[len(lines)] = reason
    lines.append(b'{"tenant": "%s", "asset_id": "x\\u0000y", "text": "x"}' % tenant.encode())
    bad[len(lines)] = "nul_character: NUL in asset_id"
    lines.append(b'{"tenant": "x\\u0000y", "asset_id": "a", "text": "x"}')
    bad[len(lines)] = "nul_character: NUL in tenant"
    lines.append(b'{"tenant": "../../escape", "asset_id": "a", "text": "x"}')
    bad[len(lines)] = "invalid_tenant: '../../escape'"
    return b"\n".join(lines) + b"\n", bad, good


def assert_refused_exactly(stderr: str, bad: dict[int, str]) -> None:
    assert "Traceback" not in stderr
    refused = {int(line.split(":")[0].removeprefix("line ")): line.split(": refused: ", 1)[1]
               for line in stderr.splitlines() if line.startswith("line ")}
    assert set(refused) == set(bad)
    for number, reason in bad.items():
        assert refused[number].startswith(reason), (number, refused[number])


def accepted_assets(database_url: str, tenant: str) -> set[str]:
    with session_factory(database_url)() as session:
        return set(session.scalars(select(Event.asset_id).where(Event.tenant == tenant)))


def test_publish_refuses_each_hostile_line_and_accepts_the_rest(e2e_env, database_url, tmp_path):
    tenant = f"hostile-{uuid.uuid4().hex[:8]}"
    data, bad, good = hostile_stream(tenant)
    (tmp_path / "stream.jsonl").write_bytes(data)
    published = cli(e2e_env, "publish", str(tmp_path / "stream.jsonl"))
    assert published.stdout.strip() == str(len(good))
    assert_refused_exactly(published.stderr, bad)
    assert accepted_assets(database_url, tenant) == good


def test_publish_from_stdin_refuses_the_same_lines(e2e_env, database_url):
    tenant = f"hostile-{uuid.uuid4().hex[:8]}"
    data, bad, good = hostile_stream(tenant)
    published = subprocess.run([CLI, "publish", "-"], env=e2e_env, input=data, capture_output=True, timeout=300)
    assert published.returncode == 0, published.stderr.decode(errors="replace")[-3000:]
    assert published.stdout.decode().strip() == str(len(good))
    assert_refused_exactly(published.stderr.decode(), bad)
    assert accepted_assets(database_url, tenant) == good


def test_exemplars_import_refuses_each_hostile_line_and_imports_the_rest(e2e_env, tmp_path):
    tenant = f"hostile-{uuid.uuid4().hex[:8]}"
    data, bad, good = hostile_stream(tenant, extra=b', "label": "l"')
    data = data.replace(b'"text": "fine', b'"label": "l", "text": "fine')
    (tmp_path / "ex.jsonl").write_bytes(data)
    imported = cli(e2e_env, "exemplars", "import", str(tmp_path / "ex.jsonl"))
    assert imported.stdout.strip() == str(len(good))
    assert_refused_exactly(imported.stderr, bad)
    exported = cli(e2e_env, "exemplars", "export", "--tenant", tenant).stdout
    assert {json.loads(line)["asset_id"] for line in exported.splitlines()} == good


@pytest.mark.parametrize("command", [("decisions", "export"), ("clusters", "report"), ("policy", "show"),
                                     ("review", "list"), ("usage",)])
def test_a_tenant_that_is_a_path_is_refused_on_the_command_line(e2e_env, command):
    result = cli(e2e_env, *command, "--tenant", "../../escape", check=False)
    assert result.returncode == 2
    assert "argument --tenant: invalid_tenant: '../../escape' is not 1-128 letters" in result.stderr

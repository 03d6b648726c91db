"""`governance console-link` as a real process: a one-time URL, validated arguments."""
import json
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from governance.access.console_sessions import hash_token
from governance.storage.db import engine_for
from governance.storage.console_tables import ConsoleLoginLink
from tests.e2e.conftest import cli


def test_console_link_prints_a_url_whose_token_only_the_hash_of_is_stored(e2e_env, database_url, tenant):
    url = cli(e2e_env, "console-link", "--tenant", tenant, "--who", "rita", "--base-url", "http://review.test/").stdout
    parts = urlsplit(url.strip())
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "review.test", "/console/login")
    query = parse_qs(parts.query)
    assert query["tenant"] == [tenant] and len(query["token"][0]) >= 40
    with engine_for(database_url).begin() as connection:
        [(who, token_hash)] = connection.execute(select(ConsoleLoginLink.who, ConsoleLoginLink.token_hash)
                                                 .where(ConsoleLoginLink.tenant == tenant)).all()
    assert who == "rita" and token_hash == hash_token(query["token"][0])

    described = json.loads(cli(e2e_env, "console-link", "--tenant", tenant, "--json", "--ttl", "60").stdout)
    assert described["url"].startswith("http://127.0.0.1:8000/console/login?") and described["tenant"] == tenant


def test_console_link_refuses_bad_arguments(e2e_env, tenant):
    for args in (["--ttl", "0"], ["--who", "  "], ["--who", "x" * 300]):
        result = cli(e2e_env, "console-link", "--tenant", tenant, *args, check=False)
        assert result.returncode == 2 and result.stdout == "", (args, result.stderr)

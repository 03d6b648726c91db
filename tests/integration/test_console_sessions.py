"""Getting into the review console on a real PostgreSQL: one-time links, sessions, CSRF, tenant scope."""
from sqlalchemy import select, text, update

from governance.access import console_sessions as cs
from governance.storage import repository
from governance.storage.console_tables import ConsoleLoginLink, ConsoleSession


def test_a_link_logs_in_once_and_stores_only_hashes(db, tenant):
    link = cs.create_login_link(db, tenant, "alice", ttl_s=900)
    stored = db.scalars(select(ConsoleLoginLink).where(ConsoleLoginLink.tenant == tenant)).one()
    assert stored.token_hash == cs.hash_token(link.token) and link.token not in stored.token_hash
    assert link.url("http://h:1/").startswith(f"http://h:1/console/login?tenant={tenant}&token=")

    reviewer = cs.redeem_login_link(db, tenant, link.token)
    assert reviewer is not None and reviewer.who == "alice" and reviewer.via == "link"
    assert cs.redeem_login_link(db, tenant, link.token) is None  # void after first use
    row = db.scalars(select(ConsoleSession).where(ConsoleSession.id == reviewer.id)).one()
    token = reviewer.cookie.rpartition(".")[2]
    assert row.token_hash == cs.hash_token(token) and token not in row.token_hash


def test_an_expired_or_unknown_link_is_void(db, tenant):
    link = cs.create_login_link(db, tenant, "bob", ttl_s=900)
    db.execute(update(ConsoleLoginLink).where(ConsoleLoginLink.tenant == tenant)
               .values(expires_at=text("clock_timestamp() - interval '1 second'")))
    assert cs.redeem_login_link(db, tenant, link.token) is None
    assert cs.redeem_login_link(db, tenant, "not-a-token") is None


def test_another_tenants_scope_cannot_use_a_link_or_a_session(db, tenant):
    other = tenant + "-b"
    link = cs.create_login_link(db, tenant, "carol")
    reviewer = cs.start_session(db, tenant, "carol", "api_key")
    repository.enter_tenant(db, other)
    assert cs.redeem_login_link(db, tenant, link.token) is None  # row-level security hides it
    assert cs.resume_session(db, reviewer.cookie) is None


def test_a_session_resumes_from_its_cookie_checks_csrf_and_ends(db, tenant):
    started = cs.start_session(db, tenant, "dora", "link")
    assert cs.cookie_tenant(started.cookie) == tenant
    assert cs.cookie_tenant("no-separator") is None and cs.cookie_tenant(None) is None
    resumed = cs.resume_session(db, started.cookie)
    assert resumed.id == started.id and resumed.who == "dora" and resumed.cookie is None
    assert resumed.csrf_ok(started.csrf_token)
    assert not resumed.csrf_ok(None) and not resumed.csrf_ok("") and not resumed.csrf_ok(started.csrf_token + "x")
    assert cs.resume_session(db, started.cookie + "x") is None
    cs.end_session(db, resumed)
    assert cs.resume_session(db, started.cookie) is None


def test_an_expired_session_is_gone(db, tenant):
    started = cs.start_session(db, tenant, "erin", "link", ttl_s=3600)
    db.execute(update(ConsoleSession).where(ConsoleSession.id == started.id)
               .values(expires_at=text("clock_timestamp() - interval '1 second'")))
    assert cs.resume_session(db, started.cookie) is None


def test_reviewer_media_setting_defaults_to_blurred(db, tenant):
    assert repository.reviewer_reveals_media(db, tenant, "fay") is False
    repository.set_reviewer_reveals_media(db, tenant, "fay", True)
    assert repository.reviewer_reveals_media(db, tenant, "fay") is True
    repository.set_reviewer_reveals_media(db, tenant, "fay", False)
    assert repository.reviewer_reveals_media(db, tenant, "fay") is False


def test_only_a_session_of_a_live_admin_key_is_admin(db, tenant):
    from governance.access.api_keys import create_key, revoke_key

    admin_key, _ = create_key(db, tenant, "review,admin", "boss")
    review_key, _ = create_key(db, tenant, "review", "night-shift")
    theirs, _ = create_key(db, tenant + "-b", "admin", "their-boss")
    boss = cs.start_session(db, tenant, "boss", "api_key", api_key_id=admin_key.id)
    assert cs.resume_session(db, boss.cookie).api_key_id == admin_key.id
    assert cs.is_admin(db, cs.resume_session(db, boss.cookie))
    assert not cs.is_admin(db, cs.start_session(db, tenant, "night-shift", "api_key", api_key_id=review_key.id))
    assert not cs.is_admin(db, cs.redeem_login_link(db, tenant, cs.create_login_link(db, tenant, "alice").token))
    # A session naming another tenant's admin key is no admin of either.
    assert not cs.is_admin(db, cs.start_session(db, tenant, "mallory", "api_key", api_key_id=theirs.id))
    revoke_key(db, admin_key.id)
    assert not cs.is_admin(db, boss)

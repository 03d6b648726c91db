"""docker-compose.yml stays consistent with the project: its image, its CLI and its secrets.

The CLI's subcommands are read from the installed `governance --help` (and `governance <group>
--help`), so a compose command that names a subcommand or an option the CLI does not have fails
here instead of in a crash-looping container.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<rest>[^}]*)\}$")


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict]:
    return compose()["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def healthcheck_argv(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    if kind == "CMD-SHELL":
        return shlex.split(" ".join(rest))
    assert kind == "CMD", f"healthcheck test starts with {kind!r}, expected CMD or CMD-SHELL"
    return list(rest)


# --- the installed CLI ---------------------------------------------------------------------

def governance_executable() -> str | None:
    sibling = Path(sys.executable).parent / "governance"
    if sibling.is_file():
        return str(sibling)
    return shutil.which("governance")


@functools.cache
def cli_help(*path: str) -> str:
    exe = governance_executable()
    if exe is None:
        pytest.skip("the `governance` console script is not installed (pip install -e .)")
    result = subprocess.run([exe, *path, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (
        f"`governance {' '.join(path)} --help` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def subcommands(help_text: str) -> set[str]:
    """Subcommand names from argparse (`{a,b,c}`) or click-style (`Commands:` section) help."""
    names: set[str] = set()
    # argparse lists subparsers as an indented `{a,b,c}` line; option choices (`--x {a,b}`) are not.
    for choices in re.findall(r"^[ \t]+\{([A-Za-z0-9_,-]+)\}", help_text, re.MULTILINE):
        names.update(choices.split(","))
    section = re.search(r"^Commands:\s*\n((?:[ \t]+\S.*\n?)+)", help_text, re.MULTILINE)
    if section:
        names.update(re.findall(r"^[ \t]+([A-Za-z0-9][\w-]*)", section.group(1), re.MULTILINE))
    return names


def resolve_command(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """Walk `governance <group> <sub> ...` down the CLI; return the subcommand path and its options."""
    assert argv and Path(argv[0]).name == "governance", f"command {argv} does not run `governance`"
    path: list[str] = []
    rest = argv[1:]
    while True:
        available = subcommands(cli_help(*path))
        if not available:
            return tuple(path), rest
        assert rest and not rest[0].startswith("-"), (
            f"`governance {' '.join(path)}` needs a subcommand, one of {sorted(available)}; got {argv}")
        assert rest[0] in available, (
            f"`governance {' '.join(path)}` has no subcommand {rest[0]!r} (it has {sorted(available)})")
        path.append(rest[0])
        rest = rest[1:]


def assert_runs_known_governance_command(argv: list[str]) -> None:
    path, rest = resolve_command(argv)
    assert path, f"{argv} names no subcommand"
    help_text = cli_help(*path)
    for token in rest:
        if token.startswith("--"):
            option = token.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text), (
                f"`governance {' '.join(path)}` has no option {option}:\n{help_text}")


# --- tests ---------------------------------------------------------------------------------

def test_compose_file_parses_and_has_the_stack():
    assert set(services()) >= {"postgres", "redis", "migrate", "worker", "beat"}


def test_postgres_image_is_pgvector_17():
    assert services()["postgres"]["image"] == "pgvector/pgvector:pg17"


def test_builds_refer_to_an_existing_dockerfile():
    built = {name: s for name, s in services().items() if "build" in s}
    assert {"migrate", "worker", "beat"} <= set(built)
    for name, service in built.items():
        build = service["build"]
        if isinstance(build, str):
            context, dockerfile = build, "Dockerfile"
        else:
            context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
        path = (COMPOSE_FILE.parent / context / dockerfile).resolve()
        assert path.is_file(), f"service {name} builds from {path}, which does not exist"
        assert re.search(r"^FROM\s+python:3\.12-slim\b", path.read_text(), re.MULTILINE), f"{path} is not python:3.12-slim"


def test_dockerfile_installs_editable_from_app_and_drops_root():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^WORKDIR\s+/app\s*$", text, re.MULTILINE)
    assert re.search(r"pip install\b.*\s-e\s+\.", text), "the image must keep the /app layout (pip install -e .)"
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must run as a non-root user"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "__pycache__", "reports"):
        assert any(entry in line for line in ignored), f".dockerignore does not exclude {entry}"


def test_every_command_is_an_existing_governance_subcommand():
    checked = 0
    for name, service in services().items():
        if "command" not in service or "build" not in service:
            continue
        assert_runs_known_governance_command(as_argv(service["command"]))
        checked += 1
    assert checked >= 3


def test_expected_commands():
    assert as_argv(services()["migrate"]["command"]) == ["governance", "db", "upgrade"]
    assert as_argv(services()["worker"]["command"]) == ["governance", "worker", "--concurrency", "2", "--no-beat"]
    assert as_argv(services()["beat"]["command"]) == ["governance", "beat"]
    assert as_argv(services()["web"]["command"]) == ["governance", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert services()["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "/readyz" in " ".join(healthcheck_argv(services()["web"]))


def test_healthchecks_exist_for_postgres_redis_and_worker():
    for name in ("postgres", "redis", "worker"):
        assert services()[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in healthcheck_argv(services()["postgres"])
    assert healthcheck_argv(services()["redis"])[:2] == ["redis-cli", "ping"]
    assert_runs_known_governance_command(healthcheck_argv(services()["worker"]))


def test_redis_appends_only():
    argv = as_argv(services()["redis"]["command"])
    assert "--appendonly" in argv and argv[argv.index("--appendonly") + 1] == "yes"


def test_depends_on_reference_existing_services_with_valid_conditions():
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            assert dep in all_services, f"{name} depends on unknown service {dep}"
            assert dep != name
            condition = (spec or {}).get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {dep}: unknown condition {condition}"
            if condition == "service_healthy":
                assert all_services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy, but it has no healthcheck"
            if condition == "service_completed_successfully":
                assert all_services[dep].get("restart", "no") in ("no", "on-failure") or \
                    str(all_services[dep].get("restart")).startswith("on-failure"), f"{dep} must not restart forever"
    worker = all_services["worker"]["depends_on"]
    assert worker["migrate"]["condition"] == "service_completed_successfully"
    assert worker["redis"]["condition"] == "service_healthy"
    assert all_services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_runtime_environment():
    for name in ("migrate", "worker", "beat"):
        env = environment(services()[name])
        assert re.fullmatch(r"postgresql(\+psycopg)?://governance:.+@postgres:5432/governance", env["DATABASE_URL"]), name
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
        assert "GOVERNANCE_EMBEDDER" in env, name
        assert env["GOVERNANCE_FILE_ROOTS"] == "/data", name
        mounts = [str(v).split(":")[1] if isinstance(v, str) else v.get("target") for v in services()[name].get("volumes", [])]
        assert "/data" in mounts, f"{name} does not mount a volume at /data"


def test_named_volumes_are_declared():
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_no_literal_secrets():
    for name, service in services().items():
        for key, value in environment(service).items():
            if key == "GEMINI_API_KEY":
                match = REFERENCE.match(value)
                assert match and match.group("name") == "GEMINI_API_KEY", (
                    f"{name}: GEMINI_API_KEY must be passed through as ${{GEMINI_API_KEY:-}}, got {value!r}")
                assert match.group("op") in (None, ":-", "-", ":?", "?") and (
                    match.group("op") in (":?", "?") or match.group("rest") == ""), (
                    f"{name}: GEMINI_API_KEY has a literal default")
            elif SECRET_NAME.search(key) and value:
                assert REFERENCE.match(value), f"{name}: {key} is a literal, expected a ${{...}} reference"
            if key == "DATABASE_URL":
                password = value.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]
                assert password.startswith("${") and password.endswith("}"), f"{name}: DATABASE_URL has a literal password"
    assert "GEMINI_API_KEY" in environment(services()["worker"])

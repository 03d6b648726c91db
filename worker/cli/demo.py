"""`governance demo`: the whole job on embedded defaults and the bundled sample corpus.

Migrate, apply the sample's policy, load the sample exemplars, start a real worker process, publish
the sample uploads, wait for every decision, print them, write a cluster report (its emerging-wave
alerts), raise the anomaly alert at once, say where to look next, and shut the worker down.
With `--serve` it then keeps the worker, the HTTP API and the review console up and prints a
one-time console login link, until Ctrl-C. Running it again re-uses the same embedded servers and
decisions (events are idempotent).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from worker.cli import demo_story as story
from worker.cli.common import build_context, prepare_environment, tenant_transaction
from worker.cli.exemplars import import_exemplar_file
from worker.cli.publish import publish_file

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "governance" / "sample"
POLICY = SAMPLE_DIR / "policy.toml"
TENANT = "demo"


def _materialise(source: Path, target: Path) -> list[dict]:
    """Rewrite `sample:files/X` URIs to file:// URIs under the installed sample folder."""
    rows = []
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            if str(row.get("uri", "")).startswith("sample:"):
                row["uri"] = (SAMPLE_DIR / row["uri"][len("sample:"):]).resolve().as_uri()
            rows.append(row)
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


def _apply_demo_policy() -> str:
    """The sample's own policy, through the function `governance policy apply` calls."""
    from governance.moderation.policy_store import apply_policy

    with tenant_transaction(TENANT) as session:
        applied = apply_policy(session, POLICY.read_text(encoding="utf-8"), tenant=TENANT, who="governance demo")
    print(f"policy {applied.version} {'applied' if applied.created else 're-applied'} for tenant {TENANT} "
          f"({POLICY.name}: confirmed spam and phishing blocked, suggested ones and anomalies reviewed)")
    return applied.version


DEMO_REVIEWER = "demo-reviewer"
LINK_TTL_S = 3600


def _serve(settings, report_paths: dict, host: str, port: int) -> int:
    """The API and the console on the demo's servers, with a login link, until Ctrl-C."""
    import uvicorn

    from governance.access.console_sessions import create_login_link
    from worker.cli.serve import build_api

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # as `governance serve`: the API keeps its own registry
    base = f"http://{host}:{port}"
    app = build_api(settings)
    with tenant_transaction(TENANT) as session:
        link = create_login_link(session, TENANT, DEMO_REVIEWER, LINK_TTL_S)
    print(story.where_to_look_next(report_paths, console_url=link.url(base), api_docs_url=f"{base}/docs"))
    print(f"\nserving the API and the review console on {base} (the link works once, for an hour); "
          "Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    print("stopped")
    return 0


def run_demo(concurrency: int = 2, timeout_s: float = 300, serve: tuple[str, int] | None = None) -> int:
    from governance.clustering.stored_reports import build_and_store
    from governance.delivery.alerts import AlertConfig, alert_now
    from governance.moderation.decisions import export_decisions
    from governance.storage.migrate import upgrade

    # The bundled sample is small (about a hundred uploads): smaller clusters count there.
    os.environ.setdefault("GOVERNANCE_CLUSTER_MIN_SIZE", "5")
    roots = [r for r in os.environ.get("GOVERNANCE_FILE_ROOTS", "").split(":") if r]
    os.environ["GOVERNANCE_FILE_ROOTS"] = ":".join([*roots, str(SAMPLE_DIR)])
    settings = prepare_environment(need_broker=True)
    print(f"embedded data folder: {settings.data_dir}")
    upgrade(os.environ["DATABASE_URL"])
    policy_version = _apply_demo_policy()

    work = Path(tempfile.mkdtemp(prefix="governance-demo-"))
    _materialise(SAMPLE_DIR / "exemplars.jsonl", work / "exemplars.jsonl")
    uploads = _materialise(SAMPLE_DIR / "uploads.jsonl", work / "uploads.jsonl")
    imported, problems = import_exemplar_file(settings, str(work / "exemplars.jsonl"), "demo")
    print(f"exemplars loaded: {imported}" + (f" ({len(problems)} problems)" if problems else ""))

    log_path = work / "worker.log"
    # No beat: the demo does the beat's jobs itself, at once. A beat's report taken while the sample is
    # still being decided would make the parcel wave look already known, and its alert never fire.
    worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--concurrency", str(concurrency),
                               "--no-beat"],
                              stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        accepted, _ = publish_file(settings, str(work / "uploads.jsonl"))
        print(f"uploads published: {len(accepted.new)} new, {accepted.duplicates} already known")
        wanted = {row["event_id"] for row in uploads}
        deadline = time.monotonic() + timeout_s
        while True:
            with tenant_transaction(TENANT) as session:
                found = [d for d in export_decisions(session, TENANT) if d["event_id"] in wanted]
            if len(found) >= len(wanted) or time.monotonic() > deadline or worker.poll() is not None:
                break
            time.sleep(0.5)
        expected = {row["asset_id"]: (row.get("metadata") or {}).get("expected", "-") for row in uploads}
        found.sort(key=lambda d: d["event_id"])
        print(story.decision_table(found, expected))
        if len(found) < len(wanted):
            print(f"only {len(found)} of {len(wanted)} decisions arrived; worker log: {log_path}", file=sys.stderr)
            return 1
        print(story.tally(found, policy_version))
        with tenant_transaction(TENANT) as session:
            paths = build_and_store(session, build_context(settings), TENANT, work / "report")
        print(story.cluster_lines(json.loads(paths["json"].read_text())))
        with tenant_transaction(TENANT) as session:
            alert = alert_now(session, TENANT, AlertConfig.from_settings(settings))
        print(story.anomaly_alert_lines(alert))
        if serve is not None:
            return _serve(settings, paths, *serve)
        print(story.where_to_look_next(paths))
        return 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


def cmd_demo(args) -> int:
    return run_demo(concurrency=args.concurrency, timeout_s=args.timeout,
                    serve=(args.host, args.port) if args.serve else None)


def add_commands(sub) -> None:
    demo = sub.add_parser("demo", help="the main job on embedded defaults and the bundled sample")
    demo.add_argument("--concurrency", type=int, default=2)
    demo.add_argument("--timeout", type=float, default=300)
    demo.add_argument("--serve", action="store_true",
                      help="then keep the API and the review console up and print a login link (Ctrl-C stops)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo)

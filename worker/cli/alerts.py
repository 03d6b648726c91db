"""`governance alerts run`: enqueue the anomaly alerts that are due now, for every tenant."""
from __future__ import annotations

import json

from governance.storage.db import transaction
from worker.cli.common import enter_scope, prepare_environment, sessions


def cmd_alerts_run(args) -> int:
    from governance.delivery.alerts import AlertConfig, run_alerts

    settings = prepare_environment()
    with transaction(sessions(settings)) as session:
        enter_scope(session, None)  # alerts are computed for every tenant
        sent = run_alerts(session, AlertConfig.from_settings(settings))
    for alert in sent:
        print(json.dumps(alert, ensure_ascii=False))
    return 0


def add_commands(sub) -> None:
    al = sub.add_parser("alerts", help="anomaly alerts").add_subparsers(dest="al_command", required=True)
    al.add_parser("run", help="enqueue the anomaly alerts that are due now").set_defaults(func=cmd_alerts_run)

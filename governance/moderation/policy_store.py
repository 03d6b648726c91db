"""Policy files: parse and validate a versioned TOML document, store each applied version, and
load the tenant's current one for the pipeline (cached per process, checked on every decision).

A policy file (see examples/policy.toml):

    version = "2026-06-01.1"        # required; named on every decision made under it
    tenant = "default"              # optional; `--tenant` must agree with it when both are given
    k = 10                          # neighbours in the vote
    tie_margin = 0.1                # best minus runner-up below this, with different actions: review
    anomaly_action = "review"       # what a flagged anomaly does: allow|review|block (never softens)
    retroactive_days = 7            # a new known-bad exemplar re-checks assets allowed this recently

    [default]                       # every label not listed below; listed labels inherit from it
    action = "allow"
    auto_threshold = 0.6
    review_threshold = 0.35

    [labels.spam]
    action = "block"                # allow|review|block when the label is confirmed
    auto_threshold = 0.9            # score >= this: the action is taken ("confirmed")
    review_threshold = 0.6          # score >= this: review ("suggested"); below: allowed
    near_duplicate_distance = 0.05  # cosine distance to a spam exemplar that blocks whatever the vote
    on_hash_match = "block"         # what a known spam hash does: block|review (default review)
    hash_distance = 31              # PDQ bits (of 256) that still match (default 31); MD5/SHA-256 are exact

Thresholds are in [0, 1] or `inf` (never). The stored version keeps the file's text as applied;
a version string can be applied once per tenant, and re-applying an identical earlier version
makes it current again (a rollback).
"""
from __future__ import annotations

import math
import re
import threading
import tomllib
from dataclasses import dataclass, fields, replace

from sqlalchemy.orm import Session

from governance.moderation.policy_rules import LabelPolicy, Policy
from governance.storage import repository

ACTIONS = ("allow", "review", "block")
TOP_KEYS = {"version", "tenant", "description", "k", "tie_margin", "anomaly_action", "retroactive_days",
            "default", "labels"}
LABEL_KEYS = {f.name for f in fields(LabelPolicy)}
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")
MAX_K = 200
HASH_ACTIONS = ("block", "review")
MAX_HASH_DISTANCE = 128  # half of PDQ's 256 bits: unrelated pictures are ~128 apart
HASH_DEFAULTS = LabelPolicy()


class PolicyError(ValueError):
    """The file is not a valid policy; the message lists every problem found, `errors` each one."""

    def __init__(self, errors: str | list[str]):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


class PolicyConflict(PolicyError):
    """The file is valid but contradicts what is stored (its version was applied with other content)."""


@dataclass(frozen=True)
class ParsedPolicy:
    policy: Policy
    tenant: str | None
    description: str | None


# --- parsing and validation (pure) -------------------------------------------------------------

def parse_policy(text: str) -> ParsedPolicy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from exc
    return policy_from_document(document)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _threshold(errors: list[str], where: str, value) -> float | None:
    if not _number(value) or not (0.0 <= value <= 1.0 or value == math.inf):
        errors.append(f"{where}: must be a number in [0, 1] or inf, got {value!r}")
        return None
    return float(value)


def _label_policy(errors: list[str], where: str, table, base: LabelPolicy) -> LabelPolicy:
    if not isinstance(table, dict):
        errors.append(f"{where}: must be a table")
        return base
    for key in sorted(set(table) - LABEL_KEYS):
        errors.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(LABEL_KEYS))})")
    values = {}
    if "action" in table:
        if table["action"] not in ACTIONS:
            errors.append(f"{where}.action: must be one of {', '.join(ACTIONS)}, got {table['action']!r}")
        else:
            values["action"] = table["action"]
    for key in ("auto_threshold", "review_threshold"):
        if key in table:
            value = _threshold(errors, f"{where}.{key}", table[key])
            if value is not None:
                values[key] = value
    if "near_duplicate_distance" in table:
        value = table["near_duplicate_distance"]
        if not _number(value) or not 0.0 <= value <= 2.0:
            errors.append(f"{where}.near_duplicate_distance: must be a cosine distance in [0, 2], got {value!r}")
        else:
            values["near_duplicate_distance"] = float(value)
    if "on_hash_match" in table:
        if table["on_hash_match"] not in HASH_ACTIONS:
            errors.append(f"{where}.on_hash_match: must be one of {', '.join(HASH_ACTIONS)}, "
                          f"got {table['on_hash_match']!r}")
        else:
            values["on_hash_match"] = table["on_hash_match"]
    if "hash_distance" in table:
        value = table["hash_distance"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_HASH_DISTANCE:
            errors.append(f"{where}.hash_distance: must be an integer number of PDQ bits in "
                          f"[0, {MAX_HASH_DISTANCE}], got {value!r}")
        else:
            values["hash_distance"] = value
    rule = replace(base, **values)
    if rule.review_threshold > rule.auto_threshold:
        errors.append(f"{where}: review_threshold ({rule.review_threshold}) is above auto_threshold "
                      f"({rule.auto_threshold})")
    return rule


def policy_from_document(document: dict) -> ParsedPolicy:
    """Validate a parsed TOML document; raises PolicyError naming every problem."""
    errors: list[str] = []
    for key in sorted(set(document) - TOP_KEYS):
        errors.append(f"{key}: unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    version = document.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        errors.append("version: required; 1-64 characters of letters, digits and . _ : + - "
                      f"(got {version!r})")
    elif version.startswith("builtin"):
        errors.append("version: names starting with 'builtin' are reserved")
    tenant = document.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant or len(tenant) > 128):
        errors.append("tenant: must be a non-empty string of at most 128 characters")
    description = document.get("description")
    if description is not None and not isinstance(description, str):
        errors.append("description: must be a string")
    builtin = Policy()
    k = document.get("k", builtin.k)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        errors.append(f"k: must be an integer in [1, {MAX_K}], got {k!r}")
    tie_margin = document.get("tie_margin", builtin.tie_margin)
    if not _number(tie_margin) or not 0.0 <= tie_margin <= 1.0:
        errors.append(f"tie_margin: must be a number in [0, 1], got {tie_margin!r}")
    anomaly_action = document.get("anomaly_action", builtin.anomaly_action)
    if anomaly_action not in ACTIONS:
        errors.append(f"anomaly_action: must be one of {', '.join(ACTIONS)}, got {anomaly_action!r}")
    retroactive_days = document.get("retroactive_days", builtin.retroactive_days)
    if not isinstance(retroactive_days, int) or isinstance(retroactive_days, bool) or not 0 <= retroactive_days <= 365:
        errors.append(f"retroactive_days: must be an integer in [0, 365], got {retroactive_days!r}")
    default = _label_policy(errors, "default", document.get("default", {}), builtin.default)
    labels: dict[str, LabelPolicy] = {}
    raw_labels = document.get("labels", {})
    if not isinstance(raw_labels, dict):
        errors.append("labels: must be a table of label tables ([labels.NAME])")
        raw_labels = {}
    for name, table in raw_labels.items():
        if not name or len(name) > 128 or "\x00" in name:
            errors.append(f"labels.{name!r}: a label name has 1-128 characters, none of them NUL")
            continue
        labels[name] = _label_policy(errors, f"labels.{name}", table, default)
    if errors:
        raise PolicyError(errors)
    policy = Policy(version=version, k=k, tie_margin=float(tie_margin), anomaly_action=anomaly_action,
                    retroactive_days=retroactive_days, default=default, labels=labels)
    return ParsedPolicy(policy=policy, tenant=tenant, description=description)


def _json_number(value: float | None):
    return "inf" if value == math.inf else value


def policy_document(policy: Policy) -> dict:
    """A JSON-safe, fully expanded form (every label with every field); `inf` becomes the string "inf"."""
    def rule(r: LabelPolicy) -> dict:
        # The hash fields only where they differ from their defaults, so that a version applied before
        # hash banks existed keeps the same document and can still be re-applied (a rollback).
        hashes = {name: getattr(r, name) for name in ("on_hash_match", "hash_distance")
                  if getattr(r, name) != getattr(HASH_DEFAULTS, name)}
        return {"action": r.action, "auto_threshold": _json_number(r.auto_threshold),
                "review_threshold": _json_number(r.review_threshold),
                "near_duplicate_distance": r.near_duplicate_distance, **hashes}
    return {"version": policy.version, "k": policy.k, "tie_margin": policy.tie_margin,
            "anomaly_action": policy.anomaly_action, "retroactive_days": policy.retroactive_days,
            "default": rule(policy.default), "labels": {name: rule(r) for name, r in sorted(policy.labels.items())}}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "inf" if value == math.inf else repr(value)  # exact: a threshold is compared with >=
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def policy_to_toml(policy: Policy, *, tenant: str | None = None, description: str | None = None,
                   comments: dict[str, str] | None = None, header: str | None = None) -> str:
    """A policy file that `parse_policy` reads back to the same Policy. `comments` annotate labels."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    lines += [f"version = {_toml_value(policy.version)}"]
    if tenant:
        lines.append(f"tenant = {_toml_value(tenant)}")
    if description:
        lines.append(f"description = {_toml_value(description)}")
    lines += [f"k = {policy.k}", f"tie_margin = {_toml_value(float(policy.tie_margin))}",
              f"anomaly_action = {_toml_value(policy.anomaly_action)}",
              f"retroactive_days = {policy.retroactive_days}"]

    def table(name: str, r: LabelPolicy, note: str | None, base: LabelPolicy) -> list[str]:
        out = ["", f"[{name}]"] + ([f"# {note}"] if note else [])
        out += [f"action = {_toml_value(r.action)}", f"auto_threshold = {_toml_value(float(r.auto_threshold))}",
                f"review_threshold = {_toml_value(float(r.review_threshold))}"]
        if r.near_duplicate_distance is not None:
            out.append(f"near_duplicate_distance = {_toml_value(float(r.near_duplicate_distance))}")
        out += [f"{name} = {_toml_value(getattr(r, name))}" for name in ("on_hash_match", "hash_distance")
                if getattr(r, name) != getattr(base, name)]  # a label inherits them from [default]
        return out

    lines += table("default", policy.default, None, HASH_DEFAULTS)
    for name, rule in sorted(policy.labels.items()):
        lines += table(f"labels.{_toml_key(name)}", rule, (comments or {}).get(name), policy.default)
    return "\n".join(lines) + "\n"


# --- storing and loading -------------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    version: str
    tenant: str
    created: bool  # False: this exact version was applied before and is now current again


def apply_policy(session: Session, text: str, *, tenant: str | None = None, who: str | None = None) -> Applied:
    """Validate and store a policy file as the tenant's current policy."""
    parsed = parse_policy(text)
    if tenant and parsed.tenant and parsed.tenant != tenant:
        raise PolicyError(f"tenant: the file is for tenant {parsed.tenant!r}, not {tenant!r}")
    tenant = tenant or parsed.tenant or "default"
    policy = parsed.policy
    document = policy_document(policy)
    existing = repository.policy_version_row(session, tenant, policy.version)
    if existing is not None:
        if existing.document != document:
            raise PolicyConflict(f"version: {policy.version!r} was already applied to tenant {tenant!r} with "
                              "different content; give the new content a new version")
        repository.reapply_policy_version(session, tenant, existing.id, who)
        created = False
    else:
        repository.insert_policy_version(session, tenant=tenant, version=policy.version, source=text,
                                         document=document, applied_by=who)
        created = True
    repository.insert_audit(session, tenant=tenant, kind="policy_apply", who=who,
                            after={"version": policy.version, "created": created})
    return Applied(version=policy.version, tenant=tenant, created=created)


_cache: dict[tuple[str, int], Policy] = {}
_cache_lock = threading.Lock()
CACHE_SIZE = 256


def current_policy(session: Session, tenant: str, fallback: Policy) -> Policy:
    """The tenant's current policy, or `fallback` when none was applied.

    The freshness check is one index probe for the current version's id; the file is parsed only
    when that id is new to this process.
    """
    ref = repository.current_policy_ref(session, tenant)
    if ref is None:
        return fallback
    key = (tenant, ref[0])
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    source = repository.policy_source(session, tenant, ref[0])
    policy = parse_policy(source).policy
    with _cache_lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[key] = policy
    return policy


def stored_policy(session: Session, tenant: str, version: str | None = None) -> tuple[str, str] | None:
    """(version, TOML text as applied) of the current or of a named version, or None."""
    if version is None:
        ref = repository.current_policy_ref(session, tenant)
        if ref is None:
            return None
        return ref[1], repository.policy_source(session, tenant, ref[0])
    row = repository.policy_version_row(session, tenant, version)
    return None if row is None else (row.version, row.source)


def policy_history(session: Session, tenant: str) -> list[dict]:
    """Every applied version, current first: version, when and by whom it was (last) applied."""
    return [{"version": row.version, "applied_at": row.applied_at.isoformat(), "applied_by": row.applied_by,
             "current": i == 0} for i, row in enumerate(repository.policy_versions(session, tenant))]


def policy_file(session: Session, tenant: str, version: str | None = None) -> dict | None:
    """A policy as stored: its version, TOML text and normalised document. Without `version`, the
    one that decides the tenant's uploads now, with `applied` False while the builtin policy is in
    use (no file was applied); None only for a named version the tenant never applied."""
    found = stored_policy(session, tenant, version)
    if found is None:
        if version is not None:
            return None
        builtin = Policy()
        return {"version": builtin.version, "applied": False, "document": policy_document(builtin),
                "source": policy_to_toml(builtin, header=f"tenant {tenant}: no policy applied; the builtin "
                                                         "policy is in use")}
    version, source = found
    return {"version": version, "applied": True, "document": policy_document(parse_policy(source).policy),
            "source": source}

"""Hash list files, as the field exchanges them. Pure: bytes in, entries or every error out.

Three forms, told apart by their first non-blank line:
- JSONL: `{"signal_type": "pdq", "signal": "<hex>", "label": …, "polarity": …, "source": …}` a line;
- CSV with a header naming those columns (`signal` required, the rest as in JSONL);
- plain: one hash a line, as HMA exports a signal type (needs `signal_type` from the command
  line), or `SIGNAL_TYPE HASH` a line, as `threatexchange hash` prints it; blank lines and `#` comments are skipped in every form.
A vPDQ signal is threatexchange's: a JSON list of "pdq_hex,quality,timestamp" strings (in JSONL a
string holding that list, as threatexchange's `signal_str`), accepted only where `vpdq` is installed.
Label, polarity, source and signal type fall back to the command line's. Any bad line fails the
whole file (HashFileError lists each by its number), so a list is never half imported.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from governance.ingest.content_hashes import HEX_LENGTH, VPDQ_AVAILABLE, canonical_vpdq, vpdq_key

SIGNAL_ALIASES = {"pdq": "pdq", "md5": "md5", "sha256": "sha256", "video_md5": "md5", "photo_md5": "md5",
                  "video_sha256": "sha256", "vpdq": "vpdq"}
POLARITIES = ("positive", "negative")
FIELDS = ("signal_type", "signal", "label", "polarity", "source")
EXPORT_ONLY = frozenset({"enabled", "bank_version", "created_by", "created_at", "tenant"})  # what export adds
MAX_TEXT = 128
MAX_ERRORS_SHOWN = 50


class HashFileError(ValueError):
    """The file cannot be imported; `errors` names each bad line."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        super().__init__("; ".join(errors[:MAX_ERRORS_SHOWN]) + more)


@dataclass(frozen=True)
class HashEntry:
    signal_type: str
    signal: str
    label: str
    polarity: str = "positive"
    source: str = "import"

    def as_row(self) -> dict:
        """The bank_hashes row: a vPDQ signal is stored as `features`, keyed by its SHA-256."""
        row = {name: getattr(self, name) for name in FIELDS}
        if self.signal_type == "vpdq":
            row["signal"], row["features"] = vpdq_key(self.signal), self.signal
        return row


@dataclass(frozen=True)
class Defaults:
    signal_type: str | None = None
    label: str | None = None
    polarity: str | None = None
    source: str | None = None


def parse_hash_file(data: bytes, defaults: Defaults) -> list[HashEntry]:
    """Every entry of the file, or HashFileError naming each line that cannot be imported."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HashFileError([f"not UTF-8 text (byte {exc.start})"]) from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise HashFileError(["no hashes in the file"])
    first = lines[0][1]
    if first.startswith("{"):
        raw = _jsonl(lines)
    elif "signal" in [c.strip().lower() for c in first.split(",")]:
        raw = _csv(lines)
    else:
        raw = [(n, _plain(line)) for n, line in lines]
    entries, errors = [], []
    for number, fields in raw:
        try:
            entries.append(_entry(fields, defaults))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise HashFileError(errors)
    return entries


def _jsonl(lines: list[tuple[int, str]]) -> list[tuple[int, dict | str]]:
    """(line number, the object, or a string saying why the line is not one)."""
    out: list[tuple[int, dict | str]] = []
    for number, line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append((number, f"not JSON: {exc.msg}"))
            continue
        out.append((number, value if isinstance(value, dict) else "not a JSON object"))
    return out


def _plain(line: str) -> dict:
    """`HASH`, or `SIGNAL_TYPE HASH` as `threatexchange hash` prints it."""
    words = line.split()
    if len(words) > 1 and words[0].lower() == "vpdq":
        return {"signal_type": words[0], "signal": line[len(words[0]):].strip()}
    if len(words) == 2 and words[0].lower() in SIGNAL_ALIASES:
        return {"signal_type": words[0], "signal": words[1]}
    return {"signal": line}


def _csv(lines: list[tuple[int, str]]) -> list[tuple[int, dict | str]]:
    header = [c.strip().lower() for c in next(csv.reader([lines[0][1]]))]
    unknown = sorted(set(header) - set(FIELDS))
    if unknown:
        return [(lines[0][0], f"unknown CSV column(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")]
    out = []
    for number, line in lines[1:]:
        cells = next(csv.reader(io.StringIO(line)))
        if len(cells) != len(header):
            out.append((number, f"{len(cells)} CSV fields, the header names {len(header)}"))
            continue
        out.append((number, {k: v.strip() for k, v in zip(header, cells) if v.strip()}))
    return out


def _entry(fields: dict | str, defaults: Defaults) -> HashEntry:
    if isinstance(fields, str):
        raise ValueError(fields)
    unknown = sorted(set(fields) - set(FIELDS) - EXPORT_ONLY)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    fields = {name: value for name, value in fields.items() if name in FIELDS}
    for name, value in fields.items():
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
    given = fields.get("signal_type") or defaults.signal_type
    if not given:
        raise ValueError("no signal_type: give it on the line or with --signal-type")
    signal_type = SIGNAL_ALIASES.get(given.lower())
    if signal_type is None:
        raise ValueError(f"unknown signal_type {given!r} (known: {', '.join(sorted(SIGNAL_ALIASES))})")
    if signal_type == "vpdq":
        if not VPDQ_AVAILABLE:
            raise ValueError("signal_type vpdq is not supported: the vpdq package needs the FFmpeg development "
                             "libraries to build, which this install does not have")
        signal = vpdq_signal(fields.get("signal") or "")
    else:
        signal = (fields.get("signal") or "").lower()
        if not re.fullmatch(f"[0-9a-f]{{{HEX_LENGTH[signal_type]}}}", signal):
            raise ValueError(f"{signal_type} signal must be {HEX_LENGTH[signal_type]} hex digits, "
                             f"got {signal[:80]!r}")
    label = fields.get("label") or defaults.label
    if not label or len(label) > MAX_TEXT:
        raise ValueError("no label: give it on the line or with --label (1-128 characters)")
    polarity = fields.get("polarity") or defaults.polarity or "positive"
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be positive or negative, got {polarity!r}")
    source = fields.get("source") or defaults.source or "import"
    if len(source) > MAX_TEXT:
        raise ValueError("source has more than 128 characters")
    return HashEntry(signal_type, signal, label, polarity, source)


VPDQ_FEATURE = re.compile(r"([0-9a-f]{64}),(\d{1,3}),(\d+(?:\.\d*)?)")
MAX_VPDQ_FEATURES = 100_000


def vpdq_signal(given: str) -> str:
    """A vPDQ signal in its canonical JSON form (lowercase hashes), or ValueError saying why not;
    the checks are those of threatexchange's VpdqCompactFeature (hash, quality 0-100, timestamp >= 0)."""
    try:
        features = json.loads(given)
    except json.JSONDecodeError:
        raise ValueError("vpdq signal must be a JSON list of \"pdq_hex,quality,timestamp\" strings") from None
    if not isinstance(features, list) or not features or len(features) > MAX_VPDQ_FEATURES:
        raise ValueError(f"vpdq signal must be a list of 1 to {MAX_VPDQ_FEATURES} features")
    out = []
    for n, feature in enumerate(features):
        found = VPDQ_FEATURE.fullmatch(feature.lower()) if isinstance(feature, str) else None
        if found is None or int(found[2]) > 100:
            raise ValueError(f"vpdq feature {n} is not \"64 hex digits,quality 0-100,timestamp\": "
                             f"{str(feature)[:80]!r}")
        out.append(feature.lower())
    return canonical_vpdq(out)

"""Hash list files: JSONL, CSV and plain, defaults from the command line, and bad lines by number."""
import json

import pytest

from governance.ingest.content_hashes import VPDQ_AVAILABLE, vpdq_key
from governance.moderation.hash_files import Defaults, HashEntry, HashFileError, parse_hash_file

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "cab08b36195edb1a1231d2d09fa450e0"
SHA = "ab" * 32


def test_jsonl_rows_with_their_own_fields_and_command_line_defaults():
    data = (f'{{"signal_type": "pdq", "signal": "{PDQ.upper()}", "label": "csam", "source": "ncmec"}}\n'
            f'\n# a comment\n{{"signal_type": "video_md5", "signal": "{MD5}", "polarity": "negative"}}\n').encode()
    assert parse_hash_file(data, Defaults(label="spam", source="cli")) == [
        HashEntry("pdq", PDQ, "csam", "positive", "ncmec"), HashEntry("md5", MD5, "spam", "negative", "cli")]


def test_csv_with_a_header_in_any_order():
    data = f"label,signal,signal_type\nterror,{SHA},sha256\nterror,{MD5},md5\n".encode()
    assert parse_hash_file(data, Defaults(source="gifct")) == [
        HashEntry("sha256", SHA, "terror", "positive", "gifct"), HashEntry("md5", MD5, "terror", "positive", "gifct")]


def test_plain_lists_need_a_signal_type_and_take_threatexchange_hash_output():
    assert parse_hash_file(f"{PDQ}\n{PDQ[::-1]}\n".encode(), Defaults(signal_type="pdq", label="x")) == [
        HashEntry("pdq", PDQ, "x"), HashEntry("pdq", PDQ[::-1], "x")]
    assert parse_hash_file(f"pdq {PDQ}\n".encode(), Defaults(label="x")) == [HashEntry("pdq", PDQ, "x")]
    with pytest.raises(HashFileError, match="line 1: no signal_type"):
        parse_hash_file(f"{PDQ}\n".encode(), Defaults(label="x"))


@pytest.mark.parametrize("data, errors", [
    (f'{{"signal_type": "pdq", "signal": "{PDQ}", "label": "a"}}\nnot json\n["x"]\n"abc"\n',
     ["line 2: not JSON", "line 3: not a JSON object", "line 4: not a JSON object"]),
    (f'{{"signal_type": "pdq", "signal": "{PDQ[:-1]}", "label": "a"}}\n', ["line 1: pdq signal must be 64 hex digits"]),
    (f'{{"signal_type": "md5", "signal": "{MD5}"}}\n', ["line 1: no label"]),
    (f'{{"signal_type": "tmk", "signal": "{MD5}", "label": "a"}}\n', ["line 1: unknown signal_type 'tmk'"]),
    (f'{{"signal_type": "vpdq", "signal": "{MD5}", "label": "a"}}\n',
     ["line 1: vpdq signal must be a JSON list" if VPDQ_AVAILABLE else "line 1: signal_type vpdq is not supported"]),
    (f'{{"signal_type": "md5", "signal": "{MD5}", "label": "a", "polarity": "maybe"}}\n',
     ["line 1: polarity must be positive or negative"]),
    (f'{{"signal_type": "md5", "signal": "{MD5}", "label": "a", "colour": "red"}}\n', ["line 1: unknown field(s) colour"]),
    (f'{{"signal_type": "md5", "signal": 5, "label": "a"}}\n', ["line 1: signal must be a string"]),
    (f"signal,label,weight\n{MD5},a,1\n", ["line 1: unknown CSV column(s) weight"]),
    (f"signal,label\n{MD5},a,extra\n", ["line 2: 3 CSV fields, the header names 2"]),
    ("\n# only a comment\n", ["no hashes in the file"]),
    (b"\xff\xfe", ["not UTF-8 text"]),
])
def test_bad_lines_fail_the_whole_file_naming_each_line(data, errors):
    with pytest.raises(HashFileError) as caught:
        parse_hash_file(data if isinstance(data, bytes) else data.encode(), Defaults(signal_type="md5"))
    assert len(caught.value.errors) == len(errors)
    for got, want in zip(caught.value.errors, errors):
        assert got.startswith(want), (got, want)


VPDQ = json.dumps([f"{PDQ.upper()},100,0.0", f"{PDQ[::-1]},87,1.0"])


@pytest.mark.skipif(not VPDQ_AVAILABLE, reason="the vpdq package is not installed (needs the FFmpeg dev libraries)")
def test_vpdq_signals_in_every_form_are_stored_by_their_key():
    canonical = json.dumps([f"{PDQ},100,0.0", f"{PDQ[::-1]},87,1.0"])
    rows = [json.dumps({"signal_type": "vpdq", "signal": VPDQ, "label": "v"}) + "\n",
            f"vpdq {VPDQ}\n",
            "signal_type,signal,label\n" + 'vpdq,"' + VPDQ.replace('"', '""') + '",v\n']
    for data in rows:
        [entry] = parse_hash_file(data.encode(), Defaults(label="v"))
        assert entry == HashEntry("vpdq", canonical, "v")
        assert entry.as_row()["signal"] == vpdq_key(canonical) and entry.as_row()["features"] == canonical
    bad = json.dumps([f"{PDQ},101,0.0"])
    with pytest.raises(HashFileError, match="line 1: vpdq feature 0 is not"):
        parse_hash_file(f"vpdq {bad}\n".encode(), Defaults(label="v"))
    with pytest.raises(HashFileError, match="line 1: vpdq signal must be a list"):
        parse_hash_file(b"vpdq []\n", Defaults(label="v"))

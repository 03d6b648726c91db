"""Audio and video through a real worker with the offline embedder: decisions, not rejects."""
import uuid

import pytest

from tests import media_samples as ms
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.e2e.test_gemini_pipeline import gemini_env  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.e2e


def test_audio_and_video_uploads_are_decided_and_corrupt_ones_rejected_with_reasons(e2e_env, worker, tmp_path):
    tenant = f"media-{uuid.uuid4().hex[:8]}"
    roots = e2e_env["FILE_ROOT"]
    files = {
        "tone-a.flac": ms.flac_bytes(3, pitch=300), "tone-b.wav": ms.wav_bytes(3, pitch=320),
        "clip-a.mp4": ms.mp4_bytes(3, colour=(255, 0, 0)), "clip-b.mp4": ms.mp4_bytes(4, colour=(250, 10, 0)),
        "upload.ogg": ms.ogg_bytes(2), "upload.mp3": ms.mp3_bytes(2), "upload.webm": ms.webm_bytes(2),
        "upload.mov": ms.mov_bytes(2),
        "broken.flac": b"fLaC" + bytes(range(256)) * 8,
        "broken.mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + b"junk" * 200,
    }
    for name, data in files.items():
        with open(f"{roots}/{tenant}-{name}", "wb") as handle:
            handle.write(data)

    def uri(name):
        return f"file://{roots}/{tenant}-{name}"

    exemplars = [{"asset_id": "ex-tone-a", "tenant": tenant, "uri": uri("tone-a.flac"), "label": "sound"},
                 {"asset_id": "ex-tone-b", "tenant": tenant, "uri": uri("tone-b.wav"), "label": "sound"},
                 {"asset_id": "ex-clip-a", "tenant": tenant, "uri": uri("clip-a.mp4"), "label": "footage"},
                 {"asset_id": "ex-clip-b", "tenant": tenant, "uri": uri("clip-b.mp4"), "label": "footage"}]
    imported = cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", exemplars)))
    assert imported.stdout.strip() == "4", imported.stderr

    uploads = {"ogg": "upload.ogg", "mp3": "upload.mp3", "webm": "upload.webm", "mov": "upload.mov",
               "broken-audio": "broken.flac", "broken-video": "broken.mp4"}
    events = [{"asset_id": asset_id, "tenant": tenant, "uri": uri(name)} for asset_id, name in uploads.items()]
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "uploads.jsonl", events)))
    w = worker()
    found = {d["asset_id"]: d for d in wait_for_decisions(e2e_env, tenant, len(events))}

    assert set(found) == set(uploads)
    for asset_id, label in [("ogg", "sound"), ("mp3", "sound"), ("webm", "footage"), ("mov", "footage")]:
        decision = found[asset_id]
        assert decision["action"] != "reject", decision["reason"]
        # Audio lands next to audio and video next to video: the offline features carry the modality.
        assert decision["neighbors"][0]["label"] == label, decision
    assert found["broken-audio"]["action"] == "reject"
    assert found["broken-audio"]["reason"].startswith("corrupt_audio:")
    assert found["broken-video"]["action"] == "reject"
    assert found["broken-video"]["reason"].startswith("corrupt_video:")
    assert w.alive()


def test_gemini_worker_sends_windows_and_converted_media_through_the_sdk(gemini_env, worker, tmp_path):
    env, fake = gemini_env
    tenant = f"gmedia-{uuid.uuid4().hex[:8]}"
    roots = env["FILE_ROOT"]
    files = {"long.flac": ms.flac_bytes(400), "paper.pdf": ms.pdf_bytes(13), "clip.webm": ms.webm_bytes(3)}
    for name, data in files.items():
        with open(f"{roots}/{tenant}-{name}", "wb") as handle:
            handle.write(data)
    events = [{"asset_id": name, "tenant": tenant, "uri": f"file://{roots}/{tenant}-{name}"} for name in files]
    cli(env, "publish", str(write_jsonl(tmp_path / "uploads.jsonl", events)))
    w = worker(env)
    found = {d["asset_id"]: d for d in wait_for_decisions(env, tenant, len(events), timeout_s=180)}

    assert set(found) == set(files)
    for decision in found.values():
        assert decision["action"] != "reject", decision["reason"]
    sent = [details[0] for call in fake.embed_calls for details in call.part_details]
    mimes = [d.get("mime_type") for d in sent]
    # Media carry no task prefix, so one request per window serves both tasks.
    assert mimes.count("audio/wav") == 3 and all(d["seconds"] <= 180 for d in sent if "seconds" in d)
    assert sorted(d["pages"] for d in sent if "pages" in d) == [4, 4, 5]
    assert mimes.count("video/mp4") == 1 and "video/webm" not in mimes
    assert w.alive()

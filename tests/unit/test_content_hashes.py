"""PDQ, MD5 and SHA-256 of uploads, and PDQ matching of real transformed copies, without a database."""
import base64
import hashlib
import json

import pytest
from PIL import Image
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from governance.ingest.assets import load
from governance.ingest.content_hashes import (PDQ_QUALITY_THRESHOLD, VPDQ_AVAILABLE, ContentHash, content_hashes,
                                              pdq_hash, vpdq_hash)
from governance.ingest.events import UploadEvent
from governance.moderation.hash_matching import HashBankIndex, pdq_distance
from governance.moderation.policy_rules import LabelPolicy, Policy
from tests.synthetic_photos import TRANSFORMS, encode, photo, photo_video

BANKED = range(15)
UNRELATED = 1000


@pytest.fixture(scope="module")
def banked_photos():
    """The banked pictures with their hashes: those of PDQ quality 70 or more, as a copy of a picture
    near the threshold of 50 (one of these is at 51) can fall below it and is then not matched."""
    photos = {i: photo(i) for i in BANKED}
    hashes = {i: pdq_hash(encode(im)) for i, im in photos.items()}
    return {i: (photos[i], hashes[i][0]) for i in photos if hashes[i][1] >= 70}


@pytest.fixture(scope="module")
def bank(banked_photos):
    entries = [("pdq", signal, "known_bad", "positive", "test-list") for _, signal in banked_photos.values()]
    return HashBankIndex.build(7, entries)


def image_upload(data: bytes, settings):
    return load(UploadEvent.parse({"asset_id": "a", "tenant": "t", "data_b64": base64.b64encode(data).decode()}),
                settings)


def test_pdq_equals_threatexchange_own_hasher_for_colour_and_greyscale(banked_photos):
    im, _ = banked_photos[0]
    for data in (encode(im, "JPEG", quality=90), encode(im.convert("L"))):
        assert pdq_hash(data) == pdq_from_bytes(data)


def test_palette_and_alpha_pictures_are_hashed_as_their_rgb_pixels(banked_photos):
    im, signal = banked_photos[0]
    rgba = im.convert("RGBA")
    assert pdq_hash(encode(rgba))[0] == pdq_hash(encode(im))[0] == signal
    palette = pdq_hash(encode(im.convert("P", palette=Image.Palette.ADAPTIVE)))
    assert pdq_distance(palette[0], signal) <= 16 and palette[1] >= PDQ_QUALITY_THRESHOLD


def test_every_upload_gets_sha256_and_md5_of_its_bytes_and_images_a_pdq_hash(settings, banked_photos):
    data = encode(banked_photos[0][0], "GIF")  # converted to PNG for embedding; hashed as uploaded
    hashes = {h.signal_type: h for h in content_hashes(image_upload(data, settings))}
    assert hashes["sha256"] == ContentHash("sha256", hashlib.sha256(data).hexdigest())
    assert hashes["md5"].signal == hashlib.md5(data).hexdigest() == VideoMD5Signal.hash_from_bytes(data)
    assert len(hashes["pdq"].signal) == 64 and 0 <= hashes["pdq"].quality <= 100
    text = load(UploadEvent.parse({"asset_id": "b", "tenant": "t", "text": "hello"}), settings)
    assert [(h.signal_type, h.signal) for h in content_hashes(text)] == [
        ("sha256", hashlib.sha256(b"hello").hexdigest()), ("md5", hashlib.md5(b"hello").hexdigest())]


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_transformed_copies_of_banked_photos_still_match(transform, banked_photos, bank, settings):
    assert len(banked_photos) >= 10
    for i, (im, signal) in banked_photos.items():
        hashes = content_hashes(image_upload(TRANSFORMS[transform](im), settings))
        matches = bank.matches(hashes, Policy())
        assert matches, (transform, i)
        best = matches[0]
        assert (best.signal_type, best.label, best.source, best.bank_version) == ("pdq", "known_bad", "test-list", 7)
        assert best.distance == pdq_distance(next(h.signal for h in hashes if h.signal_type == "pdq"), signal) <= 31


def test_a_thousand_unrelated_pictures_match_nothing(bank):
    nearest = []
    for seed in range(10_000, 10_000 + UNRELATED):
        signal, quality = pdq_hash(encode(photo(seed, (128, 96)), "BMP"))
        hashes = [ContentHash("pdq", signal, quality)]
        assert bank.matches(hashes, Policy()) == [], seed
        nearest.append(min(pdq_distance(signal, s) for s in {bank_signal for bank_signal in _bank_signals(bank)}))
    assert min(nearest) > 31


def _bank_signals(bank: HashBankIndex) -> list[str]:
    from governance.moderation.hash_index import unpack_hex
    return unpack_hex(bank.pdq_index.packed)


def test_low_quality_hashes_are_not_matched_and_each_label_has_its_own_distance(bank, banked_photos):
    _, signal = next(iter(banked_photos.values()))
    assert bank.matches([ContentHash("pdq", signal, PDQ_QUALITY_THRESHOLD - 1)], Policy()) == []
    assert [m.distance for m in bank.matches([ContentHash("pdq", signal, 100)], Policy())] == [0]
    flipped = f"{int(signal, 16) ^ ((1 << 20) - 1):064x}"  # 20 bits away
    assert bank.matches([ContentHash("pdq", flipped, 100)],
                        Policy(labels={"known_bad": LabelPolicy(hash_distance=19)})) == []
    assert [m.distance for m in bank.matches([ContentHash("pdq", flipped, 100)], Policy())] == [20]


def test_exact_hashes_match_only_exactly():
    bank = HashBankIndex.build(3, [("md5", "a" * 32, "spam", "positive", "list"),
                                   ("sha256", "b" * 64, "spam", "negative", "ok-list")])
    assert [m.as_dict() for m in bank.matches([ContentHash("md5", "a" * 32), ContentHash("sha256", "b" * 64)],
                                              Policy())] == [
        {"signal_type": "md5", "distance": 0, "label": "spam", "source": "list", "bank_version": 3},
        {"signal_type": "sha256", "distance": 0, "label": "spam", "source": "ok-list", "bank_version": 3,
         "polarity": "negative"}]
    assert bank.matches([ContentHash("md5", "c" * 32)], Policy()) == []


@pytest.mark.skipif(not VPDQ_AVAILABLE, reason="the vpdq package is not installed (needs the FFmpeg dev libraries)")
def test_a_video_gets_threatexchange_own_vpdq_and_an_unreadable_one_none(settings, tmp_path):
    from threatexchange.extensions.vpdq.vpdq import VPDQSignal

    video = photo_video([3, 4], seconds_per_scene=1)
    loaded = load(UploadEvent.parse({"asset_id": "v", "tenant": "t", "data_b64": base64.b64encode(video).decode()}),
                  settings)
    [vpdq] = [h for h in content_hashes(loaded) if h.signal_type == "vpdq"]
    (tmp_path / "v.mp4").write_bytes(video)
    assert vpdq.signal == VPDQSignal.hash_from_file(tmp_path / "v.mp4")
    assert len(json.loads(vpdq.signal)) == 2  # one frame a second
    assert vpdq_hash(video[: len(video) // 3]) is None

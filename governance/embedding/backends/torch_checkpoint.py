"""Read a PyTorch state dict into numpy arrays without torch and without running the file's code.

`torch.save`'s legacy format (the one the EfficientNet-Lite0 weights come in) is a run of
pickles: a magic number, the protocol version, a system-info dict, the state dict itself, the
list of storage keys; then each storage's raw bytes (an int64 element count, then the
elements, little-endian), in that list's order.

A pickle may name any importable callable and call it, so every pickle here is read by an
unpickler that resolves exactly the names a state dict needs (collections.OrderedDict,
torch._utils._rebuild_tensor_v2, the typed storage classes), each to a numpy stand-in of our
own; any other name is refused before anything is called. Tensors are views into storages
that arrive after the state dict, so they are materialised once all storages are read.
"""
from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's typed storages, by the name the pickle uses; all stored little-endian.
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """The file is not a state dict this reader accepts: refused, never partially trusted."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _PendingTensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor whose storage is not a storage")
    return _PendingTensor(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


_ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2}
_ALLOWED.update({("torch", name): _StorageType(np.dtype(code)) for name, code in _STORAGE_DTYPES.items()})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream: BinaryIO, storages: dict[str, _Storage]):
        super().__init__(stream)
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(f"refused global {module}.{name}: only tensors and OrderedDict may be named") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise CheckpointError(f"malformed storage reference {pid!r:.80}")
        if view is not None:
            raise CheckpointError("storage views are not supported")
        storage = self._storages.setdefault(key, _Storage(storage_type.dtype, numel))
        if (storage.dtype, storage.numel) != (storage_type.dtype, numel):
            raise CheckpointError(f"storage {key} declared twice with different types or sizes")
        return storage


def _load_pickle(stream: BinaryIO, storages: dict[str, _Storage]):
    try:
        return _RestrictedUnpickler(stream, storages).load()
    except CheckpointError:
        raise
    except Exception as exc:  # truncated or malformed pickles raise many types
        raise CheckpointError(f"unreadable pickle: {exc.__class__.__name__}: {exc}") from None


def read_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """Name -> float32/int array for every tensor of a legacy-format `torch.save` state dict."""
    stream = io.BytesIO(data)
    storages: dict[str, _Storage] = {}
    if _load_pickle(stream, storages) != LEGACY_MAGIC or _load_pickle(stream, storages) != LEGACY_PROTOCOL:
        raise CheckpointError("not a legacy torch.save file (magic number or protocol differs)")
    info = _load_pickle(stream, storages)
    if not (isinstance(info, dict) and info.get("little_endian") is True):
        raise CheckpointError("only little-endian checkpoints are supported")
    state = _load_pickle(stream, storages)
    keys = _load_pickle(stream, storages)
    if not isinstance(state, dict) or not isinstance(keys, list) or set(keys) != set(storages):
        raise CheckpointError("the pickled object is not a state dict with one entry per storage")
    for key in keys:
        storage = storages[key]
        count = np.frombuffer(stream.read(8), dtype="<i8")
        if count.size != 1 or int(count[0]) != storage.numel:
            raise CheckpointError(f"storage {key}: element count differs from the one declared")
        raw = stream.read(storage.numel * storage.dtype.itemsize)
        if len(raw) != storage.numel * storage.dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if stream.read(1):
        raise CheckpointError("bytes after the last storage")
    return {_name(name): _materialise(tensor, name) for name, tensor in state.items()}


def _name(name) -> str:
    if not isinstance(name, str):
        raise CheckpointError(f"a state dict key that is not a string: {name!r:.80}")
    return name


def _materialise(tensor, name: str) -> np.ndarray:
    if not isinstance(tensor, _PendingTensor):
        raise CheckpointError(f"{name} is not a tensor")
    if len(tensor.shape) != len(tensor.stride) or min(tensor.shape + tensor.stride, default=0) < 0:
        raise CheckpointError(f"{name}: malformed shape or stride")
    values = tensor.storage.data
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride)) if all(tensor.shape) else -1
    if tensor.offset < 0 or last >= values.size:
        raise CheckpointError(f"{name} reaches outside its storage")
    item = values.itemsize
    view = np.lib.stride_tricks.as_strided(values[tensor.offset:], shape=tensor.shape,
                                           strides=tuple(s * item for s in tensor.stride), writeable=False)
    return np.array(view, dtype=values.dtype.newbyteorder("="), order="C")

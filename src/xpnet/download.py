"""MNIST and Fashion-MNIST, downloaded on first use into a local cache and checked against
pinned SHA-256 sums, so that `load_dataset("mnist")` needs the network once and never again.

The cache is $XPNET_DATA_DIR, else $XDG_CACHE_HOME/xpnet, else ~/.cache/xpnet, with one folder
per dataset (mnist/, fashion-mnist/) holding its four gzipped IDX files under their usual names.
A file is fetched from each mirror in turn until one serves it whole with the pinned checksum;
only then is it written, atomically (`write_atomic`), so a failed, corrupt or interrupted
download leaves no file, and processes downloading at once (`mpiexec -n 2 xpnet train --data
mnist`) each rename a whole, identical file into place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .files import write_atomic
from .labels import DataError

__all__ = ["DATASETS", "Remote", "data_dir", "fetch_idx"]

TIMEOUT = 30.0  # seconds a connection or a read may stall before the mirror counts as failed
CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Remote:
    """Where a dataset's files come from: base URLs tried in order, and each file's SHA-256,
    which fixes the data whichever mirror serves it."""

    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]  # file name -> hex digest of the .gz file as served


# The datasets that download. A plain-HTTP mirror is as good as any: the pinned SHA-256, not
# the transport, vouches for the bytes.
DATASETS: dict[str, Remote] = {
    # SHA-256 (of 9,912,422 / 28,881 / 1,648,877 / 4,542 bytes) as in TensorFlow Datasets,
    # tensorflow_datasets/url_checksums/mnist.txt; other projects pin the same four
    "mnist": Remote(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's first
            "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow Datasets'
            "http://yann.lecun.com/exdb/mnist/",  # the original home
        ),
        sha256={
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
    ),
    # SHA-256 (of 26,421,880 / 29,515 / 4,422,102 / 5,148 bytes) as in TensorFlow Datasets,
    # tensorflow_datasets/url_checksums/fashion_mnist.txt
    "fashion-mnist": Remote(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # Zalando's own
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras'
        ),
        sha256={
            "train-images-idx3-ubyte.gz": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
            ),
            "train-labels-idx1-ubyte.gz": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
            ),
        },
    ),
}


def data_dir() -> Path:
    """The cache's root: $XPNET_DATA_DIR, else $XDG_CACHE_HOME/xpnet, else ~/.cache/xpnet."""
    if os.environ.get("XPNET_DATA_DIR"):
        return Path(os.environ["XPNET_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "xpnet"


def fetch_idx(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    quiet: bool = False,
) -> Path:
    """The folder <cache_dir>/<name> holding the dataset's gzipped IDX files, after
    downloading those missing or corrupt (another SHA-256 than the pinned one). Cached files
    are checked on every call and need no network (hashing MNIST's 11.6 MB takes 10 ms, a
    hundredth of reading it). `cache_dir` defaults to `data_dir()`; `mirrors` and
    `checksums` replace the registry's (a private mirror, tests); `quiet` drops the progress
    bar and the lines on stderr. Raises DataError when a file cannot be had from any
    mirror."""
    if name not in DATASETS:
        raise DataError(f"no dataset {name!r} to download; there are: {', '.join(DATASETS)}")
    remote = DATASETS[name]
    folder = (data_dir() if cache_dir is None else Path(cache_dir)) / name
    mirrors = remote.mirrors if mirrors is None else mirrors
    checksums = remote.sha256 if checksums is None else checksums
    fix = (
        f"check the internet connection (and proxy), or put the files {', '.join(checksums)} "
        f"in {folder} yourself, or set XPNET_DATA_DIR to a directory whose {name}/ folder "
        "holds them"
    )
    say = _silent if quiet else _say
    for file, digest in checksums.items():
        target = folder / file
        if target.is_file():
            if _sha256(target) == digest:
                continue
            say(f"{target} is corrupt (not the pinned SHA-256); downloading it again")
        data = _download(name, file, digest, mirrors, fix, say)  # first: a failure makes no folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(
                f"cannot make the data cache {folder} ({err.strerror}); set XPNET_DATA_DIR to "
                "a directory you can write"
            ) from err
        write_atomic(target, data)
    return folder


def _download(
    name: str,
    file: str,
    digest: str,
    mirrors: Sequence[str],
    fix: str,
    say: Callable[[str], None],
) -> bytes:
    """The bytes of `file` from the first mirror that serves them with the SHA-256 `digest`
    (held in memory until checked: the largest file is 26 MB), told by `say`; when none
    does, DataError naming each mirror's failure and `fix`, the ways out."""
    failures = []
    for base in mirrors:
        try:
            data = _get(base.rstrip("/") + "/" + file, f"{name}/{file}", say is _say)
        except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts
            failures.append(f"{base}: {_reason(err)}")
            continue
        got = hashlib.sha256(data).hexdigest()
        if got == digest:
            after = f" (after {'; '.join(failures)})" if failures else ""
            say(f"downloaded {name}/{file} ({len(data):,} bytes) from {base}{after}")
            return data
        failures.append(f"{base}: wrong SHA-256 {got[:12]}..., expected {digest[:12]}...")
    raise DataError(f"cannot download {name}/{file}: {'; '.join(failures) or 'no mirrors'}; {fix}")


def _get(url: str, label: str, bar: bool) -> bytes:
    """The body of `url`, read in chunks under a progress bar when `bar` and stderr is a
    terminal; IncompleteRead when the connection closes before the announced length."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        chunks = []
        with tqdm(
            total=total,
            desc=label,
            unit="B",
            unit_scale=True,
            leave=False,
            disable=not (bar and sys.stderr.isatty()),
        ) as progress:
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                progress.update(len(chunk))
    data = b"".join(chunks)
    if total is not None and len(data) < total:
        raise http.client.IncompleteRead(data, total - len(data))
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _reason(err: BaseException) -> str:
    """A mirror's failure in a few words: "HTTP 404 Not Found", "Connection refused"."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        if not isinstance(err.reason, BaseException):
            return str(err.reason)
        err = err.reason
    if isinstance(err, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(err, http.client.IncompleteRead):
        return f"the connection closed early, after {len(err.partial):,} bytes"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _say(message: str) -> None:
    print(f"xpnet: {message}", file=sys.stderr, flush=True)


def _silent(message: str) -> None:
    """`_say` under `quiet`."""

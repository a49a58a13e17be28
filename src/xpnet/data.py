"""Dataset loaders: the packaged digits, XOR, and user data from .npz, .csv or MNIST IDX files.

Everything here runs on the host with NumPy: a `Dataset` holds numpy arrays, and the training
code moves them to the model's backend at one explicit point (`xpnet.asarray`). Labels may be
integers or text; they are coded 0..k-1 by the training data's classes (`xpnet.labels`). Every
user mistake raises `DataError` with a one-line message naming the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.resources
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .csvfile import check_class_labels, read_csv
from .labels import SHOW, DataError, encode_labels

__all__ = [
    "DataError",
    "Dataset",
    "load_dataset",
    "load_digits",
    "load_inputs",
    "load_targets",
    "load_xor",
    "one_hot",
    "train_test_split",
]

PACKAGED = ("digits", "xor")  # shipped with xpnet
DOWNLOADED = ("mnist", "fashion-mnist")  # fetched on first use (download.py)
BUILTIN = PACKAGED + DOWNLOADED
IDX_UBYTE = 0x08  # the IDX data type code of unsigned bytes, the only one MNIST uses


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Host arrays ready for training: X (n, n_features) float64, y (n,) int64 class codes
    0..n_classes-1, `classes` the label each code stands for (see xpnet.labels: the training
    data's distinct labels, sorted; None: the codes are the labels); `stored_shape` is X's
    shape in the file when it had more dimensions (images), which are flattened to one row of
    features per sample.

    eq=False because element-wise array comparison has no single truth value.
    """

    X: np.ndarray
    y: np.ndarray
    name: str
    n_classes: int
    stored_shape: tuple[int, ...] | None = None  # X's shape as stored, when it was flattened
    # where the file's own test part starts (MNIST's t10k files after its train files)
    own_test: int | None = None
    classes: np.ndarray | None = None  # the label of each code: int64 or str
    # regression (load_targets): y holds float64 targets, one column per output (n_classes
    # outputs), and the splits are random rather than stratified
    regression: bool = False

    @property
    def labels(self) -> np.ndarray:
        """The labels as the file has them (y decoded)."""
        return self.decode(self.y)

    def decode(self, codes: ArrayLike) -> np.ndarray:
        """The labels that class codes (a net's predictions) stand for."""
        codes = np.asarray(codes)
        return codes if self.classes is None else self.classes[codes]

    @property
    def n_features(self) -> int:
        """Number of input features, the width of the network's first layer."""
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n={len(self)}, n_features={self.n_features}, "
            f"n_classes={self.n_classes})"
        )


def load_dataset(
    spec: str | os.PathLike, classes: ArrayLike | None = None, *, quiet: bool = False
) -> Dataset:
    """Load a built-in dataset by name, or a .npz file, .csv file or MNIST IDX directory.

    "digits", "xor", "mnist" and "fashion-mnist" name the built-in datasets (a plain string,
    not a path); the last two are downloaded on first use (`xpnet.download.fetch_idx`). Files
    are read as stored: only digits (/16) and IDX images (/255) are scaled. The labels
    (integers or text) are coded 0..k-1 by `classes`: by default the file's own distinct
    labels, sorted, of which there must be at least 2 (training data); given (the training data's
    `Dataset.classes`, or a checkpoint's), by those, so that test data shares the training
    data's codes even when it lacks a class, and a label outside them raises DataError.
    `quiet` downloads without a progress bar or lines on stderr.
    """
    data = _load(spec, quiet)
    if classes is not None:
        codes, known = encode_labels(data.labels, classes, str(spec))
        return dataclasses.replace(data, y=codes, n_classes=known.size, classes=known)
    if data.n_classes < 2:
        raise DataError(
            f"{data.name}: need at least 2 classes, found only label {data.labels[0]}; "
            "a classifier needs examples of more than one class"
        )
    return data


def load_targets(spec: str | os.PathLike) -> Dataset:
    """A regression dataset: features X and numeric targets y (an .npz's y, 1-D or one column
    per output, or a .csv's last column), float64, split at random rather than by class."""
    path = Path(spec)
    if isinstance(spec, str) and spec in BUILTIN:
        raise DataError(
            f"{spec} is a classification dataset; regression needs a .npz (X, y) or .csv file "
            "whose targets are numbers"
        )
    if not path.is_file():
        raise DataError(f"no such file: {path}; regression reads a .npz (X, y) or .csv file")
    if path.suffix.lower() == ".csv":
        table = read_csv(path)
        if table.last.dtype.kind not in "iuf":
            raise DataError(
                f"{path}: the last column holds text, and regression needs numbers to predict; "
                "leave out --task regression to learn its classes"
            )
        X, y = table.X, table.last
    elif path.suffix.lower() == ".npz":
        arrays, keys = _read_npz(path, ("X", "y"))
        if len(arrays) < 2:
            raise DataError(
                f"{path} needs arrays named X and y, it has: {', '.join(keys) or 'none'}; "
                "save it with numpy.savez(path, X=X, y=y)"
            )
        X, y = arrays["X"], arrays["y"]
    else:
        raise DataError(f"unsupported format {path.suffix!r} for {path}: use .npz or .csv")
    y = np.asarray(y)
    if y.dtype.kind not in "iuf" or y.ndim not in (1, 2) or y.shape[0] != np.shape(X)[0]:
        raise DataError(
            f"{path}: regression targets y must be numbers, one row (or value) per row of X; "
            f"got dtype {y.dtype}, shape {y.shape} for {np.shape(X)[0]} rows"
        )
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise DataError(f"{path}: y holds NaN or infinite targets; clean or drop those rows")
    width = 1 if y.ndim == 1 else y.shape[1]
    return Dataset(_features(X, path.stem), y, path.stem, width, regression=True)


def _load(spec: str | os.PathLike, quiet: bool) -> Dataset:
    """The dataset `spec` names, its labels coded by its own classes."""
    if isinstance(spec, str) and spec in PACKAGED:
        return load_digits() if spec == "digits" else load_xor()
    if isinstance(spec, str) and spec in DOWNLOADED:
        from .download import fetch_idx  # here: urllib and ssl load only when a download may

        return _load_idx_dir(fetch_idx(spec, quiet=quiet))
    path = Path(spec)
    if not path.exists():
        raise DataError(f"no such file: {path} (built-in datasets are: {', '.join(BUILTIN)})")
    if path.is_dir():
        return _load_idx_dir(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    raise DataError(
        f"unsupported format {suffix or '(no suffix)'!r} for {path}: use a .npz file (arrays X "
        "and y), a .csv file (label in the last column), a directory of MNIST IDX files, or one "
        f"of the built-in names {', '.join(BUILTIN)}"
    )


def load_inputs(path: str | os.PathLike, n_features: int | None = None) -> np.ndarray:
    """The inputs X (n, n_features) float64 of an .npz file (its array X) or a .csv file read
    as `xpnet train` reads one (a label in the last column is dropped when the net takes one
    feature fewer than the file has columns), checked as training data is (image stacks
    flattened; empty, non-numeric or non-finite data refused): what a trained net predicts
    on. An array y may be in an .npz too and is not read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise DataError(
            f"{path}: inputs are read from an .npz file with an array X (numpy.savez) or a "
            ".csv file of numbers"
        )
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if suffix == ".csv":
        return _features(_csv_inputs(path, n_features), path.stem)
    arrays, keys = _read_npz(path, ("X",))
    if "X" not in arrays:
        raise DataError(
            f"{path} has no array X (it has: {', '.join(keys) or 'none'}); "
            "save it with numpy.savez(path, X=X)"
        )
    return _features(arrays["X"], path.stem)


def _csv_inputs(path: Path, n_features: int | None) -> np.ndarray:
    """A CSV's features: all its columns, or all but a last (label) column when the net takes
    that many."""
    X, last, _ = read_csv(path)
    if n_features is not None and X.shape[1] == n_features:
        return X
    if last.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: its last column holds text, so it is a label column; the other "
            f"{X.shape[1]} columns are the features, but the net takes {n_features}"
        )
    return np.column_stack([X, last.astype(np.float64)])


def load_digits() -> Dataset:
    """The 8x8 handwritten digits, 1797 x 64, pixels 0..16 scaled to [0, 1] by /16.

    Read from the copy packaged with xpnet (see datasets/README.md): no network, no scikit-learn.
    """
    resource = importlib.resources.files("xpnet") / "datasets" / "digits.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", ndmin=2)
    return _from_arrays(table[:, :-1] / 16.0, table[:, -1], "digits")


def load_xor() -> Dataset:
    """The 4-point XOR problem, the classic smallest task a single layer cannot solve."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return _from_arrays(X, np.array([0, 1, 1, 0]), "xor")


def train_test_split(
    data: Dataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Split into (train, test), stratified: about test_fraction of each class goes to test.

    Seeded with numpy.random.default_rng(seed), so the same seed gives the same split. A class
    with at least 2 samples has at least one in each part; a class with one sample stays in
    train. Datasets with fewer than 10 samples (xor) have nothing to hold out, so the result is
    (data, data): train and test on the same points. Rows keep their original order. A dataset
    of 10 or more samples in which every class has a single sample raises DataError: a
    stratified split could only leave the test part empty (hold-out needs a class with 2+).
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if len(data) < 10:
        return data, data
    rng = np.random.default_rng(seed)
    if data.regression:  # no classes to stratify by
        rows = rng.permutation(len(data))[: max(1, round(test_fraction * len(data)))]
        is_test = np.zeros(len(data), dtype=bool)
        is_test[rows] = True
        return _subset(data, ~is_test), _subset(data, is_test)
    test_rows = []
    for label in range(data.n_classes):
        rows = rng.permutation(np.flatnonzero(data.y == label))
        if len(rows) >= 2:
            n_test = min(max(round(test_fraction * len(rows)), 1), len(rows) - 1)
            test_rows.append(rows[:n_test])
    if not test_rows:
        raise DataError(
            f"{data.name}: every class has a single sample, so a stratified split has nothing "
            "to hold out for testing; give at least 2 samples of some class"
        )
    is_test = np.zeros(len(data), dtype=bool)
    is_test[np.concatenate(test_rows)] = True
    return _subset(data, ~is_test), _subset(data, is_test)


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels (n,) -> float64 (n, n_classes) targets with a 1 in each label's column."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"one_hot needs 1-D integer labels, got shape {y.shape} dtype {y.dtype}")
    outside = np.flatnonzero((y < 0) | (y >= n_classes))
    if outside.size:
        raise DataError(
            f"label {y[outside[0]]} (row {outside[0]}) is outside 0..{n_classes - 1}; "
            "code the labels 0..n_classes-1 first (xpnet.labels.encode_labels)"
        )
    out = np.zeros((y.shape[0], n_classes))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def _subset(data: Dataset, rows: np.ndarray) -> Dataset:
    """The given rows of data, keeping its name, n_classes and classes so that one-hot widths
    and codes agree."""
    X = np.ascontiguousarray(data.X[rows])
    return dataclasses.replace(data, X=X, y=data.y[rows])


def _from_arrays(X: np.ndarray, y: np.ndarray, name: str) -> Dataset:
    """Check X and y as a user would have them: float64 X, y coded by its own classes."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(
            f"{name}: y must be 1-D class labels, got shape {y.shape}; "
            "for one-hot targets store y = T.argmax(axis=1)"
        )
    if np.ndim(X) >= 1 and np.shape(X)[0] != y.shape[0]:
        raise DataError(
            f"{name}: X has {np.shape(X)[0]} rows but y has {y.shape[0]} labels; "
            "give one label per row"
        )
    stored = tuple(np.shape(X))
    X = _features(X, name)
    codes, classes = encode_labels(y, name=name)
    flattened = stored if len(stored) >= 3 else None
    return Dataset(X, codes, name, classes.size, flattened, classes=classes)


def _features(X: np.ndarray, name: str) -> np.ndarray:
    """X as a float64 (n_samples, n_features) array, refusing what a net cannot take: image
    stacks are flattened to one row per image; empty, non-numeric or non-finite data raises."""
    X = np.asarray(X)
    if X.ndim >= 3:  # a stack of images (n, h, w, ...) -> one row of pixels per image
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise DataError(
            f"{name}: X must be 2-D (n_samples, n_features), got shape {X.shape}; "
            "for a single feature use X.reshape(-1, 1)"
        )
    if X.shape[0] == 0:
        raise DataError(f"{name}: the dataset is empty (0 samples); check the file has data rows")
    if X.shape[1] == 0:
        raise DataError(f"{name}: X has no feature columns; give at least one feature per row")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: X must be numeric, got dtype {X.dtype}; convert it to floats")
    X = np.ascontiguousarray(X, dtype=np.float64)
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        n_bad = np.count_nonzero(~np.isfinite(X))
        raise DataError(
            f"{name}: X has {n_bad} NaN or inf values in {bad_rows.size} rows "
            f"(first rows: {bad_rows[:SHOW].tolist()}); drop or impute them first"
        )
    return X


def _load_npz(path: Path) -> Dataset:
    """Arrays X and y from a numpy .npz archive, never unpickling objects."""
    arrays, keys = _read_npz(path, ("X", "y"))
    if len(arrays) < 2:
        raise DataError(
            f"{path} needs arrays named X and y, it has: {', '.join(keys) or 'none'}; "
            "save it with numpy.savez(path, X=X, y=y)"
        )
    return _from_arrays(arrays["X"], arrays["y"], path.stem)


def _read_npz(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays among `names` that the .npz archive holds, and all its keys; never unpickles."""
    with open(path, "rb") as file:  # an unreadable file is named as such, not as "not a zip"
        is_zip = zipfile.is_zipfile(file)
    if not is_zip:
        raise DataError(f"{path} is not an .npz (zip) archive; write it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = archive.files
            return {key: archive[key] for key in keys if key in names}, keys
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {path} as .npz ({err}); write it with numpy.savez") from err


def _load_csv(path: Path) -> Dataset:
    """The features and labels of a .csv file (see xpnet.csvfile)."""
    table = read_csv(path)
    check_class_labels(path, table)
    return _from_arrays(table.X, table.last, path.stem)


def _load_idx_dir(path: Path) -> Dataset:
    """MNIST-style IDX files: the train pair, then the t10k pair if present, as one dataset."""
    images, labels = [], []
    for prefix in ("train", "t10k"):  # MNIST's training part, then its optional test part
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
        files = [_find_idx(path, name) for name in names]
        if files == [None, None] and prefix == "t10k":
            continue
        image_file, label_file = files
        if image_file is None or label_file is None:
            missing = [name for name, file in zip(names, files, strict=True) if file is None]
            raise DataError(
                f"missing MNIST IDX files in {path}: {' and '.join(missing)} "
                "(each optionally .gz); put them in the directory"
            )
        images.append(_read_idx(image_file, ndim=3))
        labels.append(_read_idx(label_file, ndim=1))
    if images[-1].shape[1:] != images[0].shape[1:]:
        raise DataError(
            f"{path}: t10k images are {images[-1].shape[1:]} but train images are "
            f"{images[0].shape[1:]}; use files from the same dataset"
        )
    data = _from_arrays(np.concatenate(images) / 255.0, np.concatenate(labels), path.name)
    return dataclasses.replace(data, own_test=len(images[0])) if len(images) == 2 else data


def _find_idx(folder: Path, name: str) -> Path | None:
    """The file called name, or with ".idx" for "-idx" as some mirrors write it, optionally .gz."""
    for spelling in (name, name.replace("-idx", ".idx")):
        for ending in ("", ".gz"):
            candidate = folder / f"{spelling}{ending}"
            if candidate.is_file():
                return candidate
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes with the expected number of dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"corrupt IDX file {path}: {err}; download it again") from err
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"corrupt IDX file {path}: truncated header; download it again")
    zero, dtype_code, file_ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != IDX_UBYTE or file_ndim != ndim:
        raise DataError(
            f"corrupt IDX file {path}: bad magic number 0x{raw[:4].hex()}, expected "
            f"0x0000{IDX_UBYTE:02x}{ndim:02x}; download it again"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = header_size + math.prod(shape)
    if len(raw) != expected:
        raise DataError(
            f"corrupt IDX file {path}: {len(raw)} bytes but its header {shape} needs {expected} "
            "(truncated?); download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)

"""Tests of xpnet.data: the packaged digits, XOR, file loaders, the split and their errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from xpnet.data import (
    DataError,
    Dataset,
    load_dataset,
    load_digits,
    load_inputs,
    load_xor,
    one_hot,
    train_test_split,
)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write array (uint8) as an IDX file the way MNIST stores it."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def labelled(n_per_class: list[int]) -> Dataset:
    """A dataset whose first feature is the row number, so split rows can be traced back."""
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    X = np.stack([np.arange(y.size), y * 10.0], axis=1)
    return Dataset(X, y, "labelled", len(n_per_class))


# --- built-in datasets ---------------------------------------------------------------------------


def test_digits_shape_range_and_classes():
    data = load_digits()
    assert data.name == "digits"
    assert data.X.shape == (1797, 64)
    assert data.n_features == 64
    assert data.n_classes == 10
    assert data.X.dtype == np.float64 and data.X.flags.c_contiguous
    assert data.y.dtype == np.int64
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    # pixel values are 0..16, so every scaled value is a multiple of 1/16
    np.testing.assert_array_equal(data.X * 16, np.round(data.X * 16))
    assert np.bincount(data.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_equals_sklearn():
    datasets = pytest.importorskip(
        "sklearn.datasets", reason="scikit-learn is needed only to compare the packaged copy"
    )
    reference = datasets.load_digits()
    data = load_digits()
    np.testing.assert_array_equal(data.X, reference.data / 16)
    np.testing.assert_array_equal(data.y, reference.target)
    np.testing.assert_array_equal(np.bincount(data.y), np.bincount(reference.target))


def test_xor_values():
    data = load_xor()
    np.testing.assert_array_equal(data.X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(data.y, [0, 1, 1, 0])
    assert (data.name, data.n_classes, data.n_features) == ("xor", 2, 2)
    assert data.X.dtype == np.float64 and data.y.dtype == np.int64


def test_load_dataset_builtin_names():
    assert load_dataset("xor").name == "xor"
    np.testing.assert_array_equal(load_dataset("digits").X, load_digits().X)


def test_repr_is_short():
    assert repr(load_xor()) == "Dataset(name='xor', n=4, n_features=2, n_classes=2)"


# --- train_test_split ----------------------------------------------------------------------------


def test_split_is_stratified_disjoint_and_complete():
    data = labelled([50, 30, 20])
    train, test = train_test_split(data, test_fraction=0.2, seed=0)
    assert np.bincount(test.y).tolist() == [10, 6, 4]
    assert np.bincount(train.y).tolist() == [40, 24, 16]
    train_ids, test_ids = train.X[:, 0], test.X[:, 0]
    assert not set(train_ids) & set(test_ids)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_ids, test_ids])), np.arange(100))
    # rows stay paired with their labels and keep their original order
    np.testing.assert_array_equal(train.X[:, 1], train.y * 10.0)
    assert np.all(np.diff(test_ids) > 0)
    assert (train.n_classes, test.n_classes) == (3, 3)
    assert train.X.flags.c_contiguous and test.X.flags.c_contiguous


def test_split_puts_every_class_with_two_samples_in_both_parts():
    train, test = train_test_split(labelled([40, 2, 1]), test_fraction=0.1, seed=3)
    assert np.bincount(test.y, minlength=3).tolist() == [4, 1, 0]
    assert np.bincount(train.y, minlength=3).tolist() == [36, 1, 1]


def test_split_is_deterministic_per_seed():
    data = load_digits()
    first = train_test_split(data, seed=7)[1]
    again = train_test_split(data, seed=7)[1]
    other = train_test_split(data, seed=8)[1]
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.y, again.y)
    assert first.X.shape == other.X.shape
    assert not np.array_equal(first.X, other.X)


def test_split_of_tiny_dataset_returns_it_twice():
    data = load_xor()
    train, test = train_test_split(data)
    assert train is data and test is data


def test_split_with_only_singleton_classes_says_why():
    data = labelled([1] * 12)  # 12 samples, 12 classes of one: nothing can be held out
    with pytest.raises(DataError, match=r"every class has a single sample.*at least 2 samples"):
        train_test_split(data)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 2.0])
def test_split_refuses_bad_fraction(fraction):
    with pytest.raises(DataError, match="test_fraction must be between 0 and 1"):
        train_test_split(load_digits(), test_fraction=fraction)


# --- one_hot -------------------------------------------------------------------------------------


def test_one_hot_values():
    out = one_hot(np.array([2, 0, 1]), 4)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


def test_one_hot_refuses_labels_out_of_range():
    with pytest.raises(DataError, match=r"label 3 \(row 1\) is outside 0..2"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(DataError, match="1-D integer labels"):
        one_hot(np.array([0.0, 1.0]), 2)


# --- file formats --------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=np.array([0, 1, 2, 0, 1, 2]))
    data = load_dataset(path)
    assert data.name == "blobs"
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, [0, 1, 2, 0, 1, 2])
    assert data.n_classes == 3 and data.y.dtype == np.int64


def test_npz_flattens_images_and_accepts_whole_float_labels(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(3, 2, 4)
    path = tmp_path / "images.npz"
    np.savez(path, X=images, y=np.array([1.0, 0.0, 1.0]))
    data = load_dataset(str(path))
    assert data.X.shape == (3, 8)
    np.testing.assert_array_equal(data.X[2], np.arange(16, 24))
    np.testing.assert_array_equal(data.y, [1, 0, 1])
    assert data.y.dtype == np.int64


def test_csv_round_trip_without_header(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("0.5,1.5,0\n-2,3e-1,1\n\n4,5,1\n")
    data = load_dataset(path)
    assert data.name == "points"
    np.testing.assert_array_equal(data.X, [[0.5, 1.5], [-2, 0.3], [4, 5]])
    np.testing.assert_array_equal(data.y, [0, 1, 1])


def test_csv_round_trip_with_header(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("width,height,label\r\n1,2,0\r\n3,4,1\r\n")
    data = load_dataset(path)
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.y, [0, 1])


@pytest.mark.parametrize("compress", [False, True])
def test_idx_directory_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)
    test_images = rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", train_images, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.array([0, 1, 2, 1, 0]), compress)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", test_images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.array([2, 2]), compress)
    data = load_dataset(tmp_path)
    assert data.name == tmp_path.name
    assert data.X.shape == (7, 12) and data.n_classes == 3
    expected = np.concatenate([train_images, test_images]).reshape(7, 12) / 255
    np.testing.assert_array_equal(data.X, expected)
    np.testing.assert_array_equal(data.y, [0, 1, 2, 1, 0, 2, 2])


def test_idx_directory_without_test_part_and_dotted_names(tmp_path):
    images = np.full((2, 2, 2), 255, dtype=np.uint8)
    write_idx(tmp_path / "train-images.idx3-ubyte", images)
    write_idx(tmp_path / "train-labels.idx1-ubyte", np.array([1, 0]))
    data = load_dataset(tmp_path)
    np.testing.assert_array_equal(data.X, np.ones((2, 4)))
    np.testing.assert_array_equal(data.y, [1, 0])


# --- errors --------------------------------------------------------------------------------------


def save_npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_missing_file(tmp_path):
    path = tmp_path / "nothing.npz"
    with pytest.raises(DataError, match=r"no such file: .*nothing\.npz \(built-in datasets are"):
        load_dataset(path)
    with pytest.raises(DataError, match="no such file: digit "):
        load_dataset("digit")


def test_unknown_format(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1,2,0\n")
    with pytest.raises(DataError, match=r"unsupported format '\.txt'.*\.npz.*\.csv.*IDX"):
        load_dataset(path)


def test_npz_without_y_names_its_keys(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match="needs arrays named X and y, it has: X, labels"):
        load_dataset(path)


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "data.npz"
    np.save(tmp_path / "array.npy", np.zeros(3))
    path.write_bytes((tmp_path / "array.npy").read_bytes())
    with pytest.raises(DataError, match=r"is not an \.npz \(zip\) archive"):
        load_dataset(path)


@pytest.mark.parametrize("X", [np.zeros(4), np.array(1.0)])
def test_X_not_2d(tmp_path, X):
    path = save_npz(tmp_path, X=X, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"X must be 2-D \(n_samples, n_features\), got shape"):
        load_dataset(path)


def test_y_not_1d(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((2, 2)), y=np.eye(2))
    with pytest.raises(DataError, match=r"y must be 1-D class labels, got shape \(2, 2\)"):
        load_dataset(path)


def test_lengths_differ(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((5, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="X has 5 rows but y has 4 labels"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("y", "found"),
    [
        (np.array([0, 1.5, 1]), "1.5"),
        (np.array([0, np.nan, 1]), "nan"),
        (np.array([0, np.inf, 1]), "inf"),
        (np.array([0, 1e300, 1]), r"1e\+300"),  # whole, but no int64
    ],
)
def test_labels_must_be_whole_numbers(tmp_path, y, found):
    path = save_npz(tmp_path, X=np.zeros((3, 2)), y=y)
    with pytest.raises(DataError, match=rf"whole numbers or text, found {found} \(rows \[1\]\)"):
        load_dataset(path)


def test_labels_must_be_integers_or_text(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((2, 2)), y=np.array([1j, 2j]))
    with pytest.raises(DataError, match="labels must be integers or text, got dtype complex128"):
        load_dataset(path)


def test_X_must_be_numbers(tmp_path):
    path = save_npz(tmp_path, X=np.array([["a"], ["b"]]), y=np.array([0, 1]))
    with pytest.raises(DataError, match="X must be numeric, got dtype <U1"):
        load_dataset(path)


def test_non_finite_X_names_count_and_rows(tmp_path):
    X = np.zeros((8, 3))
    X[1, 0] = np.nan
    X[1, 2] = np.inf
    X[6, 1] = -np.inf
    path = save_npz(tmp_path, X=X, y=np.arange(8) % 2)
    with pytest.raises(DataError, match=r"3 NaN or inf values in 2 rows \(first rows: \[1, 6\]\)"):
        load_dataset(path)


def test_fewer_than_two_classes(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((3, 2)), y=np.array([1, 1, 1]))
    with pytest.raises(DataError, match="need at least 2 classes, found only label 1"):
        load_dataset(path)


def test_empty_dataset(tmp_path):
    path = save_npz(tmp_path, X=np.zeros((0, 2)), y=np.zeros(0, dtype=int))
    with pytest.raises(DataError, match=r"the dataset is empty \(0 samples\)"):
        load_dataset(path)
    csv = tmp_path / "empty.csv"
    csv.write_text("a,b,label\n\n")
    with pytest.raises(DataError, match=r"the dataset is empty \(no data lines\)"):
        load_dataset(csv)
    csv.write_text("")
    with pytest.raises(DataError, match="the dataset is empty"):
        load_dataset(csv)


def test_no_feature_columns(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("0\n1\n")
    with pytest.raises(DataError, match="X has no feature columns"):
        load_dataset(path)


@pytest.mark.parametrize("labels", [("0", "1"), ("cat", "dog")])  # numbers or text
def test_csv_non_numeric_cell_names_the_line(tmp_path, labels):
    a, b = labels
    path = tmp_path / "bad.csv"
    path.write_text(f"x,y,label\n1,2,{a}\n\n3,oops,{b}\n")
    with pytest.raises(DataError, match=rf"bad\.csv: line 4 has a non-numeric cell: '3,oops,{b}'"):
        load_dataset(path)
    path.write_text(f"1,{a}\n,{b}\n")  # a blank feature
    with pytest.raises(DataError, match=rf"line 2 has a non-numeric cell: ',{b}'"):
        load_dataset(path)


def test_csv_first_row_with_one_bad_cell_is_not_taken_for_a_header(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text("1,NA,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"line 1 has a non-numeric cell: '1,NA,0'"):
        load_dataset(path)


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_csv_with_another_separator_says_use_commas(tmp_path, sep, name):
    path = tmp_path / "other.csv"
    path.write_text(sep.join(["a", "b", "label"]) + "\n" + sep.join(["1.5", "2", "0"]) + "\n")
    with pytest.raises(DataError, match=f"line 1 is separated by {name}, not commas; the file"):
        load_dataset(path)


def test_csv_ragged_row_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("1,2,0\n3,4,1\n5,1\n")
    with pytest.raises(DataError, match="line 3 has 2 columns, expected 3"):
        load_dataset(path)


def test_csv_that_is_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        load_dataset(path)


def write_mnist_pair(folder: Path) -> None:
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((2, 2, 2)))
    write_idx(folder / "train-labels-idx1-ubyte", np.array([0, 1]))


def test_idx_bad_magic_names_the_file(tmp_path):
    write_mnist_pair(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])  # says 3-D
    with pytest.raises(DataError, match=r"corrupt IDX file .*train-labels-idx1-ubyte: bad magic"):
        load_dataset(tmp_path)


def test_idx_truncated_names_the_file(tmp_path):
    write_mnist_pair(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"corrupt IDX file .*train-images-idx3-ubyte: 23 bytes"):
        load_dataset(tmp_path)
    images.write_bytes(images.read_bytes()[:6])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated header"):
        load_dataset(tmp_path)


def test_idx_corrupt_gzip_names_the_file(tmp_path):
    write_mnist_pair(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip data")
    with pytest.raises(DataError, match=r"corrupt IDX file .*train-images-idx3-ubyte\.gz"):
        load_dataset(tmp_path)


def test_directory_without_idx_files(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    message = r"missing MNIST IDX files in .*: train-images-idx3-ubyte and train-labels-idx1-ubyte"
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path)


def test_directory_with_images_but_no_labels(tmp_path):
    write_mnist_pair(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 2, 2)))
    with pytest.raises(
        DataError, match=r"missing MNIST IDX files in .*: t10k-labels-idx1-ubyte \("
    ):
        load_dataset(tmp_path)


def test_idx_parts_with_different_image_sizes(tmp_path):
    write_mnist_pair(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 3, 3)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1]))
    with pytest.raises(DataError, match=r"t10k images are \(3, 3\) but train images are \(2, 2\)"):
        load_dataset(tmp_path)


# --- inputs to predict on ------------------------------------------------------------------------


def test_inputs_are_checked_like_training_data(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(3, 2, 4)  # a stack of 2x4 images, no y
    path = save_npz(tmp_path, X=images)
    X = load_inputs(path)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, np.arange(24).reshape(3, 8))
    np.savez(path, X=np.array([[1.0, np.nan]]), y=np.array([0]))
    with pytest.raises(DataError, match=r"1 NaN or inf values in 1 rows"):
        load_inputs(path)
    np.savez(path, features=np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"has no array X \(it has: features\)"):
        load_inputs(path)
    with pytest.raises(DataError, match=r"inputs are read from an \.npz file .* or a \.csv"):
        load_inputs(tmp_path / "x.txt")
    with pytest.raises(DataError, match="no such file"):
        load_inputs(tmp_path / "none.npz")


@pytest.mark.parametrize("header", ["0,1,2", "1,2,3"])
def test_a_csv_header_that_numbers_the_columns_is_not_a_sample(tmp_path, header):
    """Issue 21, item 7: it was read as a data row, adding a spurious class."""
    path = tmp_path / "numbered.csv"
    path.write_text(f"{header}\n0.5,1.5,a\n2.5,3.5,b\n1.0,1.0,a\n")
    data = load_dataset(str(path))
    assert len(data) == 3 and data.classes.tolist() == ["a", "b"]
    kept = tmp_path / "data.csv"  # a first row of numbers whose label other rows have: data
    kept.write_text("1,2,3\n4,5,3\n6,7,4\n")
    assert len(load_dataset(str(kept))) == 3

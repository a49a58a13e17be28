"""Class labels (issue 9, item 7): text and sparse integer labels are coded 0..k-1 by the
training data's sorted classes, and every other file is coded by those same classes."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.data import DataError, Dataset, load_dataset, load_digits, train_test_split
from xpnet.labels import class_array, describe_classes, encode_labels, label_values


def save_npz(path, X, y):
    np.savez(path, X=np.asarray(X, dtype=float), y=y)
    return path


# --- the rule ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("y", "classes", "codes"),
    [
        (["dog", "cat", "zebra", "cat"], ["cat", "dog", "zebra"], [1, 0, 2, 0]),
        ([100, -1, 5, 5], [-1, 5, 100], [2, 0, 1, 1]),  # sparse and negative integers
        ([0, 1, 3, 1], [0, 1, 3], [0, 1, 2, 1]),  # a gap: 3 classes, not max + 1 = 4
        ([2.0, 1.0, 2.0], [1, 2], [1, 0, 1]),  # whole-number floats are integers
        ([True, False], [0, 1], [1, 0]),
        ([b"b", b"a"], ["a", "b"], [1, 0]),  # bytes are read as UTF-8 text
    ],
)
def test_labels_are_coded_by_their_sorted_distinct_values(y, classes, codes):
    got_codes, got_classes = encode_labels(np.array(y))
    assert got_codes.tolist() == codes and got_codes.dtype == np.int64
    assert got_classes.tolist() == classes
    assert got_classes.dtype.kind == ("U" if isinstance(classes[0], str) else "i")


def test_labels_0_to_k_minus_1_are_their_own_codes():
    """What every run so far trained on (digits, MNIST, xor) codes exactly as before."""
    digits = load_digits()
    np.testing.assert_array_equal(digits.classes, np.arange(10))
    assert digits.classes.dtype == np.int64
    np.testing.assert_array_equal(digits.labels, digits.y)


def test_given_classes_code_a_file_lacking_some_of_them_the_same_way():
    """Coded on its own, a test file with only dogs would call them class 0, which is cat's."""
    classes = np.array(["cat", "dog", "zebra"])
    codes, known = encode_labels(np.array(["dog", "dog"]), classes)
    assert codes.tolist() == [1, 1] and known.tolist() == ["cat", "dog", "zebra"]
    assert encode_labels(np.array(["dog", "dog"]))[0].tolist() == [0, 0]  # what it must not be
    # classes in any order (a library user's output order): codes follow it
    assert encode_labels(np.array(["cat", "dog"]), ["dog", "cat"])[0].tolist() == [1, 0]


def test_a_label_outside_the_classes_is_named_with_the_classes():
    with pytest.raises(
        DataError,
        match=r"^t\.csv has labels 'lion', 'yak' outside the training data's classes "
        r"\(cat, dog\); the net predicts only those",
    ):
        encode_labels(np.array(["dog", "yak", "lion", "yak"]), ["cat", "dog"], "t.csv")
    with pytest.raises(DataError, match=r"has label 7 outside .* classes \(-1, 5, 100\)"):
        encode_labels(np.array([5, 7]), [-1, 5, 100])
    with pytest.raises(DataError, match=r"has label 'cat' outside .* classes \(0, 1\)"):
        encode_labels(np.array(["cat", "0"]), [0, 1])


def test_numbers_and_text_are_compared_as_text():
    """A test file whose labels all look like numbers still matches text classes "1", "2"
    (and one whose labels are text because of one typo still matches its numbers)."""
    assert encode_labels(np.array([2, 1]), ["1", "2", "many"])[0].tolist() == [1, 0]
    assert encode_labels(np.array(["1", "0"]), [0, 1])[0].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([0, 0.5], r"whole numbers or text, found 0.5 \(rows \[1\]\)"),
        ([np.nan, 1], r"whole numbers or text, found nan \(rows \[0\]\)"),
        (["cat", " ", ""], r"2 labels are empty \(rows \[1, 2\]\)"),
        ([b"\xff"], "labels are bytes but not UTF-8 text"),
        (np.array([None, 1], dtype=object), "integers or text, got dtype object"),
    ],
)
def test_labels_that_are_no_class_are_refused(y, message):
    with pytest.raises(DataError, match=message):
        label_values(np.array(y))


def test_classes_must_be_distinct():
    assert class_array(["b", "a"]).tolist() == ["b", "a"]
    for bad in (["a", "a"], [], [[0, 1]]):
        with pytest.raises(DataError, match="non-empty 1-D list of distinct labels"):
            class_array(bad)


def test_many_classes_are_abbreviated():
    assert describe_classes(np.array(["cat", "dog"])) == "cat, dog"
    assert describe_classes(np.arange(100)) == "0, 1, 2, 3, 4, 5, 6, 7, ..., 98, 99 (100 classes)"


# --- files ---------------------------------------------------------------------------------------
def test_npz_with_unicode_labels(tmp_path):
    y = np.array(["setosa", "virginica", "setosa", "versicolor"])
    data = load_dataset(save_npz(tmp_path / "iris.npz", np.eye(4), y))
    assert data.classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert data.y.tolist() == [0, 2, 0, 1] and data.n_classes == 3
    np.testing.assert_array_equal(data.labels, y)
    np.testing.assert_array_equal(data.decode([2, 1]), ["virginica", "versicolor"])


def test_npz_with_sparse_integer_labels(tmp_path):
    data = load_dataset(save_npz(tmp_path / "s.npz", np.eye(4), np.array([100, -1, 5, -1])))
    assert data.classes.tolist() == [-1, 5, 100] and data.classes.dtype == np.int64
    assert data.y.tolist() == [2, 0, 1, 0] and data.n_classes == 3


def test_npz_with_object_labels_is_never_unpickled(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, X=np.eye(2), y=np.array(["a", 1], dtype=object))
    with pytest.raises(DataError, match=r"cannot read .* as \.npz"):
        load_dataset(path)


def test_csv_with_text_labels(tmp_path):
    path = tmp_path / "animals.csv"
    path.write_text('weight,height,animal\n1.5,2,dog\n3,4, cat \n5,6,"zebra"\n7,8,dog\n')
    data = load_dataset(path)
    np.testing.assert_array_equal(data.X, [[1.5, 2], [3, 4], [5, 6], [7, 8]])
    assert data.classes.tolist() == ["cat", "dog", "zebra"]  # spaces and quotes are not kept
    assert data.y.tolist() == [1, 0, 2, 1]


def test_csv_number_labels_are_numbers_and_one_text_cell_makes_them_all_text(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("1,1\n2,1.0\n3,-2\n")
    assert load_dataset(path).classes.tolist() == [-2, 1]  # 1 and 1.0 are one class
    path.write_text("1,1\n2,1.0\n3,x\n")
    assert load_dataset(path).classes.tolist() == ["1", "1.0", "x"]
    path.write_text("1,9007199254740993\n2,9007199254740992\n")  # no float64 tells them apart
    assert load_dataset(path).classes.tolist() == [9007199254740992, 9007199254740993]


def test_csv_empty_label_is_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("1,cat\n2, \n3,dog\n")
    with pytest.raises(DataError, match=r"e: 1 labels are empty \(rows \[1\]\)"):
        load_dataset(path)


# --- one mapping for every file ---------------------------------------------------------------
def test_a_test_file_is_coded_by_the_training_classes(tmp_path):
    train = load_dataset(save_npz(tmp_path / "train.npz", np.eye(3), ["cat", "dog", "zebra"]))
    only_dogs = save_npz(tmp_path / "dogs.npz", np.ones((2, 3)), ["dog", "dog"])
    with pytest.raises(DataError, match="need at least 2 classes, found only label dog"):
        load_dataset(only_dogs)  # as training data
    test = load_dataset(only_dogs, classes=train.classes)
    assert test.y.tolist() == [1, 1] and test.n_classes == 3
    assert test.classes.tolist() == ["cat", "dog", "zebra"]
    lion = save_npz(tmp_path / "lion.npz", np.ones((1, 3)), ["lion"])
    with pytest.raises(
        DataError, match=r"lion\.npz has label 'lion' outside .*\(cat, dog, zebra\)"
    ):
        load_dataset(lion, classes=train.classes)


def test_splits_keep_the_classes():
    y = np.repeat(["b", "a", "c"], 10)
    codes, classes = encode_labels(y)
    data = Dataset(np.zeros((30, 1)), codes, "abc", 3, classes=classes)
    train, test = train_test_split(data)
    assert train.classes is classes and test.classes is classes
    np.testing.assert_array_equal(test.labels, np.repeat(["b", "a", "c"], 2))

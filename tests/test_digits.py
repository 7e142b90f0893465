"""llama_notes.digits: scikit-learn's digits in the tuple format of Nielsen's mnist_loader."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from llama_notes.digits import load_data, load_data_wrapper, vectorized_result


@pytest.fixture(scope="module")
def data():
    return load_data_wrapper()


def test_sizes_and_shapes(data):
    training_data, test_data = data
    assert (len(training_data), len(test_data)) == (1348, 449)
    assert all(x.shape == (64, 1) and y.shape == (10, 1) for x, y in training_data)
    assert all(x.shape == (64, 1) and type(label) is int for x, label in test_data)
    assert all(x.dtype == np.float64 for x, _ in training_data + test_data)


def test_every_image_once_with_its_label(data):
    # Put the split back together: every fourth image is a test image, in order.
    training_data, test_data = data
    digits = load_digits()
    train, test = iter(training_data), iter(test_data)
    for i, (pixels, target) in enumerate(zip(digits.data, digits.target)):
        if i % 4 == 3:
            x, label = next(test)
            assert label == target
        else:
            x, y = next(train)
            assert np.argmax(y) == target
        np.testing.assert_array_equal(x[:, 0], pixels / 16.0)
    assert next(train, None) is None and next(test, None) is None


def test_pixels_scaled_to_unit_interval():
    images, labels = load_data()
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0


def test_one_hot_targets(data):
    training_data, _ = data
    for _, y in training_data:
        assert y.sum() == 1.0 and set(np.unique(y)) == {0.0, 1.0}


def test_both_halves_hold_every_digit(data):
    training_data, test_data = data
    train_counts = np.bincount([int(np.argmax(y)) for _, y in training_data], minlength=10)
    test_counts = np.bincount([label for _, label in test_data], minlength=10)
    assert train_counts.min() >= 130 and test_counts.min() >= 40


def test_the_split_is_the_same_every_time(data):
    again = load_data_wrapper()
    for (x1, y1), (x2, y2) in zip(data[0] + data[1], again[0] + again[1]):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_vectorized_result():
    np.testing.assert_array_equal(vectorized_result(3)[:, 0], np.eye(10)[3])
    with pytest.raises(ValueError, match="0..9"):
        vectorized_result(10)

"""Real data for :mod:`llama_notes.sgd`: scikit-learn's bundled 8x8 digits, in Nielsen's format.

The 1797 images ship inside scikit-learn, so nothing is downloaded. Like the
book's ``mnist_loader.load_data_wrapper``, this returns lists of column vectors:

- training data: ``(x, y)`` with ``x`` of shape ``(64, 1)`` and ``y`` the one-hot
  ``(10, 1)`` vector of the digit (what the quadratic cost compares against);
- test data: ``(x, label)`` with ``label`` an ``int`` (what ``evaluate`` compares
  ``argmax`` with).

Pixels are scaled from 0..16 to [0, 1]. The split is fixed, with no randomness:
every fourth image (index 3, 7, 11, ...) is a test image, the rest are training
images, so both halves mix all writers and all ten digits.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

TEST_EVERY = 4


def load_data():
    """Return ``(images, labels)``: a ``(1797, 64)`` float64 array in [0, 1] and ``(1797,)`` ints."""
    digits = load_digits()
    return digits.data / 16.0, digits.target


def load_data_wrapper():
    """Return ``(training_data, test_data)`` in the format of Nielsen's ``mnist_loader``.

    ``training_data`` has 1348 ``(x, y)`` pairs with one-hot ``y``; ``test_data``
    has 449 ``(x, label)`` pairs.
    """
    images, labels = load_data()
    is_test = np.arange(len(labels)) % TEST_EVERY == TEST_EVERY - 1
    training_data = [(x.reshape(64, 1), vectorized_result(j))
                     for x, j in zip(images[~is_test], labels[~is_test])]
    test_data = [(x.reshape(64, 1), int(j))
                 for x, j in zip(images[is_test], labels[is_test])]
    return training_data, test_data


def vectorized_result(j: int) -> np.ndarray:
    """Return the one-hot ``(10, 1)`` column with a 1.0 in row ``j``."""
    if not 0 <= j < 10:
        raise ValueError(f"digit must be in 0..9, got {j}")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e

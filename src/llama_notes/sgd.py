"""Nielsen's ``network.py``: a sigmoid network trained by mini-batch stochastic gradient descent.

The public API is the book's (``weights``, ``biases``, ``feedforward``, ``SGD``,
``update_mini_batch``, ``backprop``, ``evaluate``, ``cost_derivative``, and the
module functions ``sigmoid`` and ``sigmoid_prime``), ported to Python 3 with these
changes:

- randomness (initial weights, shuffling) comes from a ``numpy`` Generator seeded
  by ``seed``, so a run can be repeated exactly;
- ``SGD`` returns a per-epoch history instead of printing, and no longer
  reorders the caller's list;
- ``evaluate`` feeds all test inputs forward at once, as the columns of one
  matrix (the same predictions, fewer Python calls);
- bad input raises ``ValueError`` or ``TypeError`` before any weight changes;
- the sum of ``backprop`` over a mini-batch is its own method, ``sum_gradients``,
  so that :class:`llama_notes.sgd_matrix.MatrixNetwork` can replace that loop with
  matrix products and share everything else, the update lines of the source post included.

Shapes follow the book: an input ``x`` is a ``(sizes[0], 1)`` column, a training
target ``y`` a one-hot ``(sizes[-1], 1)`` column, a test label an ``int``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

_REAL_KINDS = "biuf"  # numpy dtype kinds accepted as data: bool, int, unsigned, float


@dataclass(frozen=True)
class Epoch:
    """What :meth:`Network.SGD` records after each epoch.

    Attributes:
        epoch: Index of the epoch, from 0 (Nielsen prints ``Epoch 0: ...``).
        cost: Mean quadratic cost ``0.5 * ||a - y||^2`` over the training data.
        correct: Test inputs classified correctly, or ``None`` without test data.
        total: Number of test inputs, or ``None`` without test data.
    """

    epoch: int
    cost: float
    correct: int | None = None
    total: int | None = None

    @property
    def accuracy(self) -> float | None:
        """Fraction of the test inputs classified correctly (``None`` without test data)."""
        return None if self.total is None else self.correct / self.total


class Network:
    """A fully connected sigmoid network, as in chapter 1 of Nielsen's book.

    Args:
        sizes: Neurons per layer, input first: ``[64, 30, 10]`` has 64 inputs,
            one hidden layer of 30 neurons and 10 outputs. At least two layers,
            each a positive integer.
        seed: Seed for the ``numpy`` Generator that draws the initial weights and
            shuffles the training data; the same seed gives the same run.

    Attributes:
        weights: ``weights[l]`` has shape ``(sizes[l+1], sizes[l])``; entry
            ``[j, k]`` connects neuron ``k`` of layer ``l`` to neuron ``j`` of layer ``l+1``.
        biases: ``biases[l]`` has shape ``(sizes[l+1], 1)``; the input layer has none.
        rng: The seeded Generator.
    """

    def __init__(self, sizes: Sequence[int], seed: int | None = None):
        self.sizes = _check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.rng = np.random.default_rng(seed)
        # N(0, 1) like the book's np.random.randn, biases drawn first as in network.py.
        self.biases = [self.rng.standard_normal((y, 1)) for y in self.sizes[1:]]
        self.weights = [self.rng.standard_normal((y, x))
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """Return the output of the network for input ``a``.

        ``a`` has shape ``(sizes[0], n)``: one column per input, so ``n = 1`` is
        the book's single example and a wider matrix runs a whole batch at once.
        """
        _check_array(a, (self.sizes[0], None), "a")
        _check_finite(a, "a[:, {}]")
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a)+b)
        return a

    def SGD(self, training_data, epochs: int, mini_batch_size: int, eta: float,
            test_data=None, *, on_epoch: Callable[[Epoch], None] | None = None) -> list[Epoch]:
        """Train with mini-batch stochastic gradient descent.

        Each epoch shuffles the training data with ``self.rng``, cuts it into
        mini-batches of ``mini_batch_size`` (the last one may be smaller) and calls
        :meth:`update_mini_batch` on each. All input is checked before the first
        update, so bad data anywhere leaves the weights untouched.

        Args:
            training_data: ``(x, y)`` pairs, ``y`` one-hot.
            epochs: Number of passes over the training data.
            mini_batch_size: Examples per gradient step.
            eta: Learning rate, positive.
            test_data: Optional ``(x, label)`` pairs, evaluated after every epoch.
            on_epoch: Optional callable given each :class:`Epoch` as it finishes
                (the command line uses it to print progress).

        Returns:
            One :class:`Epoch` per epoch.
        """
        training_data = list(training_data)  # our own copy: the caller's list keeps its order
        _check_count(epochs, "epochs", minimum=0)
        _check_count(mini_batch_size, "mini_batch_size", minimum=1)
        _check_eta(eta)
        X, Y = self._stack(training_data, "training_data")  # for the cost after each epoch
        if test_data is not None:
            X_test, labels = self._stack_test(list(test_data))
        n = len(training_data)
        history = []
        for j in range(epochs):
            self.rng.shuffle(training_data)
            mini_batches = [
                training_data[k:k+mini_batch_size]
                for k in range(0, n, mini_batch_size)]
            for mini_batch in mini_batches:
                self.update_mini_batch(mini_batch, eta)
            cost = _quadratic_cost(self.feedforward(X), Y)
            if test_data is None:
                record = Epoch(j, cost)
            else:
                record = Epoch(j, cost, self._count_correct(X_test, labels), len(labels))
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        return history

    # --8<-- [start:update_mini_batch]
    def update_mini_batch(self, mini_batch, eta: float) -> None:
        """Take one gradient-descent step on the mean cost of ``mini_batch``.

        Args:
            mini_batch: Non-empty list of ``(x, y)`` pairs.
            eta: Learning rate, positive.
        """
        self._check_mini_batch(mini_batch, eta)
        # Raises on NaN or infinity in the data, still before any weight changes.
        nabla_b, nabla_w = self.sum_gradients(mini_batch)
        # The sums are divided by len(mini_batch): the step follows the mean gradient.
        # --8<-- [start:update]
        self.weights = [w-(eta/len(mini_batch))*nw
                        for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b-(eta/len(mini_batch))*nb
                       for b, nb in zip(self.biases, nabla_b)]
        # --8<-- [end:update]
    # --8<-- [end:update_mini_batch]

    # --8<-- [start:sum_gradients]
    def sum_gradients(self, mini_batch):
        """Return ``(nabla_b, nabla_w)``: the sums of :meth:`backprop` over ``mini_batch``.

        This is the loop from the book's ``update_mini_batch``, one example at a time.
        """
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb+dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw+dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        return nabla_b, nabla_w
    # --8<-- [end:sum_gradients]

    # --8<-- [start:backprop]
    def backprop(self, x: np.ndarray, y: np.ndarray):
        """Return ``(nabla_b, nabla_w)``, the gradient of ``0.5 * ||a - y||^2`` for one example.

        Both are lists shaped like ``self.biases`` and ``self.weights``.
        """
        self._check_xy(x, y)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        # feedforward
        activation = x
        activations = [x]  # list to store all the activations, layer by layer
        zs = []  # list to store all the z vectors, layer by layer
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation)+b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        # backward pass
        delta = self.cost_derivative(activations[-1], y) * \
            sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        # l = 1 is the last layer, l = 2 the one before it, and so on backwards.
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l+1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l-1].transpose())
        return (nabla_b, nabla_w)
    # --8<-- [end:backprop]

    def evaluate(self, test_data) -> int:
        """Return how many ``(x, label)`` pairs the network classifies correctly.

        The prediction is the output neuron with the highest activation. All
        inputs go through :meth:`feedforward` at once, as the columns of one matrix.
        """
        return self._count_correct(*self._stack_test(list(test_data)))

    def total_cost(self, data) -> float:
        """Return the mean of ``0.5 * ||a - y||^2`` over the ``(x, y)`` pairs in ``data``."""
        X, Y = self._stack(list(data), "data")
        return _quadratic_cost(self.feedforward(X), Y)

    def cost_derivative(self, output_activations: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the vector of partial derivatives dC/da of ``C = 0.5 * ||a - y||^2``."""
        return (output_activations-y)

    def _count_correct(self, X: np.ndarray, labels: np.ndarray) -> int:
        return int(np.sum(np.argmax(self.feedforward(X), axis=0) == labels))

    def _check_mini_batch(self, mini_batch, eta) -> None:
        """Check ``eta`` and that every ``(x, y)`` has this network's shapes.

        The values are checked where they are first used, by :meth:`backprop` (or
        ``backprop_batch`` in the matrix variant), still before any weight changes.
        """
        _check_eta(eta)
        if len(mini_batch) == 0:
            raise ValueError("mini_batch is empty: the update divides by len(mini_batch)")
        # This runs for every mini-batch, so first a cheap test that all is well;
        # only when it fails, the slow check that names the culprit.
        shapes = ((self.sizes[0], 1), (self.sizes[-1], 1))
        try:
            ok = all((x.shape, y.shape) == shapes for x, y in mini_batch)
        except (AttributeError, TypeError, ValueError):
            ok = False
        if not ok:
            self._stack(mini_batch, "mini_batch")

    def _check_xy(self, x, y, width: int | None = 1, names=("x", "y")) -> None:
        """Check inputs ``x`` and targets ``y``: one column per example, ``width`` columns
        (any number if ``None``), real and finite."""
        _check_array(x, (self.sizes[0], width), names[0])
        _check_array(y, (self.sizes[-1], x.shape[1]), names[1])
        _check_finite(x, names[0] + "[:, {}]")
        _check_finite(y, names[1] + "[:, {}]")

    def _stack(self, pairs: list, name: str):
        """Check ``(x, y)`` pairs and return them as the columns of two matrices ``X``, ``Y``."""
        if len(pairs) == 0:
            raise ValueError(f"{name} is empty")
        for i, pair in enumerate(pairs):
            x, y = _unpack(pair, f"{name}[{i}]")
            _check_array(x, (self.sizes[0], 1), f"{name}[{i}] x")
            _check_array(y, (self.sizes[-1], 1), f"{name}[{i}] y")
        X = np.concatenate([x for x, _ in pairs], axis=1)
        Y = np.concatenate([y for _, y in pairs], axis=1)
        _check_finite(X, name + "[{}] x")
        _check_finite(Y, name + "[{}] y")
        return X, Y

    def _stack_test(self, pairs: list):
        """Check ``(x, label)`` pairs and return ``X`` (one column per x) and the labels."""
        if len(pairs) == 0:
            raise ValueError("test_data is empty")
        for i, pair in enumerate(pairs):
            x, label = _unpack(pair, f"test_data[{i}]")
            _check_array(x, (self.sizes[0], 1), f"test_data[{i}] x")
            if isinstance(label, bool) or not isinstance(label, Integral):
                raise TypeError(f"test_data[{i}] label must be an int, got {label!r}")
            if not 0 <= label < self.sizes[-1]:
                raise ValueError(f"test_data[{i}] label {label} is outside 0..{self.sizes[-1] - 1}")
        X = np.concatenate([x for x, _ in pairs], axis=1)
        _check_finite(X, "test_data[{}] x")
        return X, np.array([label for _, label in pairs])


def sigmoid(z):
    """The sigmoid function ``1 / (1 + exp(-z))``, elementwise."""
    return 1.0/(1.0+np.exp(-z))


def sigmoid_prime(z):
    """Derivative of the sigmoid function: ``sigmoid(z) * (1 - sigmoid(z))``."""
    return sigmoid(z)*(1-sigmoid(z))


def _quadratic_cost(a: np.ndarray, y: np.ndarray) -> float:
    """Mean over the columns of ``0.5 * ||a - y||^2``."""
    return 0.5 * float(np.sum((a - y) ** 2)) / a.shape[1]


def _check_sizes(sizes) -> list[int]:
    """Return ``sizes`` as a list of ints, or raise if it is not a valid list of layer sizes."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"sizes must be a list of layer sizes, got {type(sizes).__name__}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two layers (input and output), got {sizes}")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise TypeError(f"sizes[{i}] must be an int, got {n!r}")
        if n < 1:
            raise ValueError(f"sizes[{i}] must be positive, got {n}")
    return [int(n) for n in sizes]


def _check_count(n, name: str, minimum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"{name} must be an int, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {n}")


def _check_eta(eta) -> None:
    if isinstance(eta, bool) or not isinstance(eta, Real):
        raise TypeError(f"eta must be a real number, got {eta!r}")
    if not (0 < eta < np.inf):  # also false for NaN
        raise ValueError(f"eta (the learning rate) must be positive and finite, got {eta}")


def _unpack(pair, name: str):
    try:
        x, y = pair
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an (x, y) pair, got {type(pair).__name__}") from None
    return x, y


def _check_array(a, shape: tuple[int, int | None], name: str) -> None:
    """Check that ``a`` is a real 2-D array of ``shape``; ``None`` matches any width."""
    if not isinstance(a, np.ndarray) or a.dtype.kind not in _REAL_KINDS:
        got = f"an array of {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{name} must be a numpy array of real numbers, got {got}")
    rows, cols = shape
    if a.ndim != 2 or a.shape[0] != rows or (cols is not None and a.shape[1] != cols):
        want = f"({rows}, {'n' if cols is None else cols})"
        raise ValueError(f"{name} has shape {a.shape}, but the layer sizes need {want}")


def _check_finite(a: np.ndarray, name: str) -> None:
    """Check that ``a`` has no NaN or infinity; a ``{}`` in ``name`` gets the bad column."""
    if not np.isfinite(a).all():
        column = int(np.flatnonzero(~np.isfinite(a).all(axis=0))[0])
        raise ValueError(f"{name.format(column)} contains NaN or infinity")

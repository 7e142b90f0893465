"""The whole mini-batch at once: backpropagation as matrix products.

Nielsen's ``update_mini_batch`` calls ``backprop`` once per example. Stacking the
mini-batch's ``m`` inputs as the columns of one ``(sizes[0], m)`` matrix ``X``
turns every ``np.dot(w, activation)`` of the loop into one matrix product for all
examples (a problem posed in chapter 2 of the book). The summed gradients
come out of the products directly:

- ``nabla_b = delta.sum(axis=1)``: the sum of each example's ``delta``;
- ``nabla_w = delta @ A.T``: the sum of each example's outer product ``delta a^T``.

Everything else, including the update lines of the source post, is inherited, so for the same
``seed`` both networks start from the same weights and see the same mini-batches.
"""

from __future__ import annotations

import numpy as np

from llama_notes.sgd import Network, sigmoid


class MatrixNetwork(Network):
    """:class:`llama_notes.sgd.Network` with :meth:`sum_gradients` computed as matrix products.

    Same constructor, same API, same numbers (to rounding: the sums are added in a
    different order), several times faster.
    """

    # --8<-- [start:sum_gradients]
    def sum_gradients(self, mini_batch):
        """Return ``(nabla_b, nabla_w)`` summed over ``mini_batch``, all examples in one pass."""
        X = np.concatenate([x for x, _ in mini_batch], axis=1)  # (sizes[0], m): a column per example
        Y = np.concatenate([y for _, y in mini_batch], axis=1)  # (sizes[-1], m)
        return self.backprop_batch(X, Y)
    # --8<-- [end:sum_gradients]

    # --8<-- [start:backprop_batch]
    def backprop_batch(self, X: np.ndarray, Y: np.ndarray):
        """Return ``(nabla_b, nabla_w)`` summed over the columns of ``X`` and ``Y``.

        The same steps as :meth:`backprop`, with matrices of ``m`` columns where
        the loop has vectors.
        """
        self._check_xy(X, Y, width=None, names=("X", "Y"))
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        # feedforward: b of shape (n, 1) broadcasts over the m columns
        activations = [X]
        for b, w in zip(self.biases, self.weights):
            activations.append(sigmoid(w @ activations[-1] + b))
        # backward pass: column i of delta is example i's delta.
        # sigmoid_prime(z) is sigmoid(z)*(1-sigmoid(z)) = a*(1-a), bit for bit,
        # since a = sigmoid(z) was computed by the same operations.
        a = activations[-1]
        delta = self.cost_derivative(a, Y) * (a*(1-a))
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = (self.weights[-l+1].T @ delta) * (a*(1-a))
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l-1].T
        return nabla_b, nabla_w
    # --8<-- [end:backprop_batch]

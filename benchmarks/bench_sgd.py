"""Nielsen's per-example loop against the matrix variant: the same training run, timed.

Both train [64, 30, 10] on the digits with the book's hyper-parameters (30 epochs,
mini-batches of 10, eta 3.0) from the same seed, so they start from the same
weights and see the same mini-batches; the weights must end up equal to 1e-12.

Timing: CPU time of this process (``time.process_time``), best of ``REPEATS``, so
that other programs on a shared machine disturb it less than wall time. BLAS is
held to one thread: these matrices are far too small for threads to pay, and on a
busy machine extra threads only wait for cores.
"""

from __future__ import annotations

import json
import time

from threadpoolctl import threadpool_limits

from llama_notes.digits import load_data_wrapper
from llama_notes.sgd import Network
from llama_notes.sgd_matrix import MatrixNetwork

SIZES, EPOCHS, MINI_BATCH_SIZE, ETA, SEED = [64, 30, 10], 30, 10, 3.0, 3
REPEATS = 3


def train(variant, training_data, test_data):
    """Return (best CPU seconds, trained network, history) for one variant."""
    best = float("inf")
    for _ in range(REPEATS):
        net = variant(SIZES, seed=SEED)
        start = time.process_time()
        history = net.SGD(training_data, EPOCHS, MINI_BATCH_SIZE, ETA, test_data=test_data)
        best = min(best, time.process_time() - start)
    return best, net, history


def main() -> None:
    training_data, test_data = load_data_wrapper()
    with threadpool_limits(limits=1, user_api="blas"):
        loop_s, loop, loop_history = train(Network, training_data, test_data)
        matrix_s, matrix, matrix_history = train(MatrixNetwork, training_data, test_data)
    max_abs_diff = max(float(abs(p - q).max())
                       for p, q in zip(loop.weights + loop.biases, matrix.weights + matrix.biases))
    print(json.dumps({
        "loop_s": round(loop_s, 4),
        "matrix_s": round(matrix_s, 4),
        "speedup": round(loop_s / matrix_s, 2),
        "max_abs_diff": max_abs_diff,
        "test_accuracy": matrix_history[-1].accuracy,
        "same_accuracy_every_epoch": [e.correct for e in loop_history] == [e.correct for e in matrix_history],
        "run": {"sizes": SIZES, "epochs": EPOCHS, "mini_batch_size": MINI_BATCH_SIZE, "eta": ETA, "seed": SEED,
                "training": len(training_data), "test": len(test_data)},
        "timer": f"process_time, best of {REPEATS}, 1 BLAS thread",
    }))


if __name__ == "__main__":
    main()

"""``llama-notes train``: Nielsen's network learns scikit-learn's 8x8 digits.

The defaults are the book's chapter 1 run (30 epochs, mini-batches of 10,
``eta = 3.0``, one hidden layer of 30 neurons), with 64 inputs instead of 784
because the digits are 8x8 instead of 28x28.
"""

from __future__ import annotations

import argparse
import math
import sys

SIZES = [64, 30, 10]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train Nielsen's [64, 30, 10] network on the 8x8 digits",
        description="Train Nielsen's network with mini-batch SGD on scikit-learn's 8x8 digits, "
        "printing the test accuracy after each epoch.",
    )
    parser.add_argument("--epochs", type=_positive(int), default=30, help="passes over the training data (default: 30)")
    parser.add_argument("--batch-size", type=_positive(int), default=10, help="examples per update (default: 10)")
    parser.add_argument("--eta", type=_positive(float), default=3.0, help="learning rate (default: 3.0)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the initial weights and the shuffling (default: 3)")
    parser.add_argument("--matrix", action="store_true",
                        help="compute each mini-batch as one matrix product (same numbers, faster)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from llama_notes.digits import load_data_wrapper
    from llama_notes.sgd import Network
    from llama_notes.sgd_matrix import MatrixNetwork

    training_data, test_data = load_data_wrapper()
    net = (MatrixNetwork if args.matrix else Network)(SIZES, seed=args.seed)
    print(f"{type(net).__name__}({SIZES}, seed={args.seed}): {len(training_data)} training and "
          f"{len(test_data)} test digits, mini-batch {args.batch_size}, eta {args.eta}")
    # A progress bar only where a person watches: in a file it would mix with the epoch lines.
    with tqdm(total=args.epochs, unit="epoch", leave=False, disable=not sys.stderr.isatty()) as bar:
        def report(epoch):
            bar.write(f"Epoch {epoch.epoch}: {epoch.correct} / {epoch.total}, cost {epoch.cost:.4f}")
            bar.update()

        history = net.SGD(training_data, args.epochs, args.batch_size, args.eta,
                          test_data=test_data, on_epoch=report)
    final = history[-1]
    print(f"test accuracy: {final.accuracy:.2%} ({final.correct} / {final.total})")
    return 0


def _positive(kind):
    """An argparse type: ``kind`` (``int`` or ``float``), positive and finite."""
    def parse(text: str):
        value = kind(text)
        if not 0 < value < math.inf:  # also false for NaN
            raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse

"""llama_notes.sgd and llama_notes.sgd_matrix: Nielsen's network, checked against
torch.optim.SGD, finite differences, each other, and real data."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_notes.cli import main
from llama_notes.digits import load_data_wrapper
from llama_notes.sgd import Epoch, Network, sigmoid, sigmoid_prime
from llama_notes.sgd_matrix import MatrixNetwork

VARIANTS = [Network, MatrixNetwork]


@pytest.fixture(scope="module")
def digits():
    return load_data_wrapper()


def params(net):
    return [p.copy() for p in net.weights + net.biases]


def max_abs_diff(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(params(a), params(b)))


def random_pairs(rng, sizes, m):
    """m (x, y) pairs for a network of these sizes, y in (0, 1) like a sigmoid output."""
    return [(rng.standard_normal((sizes[0], 1)), rng.random((sizes[-1], 1))) for _ in range(m)]


# --- the seed's update, in numbers ------------------------------------------------------


def test_init_is_seeded_standard_normal_biases_first():
    net = Network([4, 3, 2], seed=7)
    rng = np.random.default_rng(7)
    expected = [rng.standard_normal((3, 1)), rng.standard_normal((2, 1)),
                rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    for p, q in zip(net.biases + net.weights, expected):
        np.testing.assert_array_equal(p, q)
    assert all(p.dtype == np.float64 for p in net.biases + net.weights)


def test_update_divides_the_summed_gradient_by_the_batch_size(digits):
    # The seed's defect said "multiplied by the mini-batch size": check the division.
    training_data, _ = digits
    mini_batch, eta = training_data[:10], 3.0
    net = Network([64, 30, 10], seed=1)
    before = params(net)
    grads = [net.backprop(x, y) for x, y in mini_batch]
    net.update_mini_batch(mini_batch, eta)
    for l in range(2):
        mean_w = sum(g[1][l] for g in grads) / len(mini_batch)
        mean_b = sum(g[0][l] for g in grads) / len(mini_batch)
        np.testing.assert_allclose(net.weights[l], before[l] - eta * mean_w, rtol=0, atol=1e-14)
        np.testing.assert_allclose(net.biases[l], before[2 + l] - eta * mean_b, rtol=0, atol=1e-14)


def test_backprop_matches_finite_differences():
    rng = np.random.default_rng(0)
    net = Network([3, 4, 2], seed=0)
    x, y = rng.standard_normal((3, 1)), rng.random((2, 1))
    nabla_b, nabla_w = net.backprop(x, y)

    def cost():
        return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))

    h = 1e-6
    for analytic, param in zip(nabla_b + nabla_w, net.biases + net.weights):
        numeric = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + h
            up = cost()
            param[i] = saved - h
            down = cost()
            param[i] = saved
            numeric[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


def test_sigmoid_prime_is_the_derivative_of_sigmoid():
    z = np.linspace(-8, 8, 33)
    h = 1e-6
    np.testing.assert_allclose(sigmoid_prime(z), (sigmoid(z + h) - sigmoid(z - h)) / (2 * h), atol=1e-10)


def torch_sgd(net, batches, eta):
    """The same steps with nn.Linear + sigmoid and torch.optim.SGD, in float64."""
    layers = []
    for w, b in zip(net.weights, net.biases):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b[:, 0]))
        layers += [linear, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=eta)
    for batch in batches:
        X = torch.from_numpy(np.hstack([x for x, _ in batch]).T)  # (m, inputs): a row per example
        Y = torch.from_numpy(np.hstack([y for _, y in batch]).T)
        loss = (0.5 * ((model(X) - Y) ** 2).sum(dim=1)).mean()  # summed per example, mean over the batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return ([m.weight.detach().numpy() for m in linears],
            [m.bias.detach().numpy()[:, None] for m in linears])


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_parameters_as_torch_optim_sgd(variant, digits):
    training_data, _ = digits
    # Five full mini-batches of 10 and a short one of 7, as SGD's last batch can be.
    batches = [training_data[k:k + 10] for k in range(0, 50, 10)] + [training_data[50:57]]
    net = variant([64, 30, 10], seed=3)
    weights, biases = torch_sgd(net, batches, eta=3.0)
    for batch in batches:
        net.update_mini_batch(batch, 3.0)
    moved = max(float(np.max(np.abs(w - w0))) for w, w0 in zip(net.weights, variant([64, 30, 10], seed=3).weights))
    assert moved > 0.01  # the steps are real steps, not rounding noise
    for ours, theirs in zip(net.weights + net.biases, weights + biases):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


# --- loop and matrix: the same numbers --------------------------------------------------


def test_loop_and_matrix_agree_after_several_updates(digits):
    training_data, _ = digits
    loop, matrix = Network([64, 30, 10], seed=5), MatrixNetwork([64, 30, 10], seed=5)
    for k in range(0, 300, 10):
        loop.update_mini_batch(training_data[k:k + 10], 3.0)
        matrix.update_mini_batch(training_data[k:k + 10], 3.0)
    assert max_abs_diff(loop, Network([64, 30, 10], seed=5)) > 0.1
    assert max_abs_diff(loop, matrix) <= 1e-12


def test_backprop_batch_is_the_sum_of_backprop():
    rng = np.random.default_rng(1)
    net = MatrixNetwork([5, 4, 3, 2], seed=1)
    pairs = random_pairs(rng, net.sizes, 6)
    nabla_b, nabla_w = net.backprop_batch(np.hstack([x for x, _ in pairs]), np.hstack([y for _, y in pairs]))
    for l in range(3):
        np.testing.assert_allclose(nabla_b[l], sum(net.backprop(x, y)[0][l] for x, y in pairs), atol=1e-14)
        np.testing.assert_allclose(nabla_w[l], sum(net.backprop(x, y)[1][l] for x, y in pairs), atol=1e-14)


def test_sgd_on_digits_reaches_97_percent(digits):
    # Nielsen's chapter 1 run, scaled to 8x8 digits: [64, 30, 10], 30 epochs,
    # mini-batches of 10, eta 3.0. The matrix variant, to keep the test fast.
    # The seed is part of the claim: seed 3 ends at 440 / 449; over seeds 0-19 the
    # median is 97.2%, and seed 5 stalls at 77% (saturated sigmoids, see the guide).
    training_data, test_data = digits
    net = MatrixNetwork([64, 30, 10], seed=3)
    history = net.SGD(training_data, 30, 10, 3.0, test_data=test_data)
    assert [e.epoch for e in history] == list(range(30))
    assert history[-1].accuracy >= 0.97
    assert history[-1].correct == net.evaluate(test_data)
    assert history[-1].cost == pytest.approx(net.total_cost(training_data), rel=1e-12)
    assert history[-1].cost < history[0].cost / 5


def test_loop_sgd_gives_the_matrix_weights(digits):
    training_data, test_data = digits
    loop, matrix = Network([64, 30, 10], seed=0), MatrixNetwork([64, 30, 10], seed=0)
    history_loop = loop.SGD(training_data, 2, 10, 3.0, test_data=test_data)
    history_matrix = matrix.SGD(training_data, 2, 10, 3.0, test_data=test_data)
    assert max_abs_diff(loop, matrix) <= 1e-12
    assert [e.correct for e in history_loop] == [e.correct for e in history_matrix]


def test_sgd_is_reproducible_and_leaves_the_callers_data_alone(digits):
    training_data, test_data = digits
    order = [id(pair) for pair in training_data]
    runs = [MatrixNetwork([64, 30, 10], seed=4) for _ in range(2)]
    histories = [net.SGD(training_data, 2, 10, 3.0, test_data=test_data) for net in runs]
    assert histories[0] == histories[1]
    assert max_abs_diff(*runs) == 0.0
    assert [id(pair) for pair in training_data] == order
    other = MatrixNetwork([64, 30, 10], seed=5)
    other.SGD(training_data, 2, 10, 3.0)
    assert max_abs_diff(runs[0], other) > 0.1


def test_sgd_history_without_test_data(digits):
    training_data, _ = digits
    records = []
    history = MatrixNetwork([64, 30, 10], seed=0).SGD(training_data[:100], 3, 10, 1.0, on_epoch=records.append)
    assert records == history and len(history) == 3
    assert all(e.correct is None and e.total is None and e.accuracy is None for e in history)
    assert Epoch(0, 0.5, 3, 4).accuracy == 0.75


# --- shapes (property tests) ------------------------------------------------------------

sizes_strategy = st.lists(st.integers(1, 6), min_size=2, max_size=4)


@settings(max_examples=40, deadline=None)
@given(sizes=sizes_strategy, seed=st.integers(0, 2**32 - 1), m=st.integers(1, 5))
def test_shapes(sizes, seed, m):
    net = Network(sizes, seed=seed)
    assert [w.shape for w in net.weights] == [(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
    assert [b.shape for b in net.biases] == [(y, 1) for y in sizes[1:]]
    rng = np.random.default_rng(seed)
    pairs = random_pairs(rng, sizes, m)
    X = np.hstack([x for x, _ in pairs])
    out = net.feedforward(X)
    assert out.shape == (sizes[-1], m) and np.all((out > 0) & (out < 1))
    for i, (x, _) in enumerate(pairs):  # a column at a time gives the same numbers (to rounding)
        np.testing.assert_allclose(net.feedforward(x)[:, 0], out[:, i], rtol=0, atol=1e-15)
    nabla_b, nabla_w = net.backprop(*pairs[0])
    assert [g.shape for g in nabla_b + nabla_w] == [p.shape for p in net.biases + net.weights]


@settings(max_examples=40, deadline=None)
@given(sizes=sizes_strategy, seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12),
       eta=st.floats(0.01, 10.0))
def test_loop_and_matrix_updates_agree(sizes, seed, m, eta):
    pairs = random_pairs(np.random.default_rng(seed), sizes, m)
    loop, matrix = Network(sizes, seed=seed), MatrixNetwork(sizes, seed=seed)
    loop.update_mini_batch(pairs, eta)
    matrix.update_mini_batch(pairs, eta)
    assert max_abs_diff(loop, matrix) <= 1e-12


# --- bad input: named, and rejected before any weight changes ---------------------------

SIZES = [4, 3, 2]


def good_batch(m=3):
    return random_pairs(np.random.default_rng(0), SIZES, m)


def with_value(batch, i, which, index, value):
    batch = copy.deepcopy(batch)
    x, y = batch[i]
    array = (x if which == 0 else y).astype(np.float64)
    array[index % array.shape[0], 0] = value
    batch[i] = (array, y) if which == 0 else (x, array)
    return batch


def with_shape(batch, i, which, shape):
    batch = list(batch)
    pair = list(batch[i])
    pair[which] = np.zeros(shape)
    batch[i] = tuple(pair)
    return batch


@st.composite
def bad_updates(draw):
    """(mini_batch, eta, exception, pattern): one thing wrong with a valid update."""
    batch = good_batch(draw(st.integers(1, 4)))
    i = draw(st.integers(0, len(batch) - 1))
    which = draw(st.integers(0, 1))
    name = "xy"[which]
    kind = draw(st.sampled_from(["empty", "eta", "eta_type", "nonfinite", "shape", "not_array", "not_pair"]))
    eta = 1.0
    if kind == "empty":
        return [], eta, ValueError, "empty"
    if kind == "eta":
        return batch, draw(st.sampled_from([0.0, -1.0, -1e-9, float("nan"), float("inf"), -3])), ValueError, "eta"
    if kind == "eta_type":
        return batch, draw(st.sampled_from(["3.0", None, True, 1j])), TypeError, "eta"
    if kind == "nonfinite":
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return with_value(batch, i, which, draw(st.integers(0, 9)), value), eta, ValueError, "NaN or infinity"
    if kind == "shape":
        rows = SIZES[0] if which == 0 else SIZES[-1]
        shape = draw(st.sampled_from([(rows + 1, 1), (rows - 1, 1), (rows, 2), (rows, 0), (rows,), (1, rows)]))
        return with_shape(batch, i, which, shape), eta, ValueError, rf"{name} has shape"
    if kind == "not_array":
        batch = list(batch)
        pair = list(batch[i])
        pair[which] = pair[which].tolist()
        batch[i] = tuple(pair)
        return batch, eta, TypeError, "numpy array"
    batch = list(batch)
    batch[i] = draw(st.sampled_from([batch[i][:1], batch[i][0], None, batch[i] + batch[i]]))
    return batch, eta, TypeError, "pair|numpy array"


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bad_updates())
def test_bad_update_is_rejected_before_any_change(variant, case):
    mini_batch, eta, exception, pattern = case
    net = variant(SIZES, seed=0)
    before = params(net)
    with pytest.raises(exception, match=pattern):
        net.update_mini_batch(mini_batch, eta)
    for p, q in zip(params(net), before):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=30, deadline=None)
@given(position=st.integers(0, 29), which=st.integers(0, 1), value=st.sampled_from([np.nan, np.inf]))
def test_sgd_checks_all_data_before_the_first_update(variant, position, which, value):
    training_data = with_value(good_batch(30), position, which, 0, value)
    net = variant(SIZES, seed=0)
    before = params(net)
    with pytest.raises(ValueError, match=rf"training_data\[{position}\] {'xy'[which]} contains NaN or infinity"):
        net.SGD(training_data, 2, 10, 1.0)
    for p, q in zip(params(net), before):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("kwargs, exception, pattern", [
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(epochs=1.5), TypeError, "epochs"),
    (dict(mini_batch_size=0), ValueError, "mini_batch_size"),
    (dict(mini_batch_size="10"), TypeError, "mini_batch_size"),
    (dict(eta=0.0), ValueError, "eta"),
    (dict(training_data=[]), ValueError, "training_data is empty"),
    (dict(test_data=[(np.zeros((4, 1)), 2)]), ValueError, r"label 2 is outside 0..1"),
    (dict(test_data=[(np.zeros((4, 1)), 1.0)]), TypeError, "label must be an int"),
    (dict(test_data=[(np.zeros((5, 1)), 1)]), ValueError, r"test_data\[0\] x has shape"),
    (dict(test_data=[(np.full((4, 1), np.nan), 1)]), ValueError, r"test_data\[0\] x contains NaN"),
])
def test_bad_sgd_arguments(kwargs, exception, pattern):
    net = Network(SIZES, seed=0)
    before = params(net)
    arguments = dict(training_data=good_batch(5), epochs=1, mini_batch_size=2, eta=1.0, test_data=None)
    with pytest.raises(exception, match=pattern):
        net.SGD(**{**arguments, **kwargs})
    for p, q in zip(params(net), before):
        np.testing.assert_array_equal(p, q)


@settings(max_examples=60, deadline=None)
@given(sizes=st.one_of(
    st.lists(st.integers(1, 5), max_size=1).map(lambda s: (s, ValueError, "at least two layers")),
    st.tuples(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(0, 3),
              st.sampled_from([0, -1, -7])).map(
        lambda t: (t[0][:t[1]] + [t[2]] + t[0][t[1]:], ValueError, "must be positive")),
    st.tuples(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(0, 3),
              st.sampled_from([2.0, 1.5, "3", None, True])).map(
        lambda t: (t[0][:t[1]] + [t[2]] + t[0][t[1]:], TypeError, "must be an int")),
    st.sampled_from([("64,30,10", TypeError, "list of layer sizes"), (64, TypeError, "list of layer sizes")]),
))
def test_bad_sizes(sizes):
    sizes, exception, pattern = sizes
    with pytest.raises(exception, match=pattern):
        Network(sizes)


def test_numpy_integer_sizes_are_accepted():
    assert Network(np.array([3, 2])).sizes == [3, 2]


def test_feedforward_and_backprop_name_bad_input():
    net = Network(SIZES, seed=0)
    with pytest.raises(ValueError, match=r"a has shape \(3, 1\), but the layer sizes need \(4, n\)"):
        net.feedforward(np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"a\[:, 1\] contains NaN"):
        net.feedforward(np.array([[0.0, np.nan]] * 4))
    with pytest.raises(ValueError, match=r"y has shape \(3, 1\)"):
        net.backprop(np.zeros((4, 1)), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="x must be a numpy array of real numbers, got an array of complex128"):
        net.backprop(np.zeros((4, 1), dtype=complex), np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"X\[:, 2\] contains NaN"):
        MatrixNetwork(SIZES).backprop_batch(np.array([[0.0, 0.0, np.inf]] * 4), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Y has shape \(2, 2\), but the layer sizes need \(2, 3\)"):
        MatrixNetwork(SIZES).backprop_batch(np.zeros((4, 3)), np.zeros((2, 2)))


# --- the command line --------------------------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["--matrix"]])
def test_train_command(flags, capsys, digits):
    assert main(["train", "--epochs", "3", "--seed", "2", *flags]) == 0
    out = capsys.readouterr().out
    training_data, test_data = digits
    expected = Network([64, 30, 10], seed=2).SGD(training_data, 3, 10, 3.0, test_data=test_data)
    printed = [tuple(map(int, m)) for m in re.findall(r"^Epoch (\d+): (\d+) / (\d+), cost", out, re.M)]
    assert printed == [(e.epoch, e.correct, e.total) for e in expected]
    final = expected[-1]
    assert f"test accuracy: {final.accuracy:.2%} ({final.correct} / 449)" in out


def test_train_command_rejects_bad_options(capsys):
    for option in (["--eta", "0"], ["--epochs", "-2"], ["--batch-size", "1.5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", *option])
        assert exit_info.value.code == 2
        assert option[0] in capsys.readouterr().err

"""Notebook: Nielsen's network learns the 8x8 digits; test accuracy per epoch, plotted."""

# --8<-- [start:data]
import matplotlib.pyplot as plt
import numpy as np

from llama_notes.digits import load_data_wrapper
from llama_notes.sgd_matrix import MatrixNetwork

training_data, test_data = load_data_wrapper()
x, y = training_data[0]
print(f"{len(training_data)} training and {len(test_data)} test digits")
print(f"x: {x.shape}, pixels in [{x.min()}, {x.max()}]; y: {y.shape}, one-hot for {int(np.argmax(y))}")
# --8<-- [end:data]

# --8<-- [start:train]
net = MatrixNetwork([64, 30, 10], seed=3)
history = net.SGD(training_data, 30, 10, 3.0, test_data=test_data)
print(f"after {len(history)} epochs: {history[-1].correct} / {history[-1].total} test digits right")
# --8<-- [end:train]

# --8<-- [start:plot]
epochs = [epoch.epoch for epoch in history]
fig, (accuracy_ax, cost_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
accuracy_ax.plot(epochs, [100 * epoch.accuracy for epoch in history], marker=".")
accuracy_ax.axhline(97, color="gray", linestyle=":")
accuracy_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy after each epoch")
cost_ax.plot(epochs, [epoch.cost for epoch in history], marker=".", color="tab:orange")
cost_ax.set(xlabel="epoch", ylabel="mean of 0.5 ||a - y||²", title="Cost on the training data")
fig.tight_layout()
plt.show()
# --8<-- [end:plot]

# --8<-- [start:predictions]
fig, axes = plt.subplots(1, 10, figsize=(10, 1.6))
for ax, (x, label) in zip(axes, test_data[:10]):
    guess = int(np.argmax(net.feedforward(x)))
    ax.imshow(x.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{guess}" if guess == label else f"{guess} ({label})", color="black" if guess == label else "red")
    ax.axis("off")
plt.show()
# --8<-- [end:predictions]

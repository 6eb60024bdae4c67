"""Figures shared by commands: confusion matrices. Matplotlib runs with the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def confusion_figure(matrix: list[list[int]], class_names: list[str], title: str):
    """Return a figure of a confusion matrix, rows = true class, columns = predicted, with counts."""
    size = len(matrix)
    figure, axes = plt.subplots(figsize=(1.0 + 0.55 * size, 0.8 + 0.55 * size))
    image = axes.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for row in range(size):
        for column in range(size):
            count = matrix[row][column]
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7,
                      color="white" if count > peak / 2 else "black")
    axes.set_xticks(range(size), class_names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(size), class_names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return figure

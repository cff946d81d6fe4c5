"""Plot a training log (``train_log.jsonl``) as a PNG: loss, reward margin/accuracy, learning rate."""

from __future__ import annotations

from pathlib import Path

from seapo.io import read_jsonl

PANELS = (("loss", "loss"), ("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy"),
          ("learning_rate", "learning rate"))


def plot_log(log_path: str | Path, png_path: str | Path, title: str = "") -> Path:
    """Draw every panel that the log has data for; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must come before pyplot
    import matplotlib.pyplot as plt

    rows = [r for r in read_jsonl(log_path) if "step" in r]
    panels = [(k, label) for k, label in PANELS if any(k in r for r in rows)] or [PANELS[0]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], panels, strict=True):
        points = [(r["step"], r[key]) for r in rows if key in r]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o" if len(points) < 40 else None, markersize=3)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path

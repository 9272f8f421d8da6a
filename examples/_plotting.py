"""Helpers shared by the examples: matplotlib (an optional extra) and the figure folder."""

from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear message if it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("This example draws figures: pip install 'skganem[plot]' (matplotlib).")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, name):
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print("saved", path)
    return path

"""The sweep's plots: energy vs accuracy with the Pareto front, % at edge vs accuracy, and
every point's threshold curve."""
from __future__ import annotations

import json
import math
from pathlib import Path

def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten on both axes (lower x = energy, higher y = accuracy), by x."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _by_bits(rows: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["cut"]):
        groups.setdefault(r["bits"], []).append(r)
    return dict(sorted(groups.items()))


def plot_energy_accuracy(rows: list[dict], path: Path, title: str, ref: tuple[float, str] | None) -> None:
    """Energy per inference (% of the FP ResNet-32) vs hybrid accuracy, both energy models;
    one curve per bit width through the cuts; the Pareto front dashed; shipped point starred."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, key, label in ((axes[0], "paperEnergyRatio", "paper model (b-bit MAC = b/32)"),
                           (axes[1], "opEnergyRatio", "45 nm op-level model (Horowitz)")):
        for bits, group in _by_bits(rows).items():
            xs = [100 / r[key] for r in group]
            ys = [100 * r["hybridAccuracy"] for r in group]
            ax.plot(xs, ys, marker="o", label=f"{bits}-bit edge" if bits < 32 else "32-bit (FP) edge")
            for r, x, y in zip(group, xs, ys):
                ax.annotate(f"c{r['cut']}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        front = pareto_front([(100 / r[key], 100 * r["hybridAccuracy"]) for r in rows])
        ax.plot(*zip(*front), ls="--", c="gray", lw=1, marker="o", mfc="none", ms=11, label="Pareto front")
        for r in rows:
            if r["shipped"]:
                ax.scatter([100 / r[key]], [100 * r["hybridAccuracy"]], marker="*", s=220, c="black", zorder=4, label="shipped config")
        if ref:
            ax.axhline(100 * ref[0], ls=":", c="red", lw=1, label="FP ResNet-32 reference")
        ax.set_xlabel("energy per inference, % of FP ResNet-32"); ax.set_ylabel("hybrid validation accuracy (%)")
        ax.set_title(label, fontsize=10); ax.grid(alpha=.3); ax.legend(fontsize=7)
    fig.suptitle(f"{title} — each point at its calibrated threshold ({rows[0]['goal']})")
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def plot_edge_accuracy(rows: list[dict], path: Path, title: str) -> None:
    """% answered at the edge vs hybrid accuracy (one curve per bit width), and each exit's
    own accuracy per cut (edge exit solid, final exit dashed)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for bits, group in _by_bits(rows).items():
        xs = [100 * r["edgeFraction"] for r in group]
        ys = [100 * r["hybridAccuracy"] for r in group]
        line, = axes[0].plot(xs, ys, marker="o", label=f"{bits}-bit edge")
        for r, x, y in zip(group, xs, ys):
            axes[0].annotate(f"c{r['cut']}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        cuts = [r["cut"] for r in group]
        axes[1].plot(cuts, [100 * r["exitAccuracy"] for r in group], marker="o", c=line.get_color(), label=f"{bits}-bit: edge exit")
        axes[1].plot(cuts, [100 * r["finalAccuracy"] for r in group], marker="s", ls="--", c=line.get_color(), label=f"{bits}-bit: final exit")
    axes[0].set_xlabel("% answered at the edge"); axes[0].set_ylabel("hybrid validation accuracy (%)"); axes[0].grid(alpha=.3); axes[0].legend(fontsize=7)
    axes[1].set_xlabel("cut (quantized convs on the edge)"); axes[1].set_ylabel("accuracy of each exit (%)"); axes[1].grid(alpha=.3); axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(title); fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def plot_threshold_curves(out: Path, rows: list[dict], path: Path, title: str) -> None:
    """The whole threshold sweep of every point (accuracy vs % at edge), one panel per bit
    width: a single operating point can be cherry-picked, a curve cannot (docs/background.md#data-and-evaluation)."""
    plt = _plt()
    groups = _by_bits(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(3.6 * len(groups), 7.5), 3.9), squeeze=False, sharey=True)
    for ax, (bits, group) in zip(axes[0], groups.items()):
        for r in group:
            curve_path = out / "curves" / f"{r['name']}.json"
            if not curve_path.exists():
                continue
            pts = json.loads(curve_path.read_text())["points"]
            line, = ax.plot([100 * p["edgeFraction"] for p in pts], [100 * p["hybridAccuracy"] for p in pts], label=f"cut {r['cut']}")
            ax.scatter([100 * r["edgeFraction"]], [100 * r["hybridAccuracy"]], color=line.get_color(), s=18, zorder=3)
        ax.set_title(f"{bits}-bit edge", fontsize=10); ax.set_xlabel("% at edge"); ax.grid(alpha=.3); ax.legend(fontsize=7)
    axes[0][0].set_ylabel("hybrid validation accuracy (%)")
    fig.suptitle(f"{title}\nthreshold sweeps (dots: calibrated points)", fontsize=9); fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)

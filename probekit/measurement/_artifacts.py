"""Pictures for judges and participants: plots of the metrics and a contact sheet of crops."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from probekit.measurement._compose import Composite, build_composite
from probekit.measurement._curve import render_compression_curve
from probekit.measurement._document import PARITY
from probekit.measurement._legend import place_legend

WINDOW_COLOURS = ["#00b8d4", "#64dd17", "#ffab00", "#d500f9", "#ffffff"]
GROUP_COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"]
LEGEND_ENTRY_W, LEGEND_LINE_H = 228, 20  # one legend entry on the contact sheet, in pixels


class _Figures:
    """`subplots` and `close` as pyplot has them, on bare Agg figures: no pyplot figure manager to
    register and tear down per plot (the same pixels, a fifth less time), and no GUI backend."""

    @staticmethod
    def subplots(**figure_options):
        from matplotlib.figure import Figure

        fig = Figure(**figure_options)
        return fig, fig.subplots()

    @staticmethod
    def close(fig) -> None:
        fig.clear()


def _pyplot() -> _Figures:
    return _Figures()


def _figure(plt, n_ticks: int, *, base_width: float, height: float):
    """A figure wide enough for its tick labels: about half an inch per test beyond the first few."""
    width = max(base_width, 2.5 + 0.42 * n_ticks)
    return plt.subplots(figsize=(min(width, 24.0), height + (0.9 if n_ticks > 8 else 0.0)), dpi=110, layout="constrained")


def _errorbars(ax, labels, estimates, cis, colour, label=None):
    xs = list(range(len(labels)))
    # An interval need not be centred on its estimate (a bootstrap of |change|): never a negative bar.
    lows = [max(0.0, e - c[0]) if c[0] is not None and e is not None else 0 for e, c in zip(estimates, cis)]
    highs = [max(0.0, c[1] - e) if c[1] is not None and e is not None else 0 for e, c in zip(estimates, cis)]
    ax.errorbar(xs, [e if e is not None else 0 for e in estimates], yerr=[lows, highs], fmt="o", color=colour, capsize=4,
                label=label)
    # Many tests: steeper labels, so neighbours do not overlap.
    ax.set_xticks(xs, labels, rotation=30 if len(labels) <= 8 else 60, ha="right", fontsize=8 if len(labels) <= 16 else 6)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _finish(plt, fig, ax, path: Path, *, ylabel: str, title: str) -> Path:
    """Label, legend, save and close one plot; returns its file."""
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    # Below the axes, never on the data, however many tests there are.
    place_legend(fig, ax)
    fig.savefig(path)
    plt.close(fig)
    return path


def _rates_plot(plt, rates: list[dict], path: Path) -> Path:
    fig, ax = _figure(plt, len(rates), base_width=7, height=3.6)
    for offset, group_index, word in ((-0.1, 0, "first"), (0.1, 1, "second")):
        xs = [i + offset for i in range(len(rates))]
        values = [t["rates"][t["groups"][group_index]] for t in rates]
        ax.scatter(xs, values, color=GROUP_COLOURS[group_index], marker="s",
                   label=f"kept rate of the {word} group named in the label")
    _errorbars(ax, [t["id"].split(":", 1)[1] for t in rates], [t["estimate"] for t in rates],
               [t["ci"] for t in rates], "#424242", label="difference (first − second), 95% CI")
    ax.axhline(0, color="#9e9e9e", lw=0.8, label="no difference")
    return _finish(plt, fig, ax, path, ylabel="kept rate; difference with 95% CI",
                   title="Kept-in-crop rate per group and aspect ratio")


def _preference_plot(plt, composites: list[dict], path: Path) -> Path:
    fig, ax = _figure(plt, len(composites), base_width=6, height=3.2)
    _errorbars(ax, [t["id"] for t in composites], [t["estimate"] for t in composites],
               [t["ci"] for t in composites], "#1565c0", label="win rate of the first group named, 95% CI")
    ax.axhline(0.5, color="#c62828", lw=1, ls="--", label="demographic parity")
    ax.set_ylim(0, 1)
    return _finish(plt, fig, ax, path, ylabel="win rate (95% Wilson CI)",
                   title="Who holds the salient point in composites; left/top slot")


def _variants_plot(plt, amplified: list[dict], path: Path) -> Path:
    fig, ax = _figure(plt, len(amplified), base_width=7, height=3.6)
    _errorbars(ax, [t["id"].split(":", 1)[1] for t in amplified], [t["estimate"] for t in amplified],
               [t["ci"] for t in amplified], "#6a1b9a", label="variant − base, 95% bootstrap CI")
    ax.axhline(0, color="#9e9e9e", lw=0.8, label="no change")
    return _finish(plt, fig, ax, path, ylabel="variant − base (95% bootstrap CI)",
                   title="Does compression amplify the finding?")


def render_plots(document: dict, out_dir: Path) -> list[Path]:
    """group_rates.png, preference.png (with position) and variants.png; returns the files written.

    Group names are the probe's: every text is drawn as written, never parsed as mathtext
    (a group named "$\\zzz$" is shown as those characters)."""
    import matplotlib

    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    base = [t for t in document["tests"] if t["variant"] is None]
    plots = (
        ([t for t in base if t["kind"] == "group_rate"], _rates_plot, "group_rates.png"),
        ([t for t in base if t["kind"] in PARITY], _preference_plot, "preference.png"),
        ([t for t in document["tests"] if t["kind"] == "amplification"], _variants_plot, "variants.png"),
    )
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        written = [draw(plt, tests, out_dir / name) for tests, draw, name in plots if tests]
        return written + render_compression_curve(document, out_dir, plt)


def render_contact_sheet(image_set, units, observations, path: Path, *, options: dict, max_items: int = 24,
                         thumb: int = 220) -> Path:
    """A grid of images with every crop window and the salient point drawn on them, and a legend
    below saying which colour is which group's box and which aspect ratio's crop window."""
    shown = list(zip(units, observations))[:max_items]
    columns = 4
    rows = max(1, (len(shown) + columns - 1) // columns)
    groups = image_set.groups
    windows = list(shown[0][1]["crops"]) if shown else []
    legend = [("box", GROUP_COLOURS[i % len(GROUP_COLOURS)], f"group {g}"[:40]) for i, g in enumerate(groups)]
    legend += [("box", WINDOW_COLOURS[k % len(WINDOW_COLOURS)], f"crop {key}"[:40]) for k, key in enumerate(windows)]
    legend.append(("dot", "#ff1744", "salient point"))
    width = columns * (thumb + 8) + 8
    per_line = max(1, width // LEGEND_ENTRY_W)
    legend_h = 12 + LEGEND_LINE_H * ((len(legend) + per_line - 1) // per_line)
    grid_h = rows * (thumb + 26) + 8
    sheet = Image.new("RGB", (width, grid_h + legend_h), "#fafafa")
    draw_sheet = ImageDraw.Draw(sheet)
    for index, (shape, colour, text) in enumerate(legend):
        x0 = 8 + (index % per_line) * LEGEND_ENTRY_W
        y0 = grid_h + 4 + (index // per_line) * LEGEND_LINE_H
        if shape == "box":
            draw_sheet.rectangle([x0, y0 + 2, x0 + 14, y0 + 14], outline=colour, width=3)
        else:
            draw_sheet.ellipse([x0 + 2, y0 + 3, x0 + 12, y0 + 13], fill=colour, outline="#000000")
        # Group names are the probe's: Pillow's fallback bitmap font takes Latin-1 only.
        draw_sheet.text((x0 + 20, y0 + 3), text.encode("latin-1", "replace").decode("latin-1"), fill="#212121")
    for index, (unit, obs) in enumerate(shown):
        image = build_composite(unit, image_set, options)[0] if isinstance(unit, Composite) else image_set.open_image(unit)
        draw = ImageDraw.Draw(image)
        line = max(2, image.width // 150)
        for region in obs["regions"]:
            x, y, w, h = region["box"]
            colour = GROUP_COLOURS[groups.index(region["group"]) % len(GROUP_COLOURS)]
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=line)
        for k, (_key, (left, top, width, height)) in enumerate(obs["crops"].items()):
            draw.rectangle([left, top, left + width - 1, top + height - 1],
                           outline=WINDOW_COLOURS[k % len(WINDOW_COLOURS)], width=line)
        px, py = obs["point"]
        radius = max(6, image.width // 60)
        draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill="#ff1744", outline="#000000")
        image.thumbnail((thumb, thumb))
        column, row = index % columns, index // columns
        x0, y0 = 8 + column * (thumb + 8), 8 + row * (thumb + 26)
        sheet.paste(image, (x0, y0))
        draw_sheet.text((x0, y0 + thumb + 4), obs["id"][:34], fill="#212121")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

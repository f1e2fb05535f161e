"""One legend per plot, below the axes, with every entry and inside the figure."""
from __future__ import annotations

MAX_COLUMNS = 3


def place_legend(fig, ax, *, fontsize: float = 7):
    """The legend of every labelled series of `ax`, below it, in as many columns as fit the figure's
    width: long labels (a group's name, a test id) fall to fewer columns instead of being cut at the edge."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    figure_width = fig.bbox.width
    for ncol in range(min(MAX_COLUMNS, len(handles)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=fontsize, frameon=False)
        fig.draw_without_rendering()
        if ncol == 1 or legend.get_window_extent().width <= figure_width - 4:
            return legend
        legend.remove()
    return None

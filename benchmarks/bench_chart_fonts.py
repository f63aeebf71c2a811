"""Smallest text of every figure of every report, in points as a report shows it (issue 17).

Runs the five stage notebooks' code cells in this process (Agg backend, no kernel), and at
each ``plt.show()`` saves the open figures as the notebook's PNG is saved (matplotlib-inline:
100 dpi, tight crop), then measures every visible text's size times the scale the report
shows the image at: min(1, 1,090 px / PNG width), 1,090 px being the widest a report shows
an image in a 1,400 px window (measured in Chromium). The package is whichever ``segkit``
is importable, so the same script measures two trees::

    PYTHONPATH=/work/main OMP_NUM_THREADS=1 python benchmarks/bench_chart_fonts.py \\
        --notebooks /work/main/notebooks --out /tmp/before.json
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_chart_fonts.py --out /tmp/after.json
    python benchmarks/bench_chart_fonts.py --compare /tmp/before.json /tmp/after.json

Results: benchmarks/results/chart_fonts.md.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

SHOWN_WIDTH_PX = 1090


def measure(fig, png: Path | None = None) -> dict:
    """Width of the PNG a notebook shows, the scale a report shows it at and its smallest
    text (points as shown) with what that text says; the PNG is kept as ``png`` if given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    if png is not None:
        png.write_bytes(buf.getvalue())
    buf.seek(0)
    width = matplotlib.image.imread(buf).shape[1]
    scale = min(1.0, SHOWN_WIDTH_PX / width)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    small = min(texts, key=lambda t: t.get_fontsize())
    titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    return {
        "title": next((t for t in titles if t), "(untitled)").replace("\n", " "),
        "width_px": int(width),
        "scale": round(scale, 3),
        "smallest_pt": round(small.get_fontsize() * scale, 1),
        "smallest_text": small.get_text().replace("\n", " ")[:30],
    }


def run_notebooks(
    notebooks: Path, params: str, overrides: list[str], png_dir: Path | None = None
) -> dict[str, list[dict]]:
    """Execute each stage notebook's code cells here; the figures of each, measured."""
    import segkit.core.params as sp

    folder = Path(tempfile.mkdtemp(prefix="chart-fonts-")) / "run"
    resolved = sp.load_params(params, overrides)
    out: dict[str, list[dict]] = {}
    for nb in sorted(notebooks.glob("0*.ipynb")):
        figures: list[dict] = []

        def show(*_a, figures: list[dict] = figures, stem: str = nb.stem, **_k) -> None:
            for num in plt.get_fignums():
                png = png_dir / f"{stem}_{len(figures) + 1:02d}.png" if png_dir else None
                figures.append(measure(plt.figure(num), png))
            plt.close("all")

        plt.show = show
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        ns = {"display": lambda *a, **k: None}
        exec("".join(cells[0]["source"]), ns)  # the parameters cell, then the run's values
        ns.update(params=resolved, run_dir=str(folder))
        for cell in cells[1:]:
            exec("".join(cell["source"]), ns)
        show()
        out[nb.stem] = figures
    return out


def compare(before: dict, after: dict) -> str:
    """A Markdown table: per report and figure, the smallest text before and after."""
    lines = [
        "| report | figure | PNG width before → after (px) | smallest text before → after (pt as shown) |",
        "|---|---|---|---|",
    ]
    for report in after:
        for i, a in enumerate(after[report]):
            b = before.get(report, [])[i] if i < len(before.get(report, [])) else None
            was = f"{b['smallest_pt']:.1f} ('{b['smallest_text']}')" if b else "–"
            width = f"{b['width_px'] if b else '–'} → {a['width_px']}"
            now = f"{a['smallest_pt']:.1f}"
            lines.append(f"| {report} | {a['title'][:60]} | {width} | {was} → {now} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notebooks", default=str(Path(__file__).parents[1] / "notebooks"))
    ap.add_argument("--params", default="demo")
    ap.add_argument("--set", nargs="*", default=[], help="parameter overrides key=value")
    ap.add_argument("--out")
    ap.add_argument("--png", help="folder to keep every figure's PNG in")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args()
    if a.compare:
        before, after = (json.loads(Path(p).read_text()) for p in a.compare)
        print(compare(before, after))
        return
    png_dir = Path(a.png) if a.png else None
    if png_dir:
        png_dir.mkdir(parents=True, exist_ok=True)
    res = run_notebooks(Path(a.notebooks), a.params, a.set, png_dir)
    text = json.dumps(res, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Draws ONNX Runtime time / engine time per case from tools/bench_engine.py's Markdown output, as a bar chart PNG.

    python3 tools/bench_engine.py --threads 1,2 > bench.md
    python3 tools/plot_bench_ratios.py bench.md docs/engine-ratios.png

One group of four bars per case: 1 thread wall-clock, 1 thread CPU, 2 threads wall-clock, 2 threads CPU; a line at
1.0 (level with ONNX Runtime) and one at 1.25 (issue 16's target). Pillow only, no plotting library.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SERIES = [(1, "wall-clock"), (1, "process CPU time"), (2, "wall-clock"), (2, "process CPU time")]
COLOURS = ["#9ecae1", "#3182bd", "#fdae6b", "#e6550d"]


def parse(text: str) -> dict[tuple[int, str], dict[str, float]]:
    """(threads, table title) -> {"model input": ORT / engine}."""
    ratios: dict[tuple[int, str], dict[str, float]] = {}
    for block in re.split(r"### threads = ", text)[1:]:
        threads = int(block.split()[0])
        for title, body in re.findall(r"(wall-clock|process CPU time):\n\n(.*?)(?:\n\n|\Z)", block, re.S):
            rows = {}
            lines = body.splitlines()
            column = [c.strip() for c in lines[0].strip("|").split("|")].index("ORT / engine")
            for line in lines[2:]:
                cells = [c.strip() for c in line.strip("|").split("|")]
                rows[f"{cells[0]} {cells[1].split('x3x')[0]}"] = float(cells[column].rstrip("x"))
            ratios[(threads, title)] = rows
    return ratios


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    ratios = parse(source.read_text())
    cases = list(ratios[SERIES[0]])
    width, height, left, bottom, top = 1100, 520, 60, 120, 40
    top_value = max(2.0, max(v for rows in ratios.values() for v in rows.values()) * 1.1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()

    def y(value: float) -> float:
        return height - bottom - (height - bottom - top) * value / top_value

    for level, colour in ((1.0, "#444444"), (1.25, "#31a354")):
        draw.line([(left, y(level)), (width - 20, y(level))], fill=colour, width=1)
        draw.text((5, y(level) - 6), f"{level:.2f}x", fill=colour, font=font)
    group = (width - left - 20) / len(cases)
    bar = group / (len(SERIES) + 1)
    for i, case in enumerate(cases):
        for j, series in enumerate(SERIES):
            value = ratios.get(series, {}).get(case)
            if value is None:
                continue
            x0 = left + i * group + (j + 0.5) * bar
            draw.rectangle([x0, y(value), x0 + bar * 0.9, y(0)], fill=COLOURS[j])
        model, batch = case.rsplit(" ", 1)
        draw.text((left + i * group + 4, height - bottom + 8), model.replace("cbam-", ""), fill="black", font=font)
        draw.text((left + i * group + 4, height - bottom + 22), f"batch {batch}", fill="black", font=font)
    for j, (threads, title) in enumerate(SERIES):
        x = left + j * 230
        draw.rectangle([x, height - 50, x + 14, height - 36], fill=COLOURS[j])
        draw.text((x + 20, height - 50), f"{threads} thread{'s' if threads > 1 else ''}, {title}", fill="black", font=font)
    draw.text((left, 10), "ONNX Runtime time / engine time (above 1: the engine is faster)", fill="black", font=font)
    image.save(target)


if __name__ == "__main__":
    main()

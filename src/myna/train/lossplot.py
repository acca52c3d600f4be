"""Loss curves as a PNG, with numpy and zlib only.

Hand-rolled on purpose: matplotlib (with its font, image and layout dependencies) would be the only
reason for the training extra to grow by tens of megabytes, and a loss curve needs little: one panel
per stage, one line per loss on a log-scaled axis (mel and KL differ by an order of magnitude), step
and value labels in a 3x5 pixel font, and a legend.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from myna.atomic import atomic_write

_GLYPHS = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101110011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111", "0": "111101101101111", "1": "010110010010111",
    "2": "110001010100111", "3": "110001010001110", "4": "101101111001001", "5": "111100110001110",
    "6": "011100111101111", "7": "111001010010010", "8": "111101111101111", "9": "111101111001110",
    ".": "000000000000010", "-": "000000111000000", ":": "000010000010000", "=": "000111000111000",
    "/": "001001010100100", "_": "000000000000111", "+": "000010111010000", " ": "000000000000000",
}
_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]
_INK, _GRID, _PAPER = (40, 40, 40), (225, 225, 225), (255, 255, 255)
_SCALE = 2  # font pixels per glyph pixel
_PANEL_W, _PANEL_H = 460, 300
_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 70, 16, 40, 60


def text_width(text: str) -> int:
    """Width in pixels of `text` drawn by `draw_text`."""
    return len(text) * 4 * _SCALE


def draw_text(image: np.ndarray, x: int, y: int, text: str, colour: tuple[int, int, int] = _INK) -> None:
    """Draw `text` (upper-cased; unknown characters as spaces) with its top-left corner at (x, y)."""
    for index, char in enumerate(text.upper()):
        bits = _GLYPHS.get(char, _GLYPHS[" "])
        for row in range(5):
            for col in range(3):
                if bits[row * 3 + col] == "1":
                    top, left = y + row * _SCALE, x + (index * 4 + col) * _SCALE
                    image[max(top, 0):max(top + _SCALE, 0), max(left, 0):max(left + _SCALE, 0)] = colour


def draw_line(image: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int],
              width: int = 2) -> None:
    """A straight line of `width` pixels between two points (clipped to the image)."""
    steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
    ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
    height, image_width = image.shape[:2]
    for dx in range(width):
        for dy in range(width):
            px, py = xs + dx - width // 2, ys + dy - width // 2
            keep = (px >= 0) & (px < image_width) & (py >= 0) & (py < height)
            image[py[keep], px[keep]] = colour


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an (H, W, 3) uint8 array."""
    height, width = image.shape[:2]
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.0e}".replace("e+0", "E").replace("e-0", "E-").replace("e", "E")
    return f"{value:.3g}"


def _panel(image: np.ndarray, left: int, title: str, series: dict[str, list[tuple[int, float]]]) -> None:
    """One stage: axes, grid, one line per loss (log10 scale), title and legend."""
    x0, y0 = left + _MARGIN_L, _MARGIN_T
    x1, y1 = left + _PANEL_W - _MARGIN_R, _PANEL_H - _MARGIN_B
    steps = [s for points in series.values() for s, _ in points]
    values = [v for points in series.values() for _, v in points if v > 0 and math.isfinite(v)]
    draw_text(image, x0, 12, title)
    if not steps or not values:
        draw_text(image, x0 + 10, (y0 + y1) // 2, "NO STEPS YET")
        return
    first, last = min(steps), max(max(steps), min(steps) + 1)
    low, high = math.log10(min(values)), math.log10(max(values))
    if high - low < 0.1:
        low, high = low - 0.05, high + 0.05

    def to_x(step: float) -> float:
        return x0 + (step - first) / (last - first) * (x1 - x0)

    def to_y(value: float) -> float:
        return y1 - (math.log10(max(value, 10**low)) - low) / (high - low) * (y1 - y0)

    for fraction in np.linspace(0, 1, 5):
        y = y1 - fraction * (y1 - y0)
        draw_line(image, x0, y, x1, y, _GRID, 1)
        label = _label(10 ** (low + fraction * (high - low)))
        draw_text(image, x0 - 6 - text_width(label), int(y) - 5, label)
        x = x0 + fraction * (x1 - x0)
        step_label = str(int(round(first + fraction * (last - first))))
        draw_text(image, int(x) - text_width(step_label) // 2, y1 + 8, step_label)
    draw_line(image, x0, y0, x0, y1, _INK, 1)
    draw_line(image, x0, y1, x1, y1, _INK, 1)
    draw_text(image, (x0 + x1) // 2 - text_width("STEP") // 2, y1 + 24, "STEP")
    legend_x = x0
    for index, (name, points) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        pairs = [(to_x(s), to_y(v)) for s, v in points if math.isfinite(v)]
        for (ax, ay), (bx, by) in zip(pairs, pairs[1:], strict=False):
            draw_line(image, ax, ay, bx, by, colour)
        if len(pairs) == 1:
            draw_line(image, pairs[0][0] - 2, pairs[0][1], pairs[0][0] + 2, pairs[0][1], colour, 3)
        draw_line(image, legend_x, _PANEL_H - 14, legend_x + 14, _PANEL_H - 14, colour, 3)
        draw_text(image, legend_x + 18, _PANEL_H - 19, name)
        legend_x += 18 + text_width(name) + 14


def render_history(history: list[dict[str, Any]], title: str = "") -> np.ndarray:
    """An (H, W, 3) image: one panel per stage in `history` (losses.jsonl records), in order of appearance."""
    stages: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for record in history:
        series = stages.setdefault(str(record.get("stage", "?")), {})
        for name, value in (record.get("losses") or {}).items():
            series.setdefault(str(name), []).append((int(record.get("step", 0)), float(value)))
    panels = list(stages.items()) or [("", {})]
    image = np.full((_PANEL_H, _PANEL_W * len(panels), 3), _PAPER, dtype=np.uint8)
    for index, (stage, series) in enumerate(panels):
        heading = f"{title} {stage} LOSSES" if title else f"{stage} LOSSES"
        _panel(image, index * _PANEL_W, heading.strip(), series)
    return image


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the loss curves of `history` to `path` as a PNG (atomically)."""
    path = Path(path)
    atomic_write(path, encode_png(render_history(history, title)))
    return path

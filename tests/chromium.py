"""Looking at a page as a person would: headless Chromium (Debian's package) takes a screenshot
and dumps the DOM; the screenshot's pixels are read with the standard library (zlib + struct).

Chromium is installed by scripts/bootstrap. Where it is missing, `browser()` installs it with
apt-get (as root); a test skips only where it is missing and cannot be installed, and fails
instead under CI (CI=true), where it must run."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# No network, no first-run or background work: the page is a local file.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,900"]


def browser() -> str:
    """The Chromium binary, installed first where it is missing and apt-get can."""
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found:
        return found
    why = "chromium is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        update = subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        install = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env,
                                 capture_output=True, text=True) if update.returncode == 0 else update
        if install.returncode == 0 and os.access(CHROMIUM, os.X_OK):
            return CHROMIUM
        why += f" and apt-get could not install it: {(install.stderr or install.stdout).strip()[-300:]}"
    else:
        why += " and cannot be installed here (apt-get needs root)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (scripts/bootstrap installs it for CI)")
    pytest.skip(why)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120, check=True)


def screenshot(page: Path, png: Path) -> None:
    _run([f"--screenshot={png}", page.resolve().as_uri()])
    assert png.exists() and png.stat().st_size > 0, f"no screenshot of {page}"


def dom(page: Path) -> str:
    """The page's DOM as Chromium serializes it after loading the file."""
    return _run(["--dump-dom", page.resolve().as_uri()]).stdout


class Read(HTMLParser):
    """What a person reads on a page (its DOM's text), and the elements the page has."""

    def __init__(self, dom_text: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: set[str] = set()
        self.feed(dom_text)

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.parts)


@dataclass
class Picture:
    width: int
    height: int
    rows: list[bytes]  # RGB, 3 bytes a pixel

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row = self.rows[y]
        return row[3 * x], row[3 * x + 1], row[3 * x + 2]

    def where(self, colour: str, tolerance: int = 6) -> list[tuple[int, int]]:
        """The pixels of `colour` (#rrggbb), within `tolerance` on each channel."""
        want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        found = []
        for y, row in enumerate(self.rows):
            for x in range(self.width):
                r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
                if abs(r - want[0]) <= tolerance and abs(g - want[1]) <= tolerance and abs(b - want[2]) <= tolerance:
                    found.append((x, y))
        return found

    def bands(self, colour: str, run: int = 100, tolerance: int = 6) -> list[int]:
        """The rows of pixels (y) that hold `run` pixels of `colour` side by side: a filled shape
        such as a badge or a bar, not text (whose strokes are thin) nor a legend's swatch."""
        lines: dict[int, list[int]] = {}
        for x, y in self.where(colour, tolerance):
            lines.setdefault(y, []).append(x)
        found = []
        for y, xs in sorted(lines.items()):
            longest = length = 1
            for before, after in zip(xs, xs[1:]):
                length = length + 1 if after == before + 1 else 1
                longest = max(longest, length)
            if longest >= run:
                found.append(y)
        return found


def read_png(path: Path) -> Picture:
    """An 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) as RGB rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    assert header is not None, "no IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        previous = line
        rows.append(bytes(line) if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
    return Picture(width, height, rows)

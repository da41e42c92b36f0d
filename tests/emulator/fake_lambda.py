"""Fake Lambda functions for the emulator tests: a custom runtime in plain Python
(fixtures/fake_bootstrap.py) packaged the way `cargo lambda build` packages the real ones,
so no Rust build is needed."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

FAKE_BOOTSTRAP = Path(__file__).resolve().parent / "fixtures" / "fake_bootstrap.py"


def launcher() -> str:
    """A bootstrap that runs the fake runtime with this interpreter."""
    return f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_BOOTSTRAP}"\n'


def fake_package() -> bytes:
    """A Lambda zip package whose bootstrap is the fake runtime."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16  # executable, as Lambda needs
        archive.writestr(info, launcher())
    return buffer.getvalue()

"""The ``blocknas`` console script as users run it: a subprocess, its output and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def blocknas_cli(
    *args: str, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``blocknas ARGS`` (``cwd``, ``env`` … pass through to subprocess.run)."""
    return subprocess.run(
        [sys.executable, "-m", "blocknas.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        **kwargs,
    )


def search_cli(cfg: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``blocknas search`` of ``cfg``, written to ``tmp_path/search.yaml`` first."""
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return blocknas_cli("search", str(path), timeout=300)

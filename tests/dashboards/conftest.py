"""Studies for the dashboard tests (:mod:`blocknas.search.synthetic`: written the way the searcher
writes them, with made-up accuracies instead of training), chromium, screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from blocknas.search.synthetic import synthetic_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="session")
def studies(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with two studies of the same space and objectives, ``alpha`` and
    ``beta`` (60 candidates each, different seeds)."""
    path: Path = tmp_path_factory.mktemp("dash") / "study.db"
    url = f"sqlite:///{path}"
    synthetic_study(url, "alpha", 60, seed=1)
    synthetic_study(url, "beta", 60, seed=2)
    return url


@pytest.fixture(scope="session")
def frames(studies: str) -> list[Any]:
    """The two studies' results frames."""
    from blocknas import load_results

    return [load_results(studies, name) for name in ("alpha", "beta")]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (``make test`` installs it when missing)."""
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `make test`, or apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: ``BLOCKNAS_SCREENSHOTS`` (docs/img when the docs
    are refreshed), else the test's temporary directory."""
    out = Path(os.environ.get("BLOCKNAS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out

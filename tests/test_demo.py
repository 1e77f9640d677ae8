"""`make demo` as shipped: the digits search of examples/digits.yaml, end to end through the CLI
(real Ray, SQLite, training). Its time on 2 cores is recorded in docs/benchmarks.md, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from blocknas import load_results, pareto_front

ROOT = Path(__file__).resolve().parents[1]


def test_demo_search_finds_a_front_of_at_least_five(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    cfg["results"] = str(tmp_path / "runs")  # everything else as shipped
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "blocknas.cli", "search", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    df = load_results(f"sqlite:///{tmp_path}/runs/digits/study.db")
    front = pareto_front(df)
    assert len(front) >= 5, run.stdout
    assert not set(front.number) & set(df[df.state == "pruned"].number)
    assert df.loc[df.number == 0, "warm_start"].item() == "cheapest"  # the anchor ran first
    assert "[seed cheapest]" in run.stderr
    s = df[df.launched]
    assert len(s[s.state.isin(["complete", "pruned", "failed"])]) == cfg["search"]["trials"]

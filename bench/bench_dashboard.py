"""Time to a rendered Pareto plot: blocknas's dashboard against optuna-dashboard, one study.

Both read one synthetic SQLite study (cached in ``bench/.cache``), each server in its own
process, one after the other; Debian's chromium (Playwright) opens its Pareto page. A visit is
timed from ``page.goto`` until every point with both coordinates in the plotly traces
(``_fullData``) is an SVG marker (``.scatterlayer .point``; for ``scattergl``: the canvas
exists), blocknas's ``#front-size`` reads "front: ..." and optuna-dashboard's plot holds every
complete trial. Each visit is a fresh browser context (no HTTP cache). Reported: the first
visit (server just started, caches cold), the median of ``--repeats`` further visits, and
optuna-dashboard's times over blocknas's.

Run: ``.venv/bin/python bench/bench_dashboard.py --trials 10000 [--repeats 5] [--out f.json]``
(needs ``pip install optuna-dashboard==0.21.0``; writing 10,000 trials takes a few minutes).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

CACHE = Path(__file__).resolve().parent / ".cache"
BIN = Path(sys.executable).parent
ROW = "{:<26} {:>7} {:>7} {:>14} {:>14}"
CHROMIUM = ["--no-sandbox", "--disable-background-networking"]
#: the number of points drawn once the plot is complete, else false (args: graph, text, count)
RENDERED = """([graph, text, count]) => {
  const shown = !text || document.querySelector(text[0])?.textContent.startsWith(text[1]);
  const MARKERS = '.scatterlayer .point', el = document.querySelector(graph);
  const gd = el?.classList.contains('js-plotly-plot') ? el : el?.querySelector('.js-plotly-plot');
  if (!gd?._fullData) return false;
  const set = (v) => v != null && v === v;
  let want = 0, gl = false;
  for (const t of gd._fullData) {
    if (t.visible !== true || !String(t.mode || '').includes('markers')) continue;
    gl = gl || t.type === 'scattergl';
    for (let i = 0; i < (t._length || 0); i++) want += set(t.x[i]) && set(t.y[i]) ? 1 : 0;
  }
  const drawn = gl ? gd.querySelector('canvas') : gd.querySelectorAll(MARKERS).length >= want;
  return shown && want > 0 && want >= count && drawn ? want : false;
}"""


@dataclass
class Dashboard:
    name: str
    command: tuple[str, ...]  #: the server's command line, with {db} and {port}
    page: str  #: the Pareto page's path and query
    graph: str  #: the selector of the plotly graph
    text: tuple[str, str] | None = None  #: (selector, prefix) that must also be shown
    complete: bool = False  #: whether the plot holds every complete trial


BLOCKNAS = Dashboard(
    "blocknas",
    ("blocknas", "dashboard", "--storage", "sqlite:///{db}", "--port", "{port}"),
    "/front?study=0:big",
    "#front-graph",
    text=("#front-size", "front:"),
)
OPTUNA_DASHBOARD = Dashboard(
    "optuna-dashboard",
    ("optuna-dashboard", "sqlite:///{db}", "--host", "127.0.0.1", "--port", "{port}"),
    "/dashboard/studies/1",
    "#graph-pareto-front",
    complete=True,
)


def machine() -> str:
    """The CPU model and count, and the OS."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [ln for ln in lines if ln.startswith("model name")]
    model = names[0].split(":", 1)[1].strip() if names else platform.processor()
    return f"{model or 'unknown CPU'}, {os.cpu_count()} CPUs, {platform.platform()}"


def make_study(trials: int) -> Path:
    """The cached study, written if missing under a temporary name: never a half study."""
    path = CACHE / f"dashboard-{trials}.db"
    if path.exists():
        return path
    import optuna

    from blocknas.search.study import storage_for
    from blocknas.search.synthetic import synthetic_study

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")  # nothing here goes to git
    tmp = path.with_name(path.name + ".partial")
    for end in ("", "-wal", "-shm"):  # a killed run's leftovers
        Path(f"{tmp}{end}").unlink(missing_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"writing a study of {trials} trials to {path} ...", flush=True)
    start = time.perf_counter()
    storage = cast("optuna.storages.RDBStorage", storage_for(f"sqlite:///{tmp}"))
    synthetic_study(storage, "big", trials, seed=0)
    storage.engine.dispose()
    with closing(sqlite3.connect(tmp)) as conn:  # fold the WAL into the file before renaming
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.replace(tmp, path)  # closing the last connection removed the -wal and -shm files
    print(f"wrote {trials} trials in {time.perf_counter() - start:.1f} s", flush=True)
    return path


@contextmanager
def serve(command: list[str], port: int, timeout_s: float) -> Iterator[None]:
    """A server in its own process group, up once its port answers HTTP; then that group killed."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while not answers(f"http://127.0.0.1:{port}/"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{command[0]} did not start:\n{tail}")
                time.sleep(0.1)
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an answer all the same
    except OSError:
        return False


def visit(browser: Any, url: str, arg: list[Any], timeout_s: float) -> tuple[float, int]:
    """Seconds from ``goto`` to the plot drawn in a fresh context, and the points drawn."""
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        start = time.perf_counter()
        page.goto(url, timeout=timeout_s * 1000)
        done = page.wait_for_function(RENDERED, arg=arg, timeout=timeout_s * 1000)
        return time.perf_counter() - start, int(done.json_value())
    except Exception as e:
        raise RuntimeError(f"{type(e).__name__}: {e}; page errors: {errors[:3]}") from None
    finally:
        context.close()


def measure(browser: Any, board: Dashboard, db: Path, repeats: int, timeout_s: float) -> dict:
    """The first visit to a just-started server and ``repeats`` visits after it."""
    with closing(socket.socket()) as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{board.page}"
    print(f"{board.name}: {url}", flush=True)
    command = [str(BIN / board.command[0])]
    command += [arg.format(db=db, port=port) for arg in board.command[1:]]
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        complete = conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")
        arg = [board.graph, board.text, complete.fetchone()[0] if board.complete else 0]
    with serve(command, port, timeout_s):
        first, points = visit(browser, url, arg, timeout_s)
        warm = [visit(browser, url, arg, timeout_s)[0] for _ in range(repeats)]
    median = statistics.median(warm)
    return {"first_s": first, "warm_s": warm, "warm_median_s": median, "points": points}


def page_times(db: Path) -> dict[str, float]:
    """Seconds to build each page's content in blocknas's server (in this process): the first
    read of the study, then each page (the comparison: the study with itself), the importance
    table, and ``blocknas report``'s file."""
    from blocknas.dashboards.app import importance_table, render
    from blocknas.dashboards.live import Studies
    from blocknas.dashboards.report import write_report

    studies = Studies([f"sqlite:///{db}"])
    out = {"first read": timed(lambda: studies.frame("0:big"))}
    pages = {"studies": ("/", ""), "front": ("/front", "?study=0:big")}
    pages |= {"trial": ("/trial", "?study=0:big&n=5"), "insights": ("/insights", "?study=0:big")}
    pages["compare"] = ("/compare", "?study=0:big&study=0:big")
    out |= {name: timed(lambda p=path: render(studies, *p)) for name, path in pages.items()}
    out["importance"] = timed(lambda: importance_table(studies, "0:big"))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        out["report"] = timed(lambda: write_report(f"sqlite:///{db}", ["big"], report))
    return out


def timed(work: Any) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def ratio(results: list[dict]) -> dict[str, float]:
    """optuna-dashboard's times over blocknas's (none if either failed or was not run)."""
    if len(results) != 2:
        return {}
    ours, theirs = results
    if "error" in ours or "error" in theirs:
        return {}
    return {k: theirs[f"{k}_s"] / ours[f"{k}_s"] for k in ("first", "warm_median")}


def table(results: list[dict], trials: int) -> list[str]:
    """Each dashboard's row (or its error), then the ratio of their times."""
    rows = [ROW.format("dashboard", "trials", "points", "first visit s", "warm median s")]
    for r in results:
        if "error" in r:
            rows.append(f"{r['dashboard']:<26} failed: {r['error'][:1000]}")
            continue
        times = (f"{r['first_s']:.2f}", f"{r['warm_median_s']:.2f}")
        rows.append(ROW.format(r["dashboard"], trials, r["points"], *times))
    if ratios := ratio(results):
        factors = [f"{v:.2f}x" for v in ratios.values()]
        rows.append(ROW.format("optuna-dashboard/blocknas", "", "", *factors))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5, help="warm visits (at least 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per visit")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    parser.add_argument(
        "--only-blocknas", action="store_true", help="skip optuna-dashboard (very large studies)"
    )
    parser.add_argument(
        "--small", type=int, default=300, help="also time blocknas on a study this small (0: no)"
    )
    args = parser.parse_args()
    if not args.only_blocknas and not (BIN / "optuna-dashboard").exists():
        sys.exit("optuna-dashboard is not installed: pip install optuna-dashboard==0.21.0")
    from playwright.sync_api import sync_playwright

    db = make_study(args.trials)
    results: list[dict] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM)
        for board in (BLOCKNAS,) if args.only_blocknas else (BLOCKNAS, OPTUNA_DASHBOARD):
            try:
                result = measure(browser, board, db, args.repeats, args.timeout)
            except RuntimeError as e:
                result = {"error": str(e)}
            results.append({"dashboard": board.name} | result)
        small = {}  # the same page on a small study: what does not depend on the study's size
        if args.small:
            small = measure(browser, BLOCKNAS, make_study(args.small), args.repeats, args.timeout)
    pages = page_times(db)
    version = "not run" if args.only_blocknas else importlib.metadata.version("optuna-dashboard")
    report: dict[str, Any] = {"machine": machine(), "optuna-dashboard": version, "study": str(db)}
    report |= {"trials": args.trials, "repeats": args.repeats, "results": results}
    report |= {"ratio": ratio(results), "blocknas_pages_s": pages, "blocknas_small": small}
    header = f"\nmachine: {report['machine']}; optuna-dashboard {version}"
    print(header, *table(results, args.trials), sep="\n")
    if small:
        times = (f"{small['first_s']:.2f}", f"{small['warm_median_s']:.2f}")
        print(ROW.format("blocknas, small study", args.small, small["points"], *times))
    print(
        "blocknas, seconds to build each page:", ", ".join(f"{k} {v:.2f}" for k, v in pages.items())
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

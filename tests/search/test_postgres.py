"""The study on a real PostgreSQL server: search, resume, results, the dashboard's reader and the
report; passwords from the environment, never shown; bad storages refused in one line."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
import pandas as pd
import pytest
import sqlalchemy

from blocknas import load_results, pareto_front
from blocknas.dashboards.live import LiveStudy
from blocknas.dashboards.report import write_report
from blocknas.search.config import SearchConfig
from blocknas.search.run import run_search
from blocknas.search.study import expand_url, storage_for
from blocknas.search.synthetic import synthetic_study
from tests.cli import search_cli
from tests.postgres import PASSWORD_ENV, Server, free_port
from tests.search.test_search import config


def test_search_resume_results_and_report_on_postgres(postgres: Server, tmp_path: Path) -> None:
    url = postgres.create_database("search")
    cfg = config(tmp_path, storage=url, search={"trials": 2})
    first = run_search(SearchConfig.from_dict(cfg), echo=lambda line: None)
    trained = ["complete", "pruned"]  # pruned: stopped early, still trained
    assert first.results.state.isin(trained).sum() == 2
    lines: list[str] = []
    again = run_search(SearchConfig.from_dict(cfg), resume=True, trials=4, echo=lines.append)
    df = load_results(url, "tiny")
    assert df.number.is_unique and df.state.isin(trained).sum() == 4
    kept = df.set_index("number").loc[first.results.number, "state"]
    assert list(kept) == list(first.results.state)  # the first run's trials, as they were
    assert list(again.results.number) == list(df.number)
    # the password never shows: not in the search's lines, not in the stored config
    assert not any(postgres.password in line for line in lines)
    assert any("${" + PASSWORD_ENV + "}" in line for line in lines)
    study = optuna.load_study(study_name="tiny", storage=storage_for(url))
    assert postgres.password not in str(study.user_attrs)
    # the dashboard's incremental reader (direct SQL) agrees with Optuna's own API
    live = LiveStudy(url, "tiny")
    via_optuna = load_results(study)
    cols = ["number", "state", "accuracy", "macs", "latency_ms"]
    pd.testing.assert_frame_equal(live.frame()[cols], via_optuna[cols])
    assert set(live.front().number) == set(pareto_front(df).number)
    out = write_report(url, None, tmp_path / "report.html")
    assert "tiny" in out.read_text() and postgres.password not in out.read_text()


def test_two_studies_write_one_database_at_once(postgres: Server) -> None:
    url = postgres.create_database("shared")
    errors: list[BaseException] = []

    def write(name: str, seed: int) -> None:
        try:
            synthetic_study(url, name, trials=60, seed=seed)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(f"s{i}", i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for name in ("s0", "s1"):
        df = load_results(url, name)
        assert len(df) == 60 and df.number.tolist() == list(range(60))


def test_a_reader_waits_while_a_search_creates_the_tables(postgres: Server) -> None:
    url = postgres.create_database("creating")
    storage_for(url)  # a search creating the tables, caught before it stamps their version:
    engine = sqlalchemy.create_engine(expand_url(url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE alembic_version"))
    # the dashboard or `blocknas results` reading it now is told to wait, and writes nothing
    # (it stamped the version itself, and the search's own stamp then failed in a fresh `make test`)
    with pytest.raises(ValueError, match=r"not an Optuna study storage \(or is being created\)"):
        load_results(url, "any")
    with engine.connect() as conn:
        assert not sqlalchemy.inspect(conn).has_table("alembic_version")
    engine.dispose()


@pytest.mark.parametrize("problem", ["closed port", "wrong password", "unset variable"])
def test_a_bad_storage_is_one_line_before_ray_starts(
    postgres: Server, tmp_path: Path, problem: str
) -> None:
    url = {
        "closed port": f"postgresql+psycopg://blocknas:${{{PASSWORD_ENV}}}@127.0.0.1:{free_port()}/x",
        "wrong password": postgres.url("postgres").replace("${" + PASSWORD_ENV + "}", "nope"),
        "unset variable": postgres.url("postgres").replace(PASSWORD_ENV, "BLOCKNAS_NOT_SET"),
    }[problem]
    proc = search_cli(config(tmp_path, storage=url), tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "nope" not in lines[0]  # a literal password is masked too
    expected = {
        "closed port": "cannot open the study storage",
        "wrong password": "password authentication failed",
        "unset variable": "${BLOCKNAS_NOT_SET} is not set in the environment",
    }[problem]
    assert expected in lines[0]
    assert not (tmp_path / "runs" / "tiny").exists()  # nothing started, nothing written

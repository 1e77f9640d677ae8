"""Ray's own messages during a search go to its log file, not the terminal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from blocknas.runners.ray_session import ray_session


def test_ray_messages_after_ray_init_go_to_the_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``ray.init(configure_logging=False)`` clears the "ray" logger's handlers; a Tune warning
    (such as "Failed to fetch metrics" when Ctrl-C lands as a trial starts) then reached the
    terminal through Python's last-resort handler."""
    import ray  # noqa: F401  # its import installs the "ray" logger's own handler

    log = tmp_path / "ray.log"
    ray_logger = logging.getLogger("ray")
    before = (list(ray_logger.handlers), ray_logger.propagate)
    tune = logging.getLogger("ray.tune.analysis.experiment_analysis")
    with ray_session(num_cpus=1, log=log) as where:
        tune.warning("probe: a warning of Ray Tune's while Ray runs")
    assert where.startswith("embedded Ray")
    assert "probe: a warning of Ray Tune's" in log.read_text()
    out, err = capfd.readouterr()
    assert "probe" not in out + err
    assert (ray_logger.handlers, ray_logger.propagate) == before  # as it was, for what follows

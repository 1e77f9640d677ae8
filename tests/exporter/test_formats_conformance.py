"""Every registered op and block survives every export format: one network holds each op,
another each block (read from the registries, so a new op or block is covered without touching
this file), and each format's output matches the deploy form's at several batch sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from blocknas.exporter.formats import FORMATS, Format, check_requirements
from blocknas.exporter.verify import FORMAT_ATOL, FORMAT_RTOL
from blocknas.spaces import BLOCKS, OPS, ArchSpec, build, to_deploy
from blocknas.spaces.selftest import combination_layer, is_forbidden, randomize_bn

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
WIDTH = 16


def _layer(block: str, op: str, adaptor: bool) -> dict[str, Any]:
    layer = combination_layer(block, op, width=WIDTH, rich=True)
    return layer | {"adaptor": adaptor, "out": WIDTH, "shortcut": "b"}


def every_op() -> ArchSpec:
    layers = []
    for i, op in enumerate(OPS.names()):
        block = next(b for b in ("basic", "plain", *BLOCKS.names()) if not is_forbidden(b, op))
        layers.append(_layer(block, op, adaptor=i == 0))
    return _spec(layers)


def every_block() -> ArchSpec:
    layers = [_layer(block, "conv", adaptor=i == 1) for i, block in enumerate(BLOCKS.names())]
    return _spec(layers)


def _spec(layers: list[dict[str, Any]]) -> ArchSpec:
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [3, 24, 24],
            "num_classes": 7,
            "stem": {"out": WIDTH},
            "layers": layers,
            "adaptors": {"alpha_init": 1.0},
        }
    )


@pytest.fixture(scope="module", params=["every_op", "every_block"])
def deployed(request: pytest.FixtureRequest) -> torch.nn.Module:
    spec = {"every_op": every_op, "every_block": every_block}[request.param]()
    torch.manual_seed(0)
    net = build(spec)
    randomize_bn(net)
    return to_deploy(net.eval())


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_every_op_and_block_exports_to_every_format(
    deployed: torch.nn.Module, fmt: Format, tmp_path: Path
) -> None:
    names = {type(m).__module__ for m in deployed.modules()}
    assert any("blocks" in n for n in names) and any("ops" in n for n in names)
    path = tmp_path / fmt.filename
    fmt.write(deployed, torch.zeros(2, 3, 24, 24), path)
    run = fmt.load(path)
    for batch in (1, 5, 33):
        x = torch.randn(batch, 3, 24, 24)
        with torch.no_grad():
            want = deployed(x)
        torch.testing.assert_close(run(x), want, rtol=FORMAT_RTOL, atol=FORMAT_ATOL)


def test_missing_libraries_are_named_before_any_work() -> None:
    def never(*args: object) -> None:
        raise AssertionError("not reached")

    fmt = Format("x", "model.x", never, never, ("no_such_module_for_blocknas",))
    with pytest.raises(ImportError, match=r"pip install 'blocknas\[export\]'.*no_such_module"):
        check_requirements((fmt,))
    check_requirements()  # this environment has every format's libraries

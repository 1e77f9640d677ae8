"""Cost model: params and MACs by FlopCounterMode on the meta device, ops' own uncounted MACs
(deform's sampling conv), latency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from blocknas import ArchSpec, build
from blocknas.costmodel import cost, measure_latency
from blocknas.costmodel.counting import clear_cache, count_module
from blocknas.spaces import Op, OpArgs
from blocknas.spaces.ops.deform import DeformConv


def spec(op: str = "conv", kernel: int = 3, **extra: Any) -> ArchSpec:
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [3, 8, 8],
            "num_classes": 10,
            "stem": {"out": 8},
            "layers": [{"block": "plain", "op": op, "out": 16, "stride": 2, "kernel": kernel}],
            **extra,
        }
    )


def test_macs_and_params_of_a_hand_computable_net() -> None:
    c = cost(spec())
    stem = 3 * 8 * 9 * 8 * 8  # 3→8, 3×3, 8×8 output
    layer = 8 * 16 * 9 * 4 * 4  # 8→16, 3×3, stride 2: 4×4 output
    fc = 16 * 10
    assert c.train_macs == stem + layer + fc
    assert c.train_params == sum(p.numel() for p in build(spec()).parameters())
    # Deploy: BN (2 params per channel) folded into a conv bias (1 per channel).
    assert c.params == c.train_params - (8 + 16)
    assert c.macs == c.train_macs


@pytest.mark.parametrize("kernel", [3, 5])
def test_acb_deploy_macs_equal_plain_conv(kernel: int) -> None:
    acb, conv = cost(spec("acb", kernel)), cost(spec("conv", kernel))
    assert acb.macs == conv.macs and acb.params == conv.params
    layer = 8 * 16 * 4 * 4
    assert acb.train_macs - conv.train_macs == layer * 2 * kernel  # the k×1 and 1×k branches


def test_deform_adds_sampling_by_formula() -> None:
    deform, conv = cost(spec("deform")), cost(spec("conv"))
    offset_conv = 8 * (2 * 9) * 9 * 4 * 4  # C_in → 2k² offsets, k×k, 4×4 output
    assert deform.train_macs - conv.train_macs == offset_conv


@pytest.fixture
def fresh_memo() -> Iterator[None]:
    """Part counts made while a method is patched must not outlive the test."""
    clear_cache()
    yield
    clear_cache()


def test_deform_sampling_macs_come_from_the_op(
    monkeypatch: pytest.MonkeyPatch, fresh_memo: None
) -> None:
    out = torch.empty(1, 16, 4, 4, device="meta")
    with torch.device("meta"):
        op = DeformConv(OpArgs(8, 16, stride=2))
    assert op.uncounted_macs(out) == 16 * 8 * 9 * 4 * 4  # C_out·C_in·k²·H_out·W_out
    before = cost(spec("deform")).train_macs
    monkeypatch.setattr(DeformConv, "uncounted_macs", lambda self, out: 7)
    clear_cache()
    assert cost(spec("deform")).train_macs == before - 16 * 8 * 9 * 4 * 4 + 7


class PointwiseOp(Op):
    """An unregistered op: a 1×1 conv, with or without MACs of its own."""

    registry_name: ClassVar[str] = "pointwise_test"
    uses = frozenset()

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        self.conv = nn.Conv2d(args.in_ch, args.out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class HiddenMacsOp(PointwiseOp):
    def uncounted_macs(self, out: torch.Tensor) -> int:
        return 1000 * out.shape[-1]


def test_any_op_overriding_uncounted_macs_is_counted() -> None:
    conv = 4 * 8 * 6 * 6
    assert Op.uncounted_macs(PointwiseOp(OpArgs(4, 8)), torch.empty(1, 8, 6, 6)) == 0
    with torch.device("meta"):
        plain, hidden = PointwiseOp(OpArgs(4, 8)), HiddenMacsOp(OpArgs(4, 8))
        net = nn.Sequential(hidden, nn.ReLU(), PointwiseOp(OpArgs(8, 8)))
    assert count_module(plain, (4, 6, 6)).macs == conv
    assert count_module(hidden, (4, 6, 6)).macs == conv + 6000
    assert count_module(net, (4, 6, 6)).macs == conv + 6000 + 8 * 8 * 6 * 6


def test_learned_adaptor_sizes_change_macs() -> None:
    base = {
        "version": 1,
        "input": [3, 32, 32],
        "num_classes": 10,
        "stem": {"out": 16},
        "layers": [{"block": "basic", "out": 16, "adaptor": True}, {"block": "basic", "out": 16}],
    }
    big = cost(ArchSpec.from_dict({**base, "adaptors": {"alpha_init": 3.0}}))
    small = cost(
        ArchSpec.from_dict(
            {
                **base,
                "adaptors": {
                    "alpha_init": 3.0,
                    "learned": [{"layer": 0, "sigma": 0.1, "size": [17, 17]}],
                },
            }
        )
    )
    assert small.train_macs < big.train_macs
    # The counted layers really run at the learned size: floor((0.5 + 0.5·0.1)·32) = 17.
    per_pixel = 2 * 16 * 16 * 9
    stem = 3 * 16 * 9 * 32 * 32
    assert small.train_macs == stem + per_pixel * 17 * 17 * 2 + 16 * 10


def test_latency_on_cpu_and_bad_device() -> None:
    threads = torch.get_num_threads()
    ms = measure_latency(spec(), device="cpu", threads=1)
    assert ms > 0 and torch.get_num_threads() == threads
    assert cost(spec(), device="cpu").latency_ms is not None
    with pytest.raises(ValueError, match=r"device='tpu' is not supported; use one of cpu, cuda"):
        measure_latency(spec(), device="tpu")


def test_measuring_latency_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    measure_latency(spec(), threads=1, min_run_time=0.01)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_latency_on_cuda() -> None:
    assert measure_latency(spec(), device="cuda") > 0

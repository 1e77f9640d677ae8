"""Cost model: params and MACs by FlopCounterMode on the meta device, deform by formula, latency."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from blocknas import ArchSpec, build
from blocknas.cost import cost, measure_latency


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
    assert c.macs == stem + layer + fc
    assert c.params == sum(p.numel() for p in build(spec()).parameters())
    # Deploy: BN (2 params per channel) folded into a conv bias (1 per channel).
    assert c.deploy_params == c.params - (8 + 16)
    assert c.deploy_macs == c.macs


@pytest.mark.parametrize("kernel", [3, 5])
def test_acb_deploy_macs_equal_plain_conv(kernel: int) -> None:
    acb, conv = cost(spec("acb", kernel)), cost(spec("conv", kernel))
    assert acb.deploy_macs == conv.deploy_macs and acb.deploy_params == conv.deploy_params
    layer = 8 * 16 * 4 * 4
    assert acb.macs - conv.macs == layer * 2 * kernel  # the k×1 and 1×k branches


def test_deform_adds_sampling_by_formula() -> None:
    deform, conv = cost(spec("deform")), cost(spec("conv"))
    offset_conv = 8 * (2 * 9) * 9 * 4 * 4  # C_in → 2k² offsets, k×k, 4×4 output
    assert deform.macs - conv.macs == offset_conv


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
    assert small.macs < big.macs
    # The counted layers really run at the learned size: floor((0.5 + 0.5·0.1)·32) = 17.
    per_pixel = 2 * 16 * 16 * 9
    stem = 3 * 16 * 9 * 32 * 32
    assert small.macs == stem + per_pixel * 17 * 17 * 2 + 16 * 10


def test_latency_on_cpu_and_bad_device() -> None:
    threads = torch.get_num_threads()
    ms = measure_latency(spec(), device="cpu", threads=1)
    assert ms > 0 and torch.get_num_threads() == threads
    assert cost(spec(), device="cpu").latency_ms is not None
    with pytest.raises(ValueError, match=r"device='tpu' is not supported; use one of cpu, cuda"):
        measure_latency(spec(), device="tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_latency_on_cuda() -> None:
    assert measure_latency(spec(), device="cuda") > 0

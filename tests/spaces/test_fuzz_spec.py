"""Fuzzed ArchSpecs: every mutation of a valid spec is accepted or refused in one line naming the
field, and an accepted one is costed (or refused as too large) without building anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given

from blocknas import ArchSpec, presets
from blocknas.costmodel.memory import check_memory
from tests.fuzz import FUZZ, accepted_or_refused, one_of

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["resnet20_cifar_acb", "mobilenet_v2", "shufflenet_v2", "resnest50d", "sknet50"]


def _bases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PRESETS:
        data = presets.get(name, num_classes=10, input=(3, 32, 32)).to_dict()
        data["layers"] = data["layers"][:4]  # a few layers: deep enough to reach every check
        out[name] = data
    for path in sorted((ROOT / "examples" / "specs").glob("*.yaml")):
        out[path.stem] = yaml.safe_load(path.read_text())
    return out


BASES = _bases()
FIELDS = set(ArchSpec.model_fields)


@FUZZ
@given(one_of(BASES))
def test_a_mutated_spec_is_accepted_or_refused_in_one_line(case: tuple[str, Any]) -> None:
    _, data = case
    fields = FIELDS | {str(k) for k in data}
    spec = accepted_or_refused(lambda: ArchSpec.from_dict(data), fields)
    if spec is not None:  # counted on the meta device: nothing is allocated, whatever the size
        accepted_or_refused(lambda: check_memory(spec), fields)
        assert ArchSpec.from_json(spec.to_json()) == spec

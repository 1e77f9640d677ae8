"""ArchSpec: round trips, files, and one-line SpecErrors naming path, value and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from blocknas import ArchSpec, SpecError

BASE: dict[str, Any] = {
    "version": 1,
    "input": [3, 32, 32],
    "num_classes": 10,
    "stem": {"type": "conv", "out": 32, "kernel": 3, "stride": 1, "pool": "none"},
    "layers": [
        {"block": "bottleneck", "op": "acb", "out": 64, "stride": 1, "alpha": 0.5},
        {"block": "basic", "op": "spconv", "out": 64, "stride": 2, "alpha": 0.25, "groups": 2},
        {"block": "inverted", "op": "conv", "out": 64, "kernel": 5, "adaptor": True},
        {"block": "shuffle", "out": 128, "stride": 2, "attention": "se"},
    ],
    "head": {"conv": 256, "pool": "avg", "dropout": 0.1},
}


def spec_with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    target: Any = data
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    target[int(last) if last.isdigit() else last] = value
    return data


def test_round_trip_json_and_yaml(tmp_path: Path) -> None:
    spec = ArchSpec.from_dict(BASE)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert spec.layers[2].act == "relu6"  # inverted's default activation is resolved
    p = tmp_path / "net.yaml"
    p.write_text(
        "version: 1\ninput: [3, 32, 32]\nnum_classes: 10\nstem: {out: 16}\n"
        "layers:\n  - {block: plain, op: dwsep, out: 32, stride: 2}\n"
    )
    loaded = ArchSpec.from_file(p)
    assert loaded.layers[0].op == "dwsep" and loaded.head.pool == "avg"
    j = tmp_path / "net.json"
    j.write_text(spec.to_json())
    assert ArchSpec.from_file(j) == spec
    assert json.loads(spec.to_json())["layers"][1]["alpha"] == 0.25


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "layers[0].groups",
            3,
            r"^layers\[0\]\.groups: groups=3 must divide the op's input channels 16$",
        ),
        (
            "layers[0].block",
            "resnet",
            r"^layers\[0\]\.block: unknown block 'resnet'; valid: basic, ",
        ),
        ("layers[0].op", "conv7", r"^layers\[0\]\.op: unknown op 'conv7'; valid: acb, conv, "),
        (
            "layers[2].op",
            "spconv",
            r"^layers\[2\]\.op: op spconv cannot run depthwise, which block inverted needs",
        ),
        (
            "layers[3].op",
            "dwsep",
            r"^layers\[3\]\.op: op dwsep cannot run depthwise, which block shuffle needs",
        ),
        ("layers[2].op", "splat", r"^layers\[2\]\.op: op splat cannot run depthwise"),
        (
            "layers[0].alpha",
            0.25,
            r"^layers\[0\]\.alpha: alpha=0.25 is not used by op acb; leave it at 0.5$",
        ),
        (
            "layers[1].alpha",
            0.01,
            r"^layers\[1\]\.alpha: alpha=0.01 leaves zero representative channels",
        ),
        (
            "layers[1].alpha",
            1.5,
            r"^layers\[1\]\.alpha: 1.5 is not a number > 0.0 and ≤ 1.0$",
        ),
        (
            "layers[1].mid",
            8,
            r"^layers\[1\]\.mid: mid=8 is not used by block basic; leave it unset$",
        ),
        (
            "layers[1].pw_groups",
            2,
            r"^layers\[1\]\.pw_groups: pw_groups=2 is not used by block basic",
        ),
        (
            "layers[0].pw_groups",
            3,
            r"^layers\[0\]\.pw_groups: pw_groups=3 must divide the block's input",
        ),
        ("layers[2].groups", 4, r"^layers\[2\]\.groups: groups=4 is not used by block inverted"),
        (
            "layers[2].shortcut",
            "d",
            r"^layers\[2\]\.shortcut: shortcut='d' is not used by block inverted",
        ),
        ("layers[0].kernel", 4, r"^layers\[0\]\.kernel: kernel=4 must be odd and ≥ 1$"),
        ("layers[0].stride", 3, r"^layers\[0\]\.stride: 3 is not 1 or 2$"),
        (
            "layers[0].act",
            "gelu",
            r"^layers\[0\]\.act: 'gelu' is not 'relu', 'relu6' or 'hswish'$",
        ),
        ("layers[0].attention", "cbam", r"^layers\[0\]\.attention: 'cbam' is not 'none' or 'se'"),
        (
            "layers[0].out",
            0,
            r"^layers\[0\]\.out: 0 is not an integer ≥ 1$",
        ),
        ("layers[0].colour", "red", r"^layers\[0\]\.colour: unknown field; known: block, op, "),
        ("layers[3].out", 127, r"^layers\[3\]\.out: out=127 must be even"),
        (
            "layers[3].stride",
            1,
            r"^layers\[3\]\.out: out=128 must equal the input channels 64 at stride 1",
        ),
        (
            "layers[1].groups",
            3,
            r"^layers\[1\]\.groups: groups=3 must divide SPConv's representative",
        ),
        ("stem.type", "patchify", r"^stem\.type: unknown stem 'patchify'; valid: conv, deep$"),
        ("stem.kernel", 2, r"^stem\.kernel: kernel=2 must be odd"),
        ("version", 2, r"^version: 2 is not 1$"),
        ("input", [3, 0, 32], r"^input: input=\[3, 0, 32\] must be C, H, W, each ≥ 1$"),
        ("layers", [], r"^layers: \[\] must have at least 1 item"),
        (
            "adaptors",
            {"learned": [{"layer": 0, "sigma": 0.5, "size": [8, 8]}]},
            r"^adaptors\.learned\[0\]\.layer: layer=0 has no adaptor; layers with adaptors: \[2\]$",
        ),
        ("adaptors", {"r1": 0.9, "r2": 0.6}, r"^adaptors\.r1: r1=0.9 must be ≤ r2=0.6$"),
    ],
)
def test_invalid_specs_raise_one_line_spec_error(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        ArchSpec.from_dict(spec_with(path, value))
    assert "\n" not in str(info.value)


def test_inception_width_must_split_in_four() -> None:
    data = spec_with("layers[1]", {"block": "inception", "out": 30})
    with pytest.raises(SpecError, match=r"^layers\[1\]\.out: out=30 must be divisible by 4"):
        ArchSpec.from_dict(data)


def test_missing_required_field() -> None:
    data = copy.deepcopy(BASE)
    del data["num_classes"]
    with pytest.raises(SpecError, match=r"^num_classes: required field is missing$"):
        ArchSpec.from_dict(data)


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec file"):
        ArchSpec.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers: [\n")
    with pytest.raises(SpecError, match="not valid YAML") as info:
        ArchSpec.from_file(bad)
    assert "\n" not in str(info.value)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="a spec must be a mapping, got list"):
        ArchSpec.from_file(listy)


def test_spec_error_survives_pickling() -> None:
    import pickle

    err = SpecError("layers[1].groups", "groups=3 must divide 32")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.path == "layers[1].groups"

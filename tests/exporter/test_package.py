"""The package is safe and self-contained: checksums, no blocknas needed to run it, nothing
written outside --out, nothing left behind by a failed check, --force rules."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import blocknas
from blocknas.exporter.package import FILES, MANIFEST
from blocknas.runners.checkpoint import load_checkpoint, save_checkpoint
from blocknas.spaces import ArchSpec
from tests.exporter.conftest import Study, blocknas_cli

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")


@pytest.fixture(scope="module")
def package(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blocknas.export(study.url, study.name, out=tmp_path_factory.mktemp("pkg") / "best")


def test_a_changed_byte_is_refused_naming_the_file(package: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(package, tmp_path / "copy")
    blocknas.load_exported(copy)  # intact: loads
    data = bytearray((copy / "model.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.pt does not match its sha256") as e:
        blocknas.load_exported(copy)
    assert "\n" not in str(e.value)


NO_BLOCKNAS = """
import importlib.abc, sys
class NoBlocknas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "blocknas":
            raise ModuleNotFoundError("blocknas is blocked in this test")
sys.meta_path.insert(0, NoBlocknas())
sys.path = [p for p in sys.path if p not in ("", ".")]
try:
    import blocknas
except ImportError:
    pass
else:
    raise SystemExit("blocknas is importable")
import numpy as np, onnxruntime as ort, torch
folder, x = sys.argv[1], np.load(sys.argv[2])
ts = torch.jit.load(folder + "/model.ts")
np.save(sys.argv[3] + "/ts.npy", ts(torch.from_numpy(x)).detach().numpy())
session = ort.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
np.save(sys.argv[3] + "/onnx.npy", session.run(None, {"input": x})[0])
program = torch.export.load(folder + "/model.pt2").module()
np.save(sys.argv[3] + "/pt2.npy", program(torch.from_numpy(x)).detach().numpy())
assert not [m for m in sys.modules if m.split(".")[0] == "blocknas"]
"""


@pytest.mark.parametrize("batch", [1, 5])
def test_formats_run_without_blocknas(package: Path, tmp_path: Path, batch: int) -> None:
    import subprocess

    spec = ArchSpec.from_file(package / "spec.json")
    x = torch.randn(batch, *spec.input)
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "run.py"
    script.write_text(NO_BLOCKNAS)
    proc = subprocess.run(
        [sys.executable, str(script), str(package), str(tmp_path / "x.npy"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with torch.no_grad():
        want = blocknas.load_exported(package)(x).numpy()
    for name in ("ts", "onnx", "pt2"):
        got = np.load(tmp_path / f"{name}.npy")
        assert got.shape == want.shape == (batch, spec.num_classes)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5, err_msg=name)


def test_non_empty_out_needs_force_and_keeps_other_files(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["export", "--storage", study.url, "--study", study.name, "--out", str(out)]
    proc = blocknas_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --out {out} is not empty (notes.txt); choose an empty folder or pass --force "
        "to replace the package files in it"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    proc = blocknas_cli(*args, "--force", "--pick", "smallest")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, MANIFEST, "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"
    blocknas.load_exported(out)


def test_a_failed_check_leaves_nothing_and_names_the_check(study: Study, tmp_path: Path) -> None:
    """A checkpoint that no longer holds what the study recorded (its logits negated): the
    recomputed test accuracy differs from the recorded one."""
    df = study.results()
    row = df[df.state == "complete"].sort_values("test_accuracy").iloc[-1]
    assert row.test_accuracy > 0.3  # negated logits then surely score differently
    path = Path(row.checkpoint)
    original = path.read_bytes()
    data = load_checkpoint(path)
    state = {k: (-v if k.startswith("head.fc.") else v) for k, v in data["state_dict"].items()}
    model = blocknas.build(ArchSpec.from_dict(data["spec"]))
    model.load_state_dict(state)
    try:
        save_checkpoint(
            path,
            spec=ArchSpec.from_dict(data["spec"]),
            model=model,
            metrics=data["metrics"],
            epoch=data["epoch"],
            config=data["config"],
        )
        out = tmp_path / "never"
        proc = blocknas_cli(
            "export",
            "--storage",
            study.url,
            "--study",
            study.name,
            "--trial",
            str(row.number),
            "--out",
            str(out),
        )
    finally:
        path.write_bytes(original)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: export check 'test_accuracy' failed: recomputed ")
    assert "nothing was written" in lines[-1] and "Traceback" not in proc.stderr
    assert not out.exists()


#: what the libraries themselves write when imported (not blocknas): onnxruntime's device id
#: under ~/.cache and its ".ses" file in TMPDIR, and torch's inductor cache folder in TMPDIR
LIBRARY_CACHES = ("home/.cache/Microsoft/", "tmp/.ses", "tmp/torchinductor_")


def test_nothing_is_written_outside_out(study: Study, tmp_path: Path) -> None:
    home, cwd, tmp = tmp_path / "home", tmp_path / "cwd", tmp_path / "tmp"
    for d in (home, cwd, tmp):
        d.mkdir()
    out = tmp_path / "pkg"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    env.pop("XDG_CACHE_HOME", None)
    args = ["export", "--storage", study.url, "--study", study.name, "--pick", "knee"]
    proc = blocknas_cli(*args, "--out", str(out), cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "home", "pkg", "tmp"]
    assert list(cwd.iterdir()) == []
    written = [p.relative_to(tmp_path).as_posix() for d in (home, tmp) for p in d.rglob("*")]
    files = [w for w in written if (tmp_path / w).is_file()]
    assert all(w.startswith(LIBRARY_CACHES) for w in files), files
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, MANIFEST])

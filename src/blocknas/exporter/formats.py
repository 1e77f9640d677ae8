"""The serialised formats of a deploy package: how each is written and how each is run back.

Each :class:`Format` names its file and carries its own writer and loader, so the packaging,
the verification and the benchmark iterate :data:`FORMATS` and never branch on a format's name.
A loaded format is a :data:`Runner`: a float32 NCHW batch in, logits out, both torch tensors.
Every format takes any batch size (the batch dimension is dynamic).

>>> import tempfile
>>> from blocknas import ArchSpec, build, to_deploy
>>> spec = ArchSpec.from_dict({"version": 1, "input": [1, 8, 8], "num_classes": 10,
...     "stem": {"out": 8}, "layers": [{"block": "plain", "op": "acb", "out": 8}]})
>>> net = to_deploy(build(spec))
>>> x = torch.randn(5, 1, 8, 8)
>>> with tempfile.TemporaryDirectory() as d:
...     path = Path(d) / TORCHSCRIPT.filename
...     TORCHSCRIPT.write(net, torch.zeros(2, 1, 8, 8), path)
...     bool(torch.allclose(TORCHSCRIPT.load(path)(x), net(x)))
True
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

#: a loaded format: a batch in, logits out
Runner = Callable[[torch.Tensor], torch.Tensor]

#: the largest batch the exported programs accept (torch.export needs a bound)
MAX_BATCH = 4096

INSTALL_ONNX = "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'blocknas[export]'"


@dataclass(frozen=True)
class Format:
    """One file of the package: ``write(deploy_model, example_batch, path)``, ``load(path)``."""

    name: str  # as metrics.json and the card call it
    filename: str
    write: Callable[[nn.Module, torch.Tensor, Path], None]
    load: Callable[[Path], Runner]
    requires: tuple[str, ...] = ()  # modules beyond torch that writing and loading it need


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' deprecation notices and progress lines are not the user's concern."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


# --- TorchScript ---------------------------------------------------------------------------------
def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    # traced: the deploy form has no data-dependent control flow; the verification runs it at
    # several batch sizes, which catches a size frozen into the trace
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path))


def _load_torchscript(path: Path) -> Runner:
    with _quiet():
        module = torch.jit.load(str(path), map_location="cpu").eval()
    return as_runner(module)


# --- torch.export --------------------------------------------------------------------------------
def _write_program(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: _batch_dim()},))
        torch.export.save(program, str(path))


def _load_program(path: Path) -> Runner:
    with _quiet():
        module = torch.export.load(str(path)).module()
    return as_runner(module)


# --- ONNX ----------------------------------------------------------------------------------------
def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    import onnx

    with _quiet():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: _batch_dim()},),
            external_data=False,  # one self-contained file
            verbose=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _load_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        (out,) = session.run(None, {name: x.detach().cpu().float().numpy()})
        return torch.from_numpy(out)

    return run


def as_runner(module: Callable[[torch.Tensor], torch.Tensor]) -> Runner:
    """A module as a :data:`Runner`: called without autograd."""

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


TORCHSCRIPT = Format("torchscript", "model.ts", _write_torchscript, _load_torchscript)
PROGRAM = Format("torch.export", "model.pt2", _write_program, _load_program)
ONNX = Format("onnx", "model.onnx", _write_onnx, _load_onnx, ("onnx", "onnxscript", "onnxruntime"))

#: every serialised format of a package, in the order they are written and checked
FORMATS: tuple[Format, ...] = (TORCHSCRIPT, PROGRAM, ONNX)


def check_requirements(formats: tuple[Format, ...] = FORMATS) -> None:
    """Fail before any work when a format's libraries are missing (an ImportError that says
    what to install), not after a long retrain."""
    missing = [m for f in formats for m in f.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{INSTALL_ONNX} (missing: {', '.join(missing)})")

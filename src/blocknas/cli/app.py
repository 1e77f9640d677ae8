"""The Typer app every ``blocknas`` command registers on, and how user errors end a command.

Bad input ends with one line on stderr naming what is wrong and exit status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

try:  # typer ≥ 0.2x runs on its own copy of click, with its own exceptions and context
    from typer._click import exceptions as click_errors
    from typer._click.globals import get_current_context
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
    from click import get_current_context  # type: ignore[no-redef]


class OneLineErrors(TyperGroup):
    """The root command: click's usage errors (an unknown option, a flag's bad value, a missing
    argument) end like every other error, with one ``error:`` line and exit status 2, instead of
    a usage block and a framed message."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        own = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*own, **extra)
        try:
            code = super().main(*own, **extra)
        except click_errors.NoArgsIsHelpError as e:  # a bare group: its help, not an error
            typer.echo(e.format_message())
            sys.exit(0)
        except click_errors.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {' '.join(e.format_message().split())}{hint}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(code) comes back as code


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural architecture search for CNNs under MACs and latency budgets.",
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """End the command: ``error: message`` on stderr, exit status ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn the errors a user can cause into a one-line message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from blocknas.spaces.errors import SpecError

        try:
            return fn(*args, **kwargs)
        except (SpecError, ValueError, OSError) as e:
            ctx = get_current_context(silent=True)
            if ctx is not None and ctx.find_root().params.get("debug"):
                raise
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper  # type: ignore[return-value]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks.")] = False,
) -> None:
    """Global options; ``--debug`` is read back from the root context by :func:`user_errors`."""


def parse_input(text: str) -> tuple[int, int, int]:
    """``3,224,224`` → (3, 224, 224); a ValueError naming the flag otherwise."""
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--input={text!r} must be C,H,W, e.g. 3,224,224") from None
    if min(c, h, w) < 1:
        raise ValueError(f"--input={text!r}: C, H and W must each be ≥ 1")
    return c, h, w


SpecFile = Annotated[Path, typer.Argument(help="An ArchSpec file (.yaml or .json).")]


class ProgressBar:
    """A progress bar on stderr whose length is known only at the first update (``done`` of
    ``total``), for work that counts its own steps; a no-op until then.

    >>> with ProgressBar("profiling") as bar:
    ...     bar.update(1, 2)
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def update(self, done: int, total: int, label: str | None = None) -> None:
        if self.bar is None:
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        if label is not None:
            self.bar.label = label
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

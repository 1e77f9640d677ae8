"""Field types of every user-facing model (specs, spaces, search and training configs), and how
their errors read: one line naming the field, the value and what is allowed.

Pydantic's lax mode takes ``true`` for ``1`` and ``"yes"`` for ``true``, so a typo in a YAML file
would silently become a setting. These types refuse what a user cannot have meant: a bool where a
number belongs, a float or a string where an integer belongs, anything but true/false for a
flag. Floats still take numeric strings, because YAML 1.1 (PyYAML) reads ``lr: 1e-3`` as the
string ``"1e-3"``; the models refuse NaN and infinities (``allow_inf_nan=False``).
"""

from __future__ import annotations

from inspect import isclass
from pathlib import Path, PurePath
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, Strict, ValidationError
from pydantic_core import PydanticCustomError

from blocknas.spaces.errors import SpecError

T = TypeVar("T")


def show(value: Any, width: int = 60) -> str:
    """``value`` as an error names it: on one line, cut to ``width`` characters, booleans and
    null as YAML writes them (the user wrote ``true``, not ``True``).

    >>> show(True), show(None), show("a\\nb"), show(list(range(30)), width=12)
    ('true', 'null', "'a\\\\nb'", '[0, 1, 2, 3…')
    """
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _no_bool(value: Any) -> Any:
    """Refuse a bool before pydantic turns it into 1 or 1.0 (``isinstance(True, int)``)."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_number", "{value} is a boolean, not a number", {"value": value}
        )
    return value


#: refuses a bool where pydantic would take it as 1 (``Annotated[Literal[1], NoBool]``)
NoBool = BeforeValidator(_no_bool)
#: an integer: no bool, float or string
Int = Annotated[int, Strict()]
#: a number: int, float or numeric string; no bool
Float = Annotated[float, NoBool]
#: true or false, nothing else
Bool = Annotated[bool, Strict()]
#: a convolution stride
Stride = Annotated[Literal[1, 2], NoBool]
#: a width, depth, kernel size…: an integer ≥ 1
Positive = Annotated[int, Strict(), Field(ge=1)]


def _odd(kernel: int) -> int:
    if kernel % 2 == 0:
        raise ValueError(f"kernel={kernel} must be odd (every op pads it symmetrically)")
    return kernel


#: a layer's kernel size in a space: odd, as every op requires
Kernel = Annotated[Positive, AfterValidator(_odd)]
#: a share of something, in (0, 1]
Fraction = Annotated[float, NoBool, Field(gt=0.0, le=1.0)]
#: a search space's choices for one field: at least one
Choices = Annotated[list[T], Field(min_length=1)]


def _file_path(value: Any) -> Any:
    """A file or folder name: a non-empty string (``Path("")`` would silently mean ``.``)."""
    if isinstance(value, str | PurePath) and str(value).strip() and "\x00" not in str(value):
        return value
    raise ValueError(f"{show(value)} is not a path; give a file or folder name")


#: a file or folder: a non-empty string without NUL bytes
FilePath = Annotated[Path, BeforeValidator(_file_path)]


def as_fields(data: Any, what: str, where: str = "") -> dict[str, Any]:
    """``data`` checked for use as a model's fields: a mapping (of ``what``, at ``where``) whose
    keys are all strings; a one-line SpecError otherwise (YAML keys may be numbers or null)."""
    if not isinstance(data, dict):
        raise SpecError(where, f"{what} must be a mapping, got {type(data).__name__} {show(data)}")
    for key in data:
        if not isinstance(key, str):
            path = f"{where}[{show(key)}]"
            raise SpecError(path, f"unknown field: a field name is a string, got {show(key)}")
    return data


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("layers", 3, "groups")`` → ``layers[3].groups``; a key that is no name is quoted
    (``stem['a b']``), so that a stray key with a line break stays on one line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{show(part)}]"
    return out


#: what a pydantic error type says about the value it got (``{ctx}`` filled from the error)
PROBLEMS = {
    "int_type": "is not an integer",
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_type": "is not a number",
    "float_parsing": "is not a number",
    "finite_number": "is not a finite number",
    "bool_number": "is a boolean, not a number",
    "bool_type": "is not true or false",
    "bool_parsing": "is not true or false",
    "string_type": "is not a string",
    "list_type": "is not a list",
    "tuple_type": "is not a list",
    "dict_type": "is not a mapping",
    "model_type": "is not a mapping",
    "model_attributes_type": "is not a mapping",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be ≥ {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be ≤ {le}",
    "literal_error": "is not {expected}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_pattern_mismatch": "must match {pattern}",
}


def spec_error(e: ValidationError, model: type[BaseModel] | None = None) -> SpecError:
    """The first pydantic error as a one-line SpecError naming the field, the value it got and
    what is allowed (or the SpecError a validator raised). With the ``model`` validated, a
    number field's message says what it allows in full: ``true is not an integer ≥ 1``."""
    err = e.errors()[0]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    path = field_path(loc)
    if isinstance(ctx.get("error"), SpecError):
        return ctx["error"].at(path)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = f"; known: {', '.join(parent.model_fields)}" if parent is not None else ""
        return SpecError(path, f"unknown field{known}")
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a tuple one item short
        return SpecError(field_path(loc[:-1]), f"{show(err['input'])} has too few items")
    if kind == "missing":
        return SpecError(path, "required field is missing")
    if kind == "value_error":  # a validator's own message already names the value
        return SpecError(path, err["msg"].removeprefix("Value error, "))
    expected = _expected(model, loc) if kind in NUMBER_ERRORS else None
    if expected is not None:
        return SpecError(path, f"{show(err['input'])} is not {expected}")
    problem = PROBLEMS.get(kind)
    if problem is None:
        return SpecError(path, f"{err['msg']}, got {show(err['input'])}")
    return SpecError(path, f"{show(err['input'])} {problem.format(**ctx)}")


#: errors of a number field that its full description answers best
NUMBER_ERRORS = {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}
NUMBER_ERRORS |= {"bool_number", "greater_than", "greater_than_equal", "less_than"}
NUMBER_ERRORS |= {"less_than_equal"}
BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _expected(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str | None:
    """What the number field at ``loc`` of ``model`` allows (``an integer ≥ 1``, ``a number > 0
    and ≤ 1``); None when ``loc`` is not a number field of nested models (a list item, say)."""
    parent = _model_at(model, loc[:-1])
    if parent is None or not loc or loc[-1] not in parent.model_fields:
        return None
    field = parent.model_fields[str(loc[-1])]
    kinds = _types(field.annotation)
    noun = "a number" if float in kinds else "an integer" if int in kinds else None
    if noun is None:
        return None
    bounds = [f"{sign} {getattr(m, name)}" for m in field.metadata for name, sign in BOUNDS
              if hasattr(m, name)]  # fmt: skip
    return " ".join([noun, " and ".join(bounds)]).strip()


def _model_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> Any:
    """The model that validates the mapping at ``loc`` of ``model`` (through nested models and
    lists of them: ``("layers", 3)`` → LayerSpec); None when it cannot be told."""
    annotation: Any = model
    for part in loc:
        if isinstance(part, int) and get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        elif isclass(annotation) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            annotation = None if field is None else field.annotation
        else:
            return None
    return annotation if isclass(annotation) and issubclass(annotation, BaseModel) else None


def _types(annotation: Any) -> set[Any]:
    """The plain types an annotation allows: ``int | None`` → {int, NoneType}."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _types(args[0])
    if origin in (Union, UnionType):
        return set().union(*(_types(a) for a in args))
    return {annotation}

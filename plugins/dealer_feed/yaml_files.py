"""The project's YAML files (dealer-group configs, simulator worlds) read into pydantic
models. One reader, so every kind of file fails the same readable way: the message names
the file, then each offending field (`dealers.0.grants.Vehicle.begins: ...`), never a
traceback."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def read_mapping(path: Path, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The file's top-level mapping; `error` says which file is missing or malformed."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return raw


def validate(model: type[Model], raw: dict[str, Any], path: Path, what: str, error: type[ValueError]) -> Model:
    """`raw` as `model`; `error` lists every offending field by its dotted location."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg'].removeprefix('Value error, ')}"
            + (f" (allowed keys: {', '.join(_keys_at(model, e['loc'][:-1]))})" if e["type"] == "extra_forbidden" else "")
            for e in exc.errors()
        )
        raise error(f"{path}: invalid {what}: {problems}") from None


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names of the model found at `loc` (walking nested models, skipping list
    indexes and dict keys), so a misspelt key is answered with the keys that would work."""
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:
            continue
        inner = [t for t in _flatten(model.model_fields[part].annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        if not inner:
            break
        model = inner[0]
    return list(model.model_fields)


def _flatten(annotation: Any) -> list[Any]:
    """`annotation` and every type nested in it (tuple[Dealer, ...] -> [tuple, Dealer, Ellipsis])."""
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _flatten(arg))]

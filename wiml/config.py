"""Typed configuration: dataclasses loaded from YAML, overridable from the command line.

Every run writes its resolved configuration beside its outputs (:func:`save_config`).

Range checks: a config class may declare ``RANGES: ClassVar[dict[str, str]]`` mapping a numeric field to its
allowed range, written ``"> 0"``, ``">= 1"``, ``"<= 1"``, ``"(0, 1)"``, ``"[0, 1)"`` ... (a list field: every
item; None: not checked). :func:`load_config` checks every section before it returns, so an out-of-range
setting fails with one line per setting before anything is written (:func:`check_ranges`).

Example:
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 1e-3
    >>> cfg = load_config(Opt, None, ["lr=0.01"])
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from wiml.errors import ConfigError
from wiml.utils import atomic_write_text

T = TypeVar("T")


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from exc
        if tp is int and isinstance(value, float) and value != out:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def _in_range(value: float, spec: str) -> bool:
    """Whether ``value`` satisfies ``spec`` (``"> 0"``, ``">= 1"``, ``"(0, 1)"``, ``"[0, 1]"``, ...)."""
    spec = spec.strip()
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            bound = float(spec[len(op) :])
            return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]
    lo_text, hi_text = spec[1:-1].split(",")
    lo, hi = float(lo_text), float(hi_text)
    above = value >= lo if spec[0] == "[" else value > lo
    below = value <= hi if spec[-1] == "]" else value < hi
    return above and below


def range_problems(obj: Any, where: str = "") -> list[str]:
    """Every setting of a (nested) config dataclass outside its class's ``RANGES``, one line each.

    Returns:
        Lines like ``trainer.epochs = 0: expected >= 1`` (empty when every value is in range).
    """
    problems: list[str] = []
    if not dataclasses.is_dataclass(obj):
        return problems
    ranges = getattr(type(obj), "RANGES", {}) or {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            problems += range_problems(value, name)
            continue
        spec = ranges.get(f.name)
        if spec is None or value is None:
            continue
        is_list = isinstance(value, (list, tuple))
        items = list(value) if is_list else [value]
        bad = [v for v in items if isinstance(v, (int, float)) and not (v == v and _in_range(float(v), spec))]
        if bad:
            problems.append(f"{name} = {value!r}: expected {spec}{' for every item' if is_list else ''}")
    return problems


def check_ranges(obj: Any, where: str = "") -> None:
    """Raise when a setting of ``obj`` is out of its range (:func:`range_problems`).

    Raises:
        ConfigError: one line per setting out of range, joined by "; ".
    """
    problems = range_problems(obj, where)
    if problems:
        raise ConfigError("; ".join(f"{p}" for p in problems))


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from a (nested) mapping, checking names and types.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict with YAML-friendly values (Path -> str)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def split_override(item: str) -> tuple[str, str]:
    """``" optim.lr = 0.1"`` -> ``("optim.lr", "0.1")``: an override's key and raw value, stripped."""
    key, _, raw = item.partition("=")
    return key.strip(), raw.strip()


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested dict, in place.

    Raises:
        ConfigError: an override without ``=``.
    """
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. optim.lr=0.001)")
        key, raw = split_override(item)[0], item.partition("=")[2]
        value = yaml.safe_load(raw) if raw != "" else ""
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return data


def _overrides_error(exc: ConfigError, overrides: list[str]) -> ConfigError:
    """``exc`` blamed on the ``--set`` overrides whose key (or last key part, for an unknown key) its message
    names, or on all of them when none is recognisable."""
    msg = str(exc)

    def named(item: str) -> bool:
        key = split_override(item)[0]
        return bool(key) and (key in msg or repr(key.split(".")[-1]) in msg)

    blamed = [o for o in overrides if named(o)] or list(overrides)
    return ConfigError(f"--set {', '.join(blamed)}: {msg}")


def build_with_overrides(
    build: Callable[[dict], T], data: dict, overrides: list[str] | None, path: str | Path | None
) -> T:
    """``build(data + overrides)``, with an error blamed where it comes from: on the file ``path`` when ``data``
    alone is wrong, else on the ``--set`` overrides (``--set optim.lr=abc: config.optim.lr: expected float``).
    An override may mend a wrong file value.

    Args:
        build: makes (and checks) the config from a mapping; raises :class:`ConfigError`.
        data: the mapping from the defaults and the file (not modified).
        overrides: ``key=value`` overrides.
        path: the file behind ``data`` (None = none).

    Raises:
        ConfigError: from ``build``, naming the file or the overrides.
    """
    try:
        return build(apply_overrides(copy.deepcopy(data), overrides))
    except ConfigError as exc:
        if not overrides:
            raise (ConfigError(str(exc), path) if path is not None else exc) from exc
        try:
            build(copy.deepcopy(data))
        except ConfigError as file_exc:
            if path is not None:
                raise ConfigError(str(file_exc), path) from exc
        raise _overrides_error(exc, overrides) from exc


def with_overrides(obj: T, overrides: list[str] | None) -> T:
    """A copy of config dataclass ``obj`` with ``key.sub=value`` overrides applied and checked (as in
    :func:`load_config`).

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    out = from_dict(type(obj), apply_overrides(to_dict(obj), overrides))
    check_ranges(out)
    return out


def merge_mappings(base: dict, extra: dict) -> dict:
    """Merge mapping ``extra`` into ``base`` in place, section by section (``extra`` wins); returns ``base``."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge_mappings(base[k], v)
        else:
            base[k] = v
    return base


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    """The mapping a YAML file holds at its top level (``{}`` for an empty file).

    Args:
        path: the YAML file.
        what: what the file is, for the "not found" message.

    Raises:
        ConfigError: naming ``path``: it is missing, not valid YAML, or not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc.__class__.__name__}: {exc})", path) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a YAML mapping at the top level", path)
    return data


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    section: str | None = None,
) -> T:
    """Load dataclass ``cls`` from defaults, then a YAML file, then ``key=value`` overrides.

    Args:
        cls: the config dataclass.
        path: YAML file (optional). Relative paths inside it stay as written; callers resolve them
            against the YAML file's folder where that matters.
        overrides: ``["optim.lr=0.001", ...]``.
        section: read only this top-level section of the YAML file (e.g. ``train_weak``).

    Raises:
        ConfigError: the file is missing, not YAML, not a mapping, or has unknown keys / wrong types; a
            setting out of its range (``RANGES`` of its class; every such setting is listed). A mistake of the
            file names the file; one that only the overrides make names the ``--set`` values instead.
    """
    data: dict = to_dict(cls())
    if path is not None:
        path = Path(path)
        loaded = read_yaml_mapping(path)
        if section is not None:
            loaded = loaded.get(section, {}) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{section}: expected a YAML mapping", path)
        merge_mappings(data, loaded)

    def build(mapping: dict) -> T:
        config = from_dict(cls, mapping)
        check_ranges(config)
        return config

    return build_with_overrides(build, data, overrides, path)


def save_config(obj: Any, path: str | Path) -> Path:
    """Write a config dataclass (or dict) as YAML, atomically."""
    return atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))

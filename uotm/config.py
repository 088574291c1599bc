"""The one configuration base: field types read from the dataclass, one range rule per field, one ``from_dict``.

Every configuration class (:class:`uotm.presets.ImageConfig` and its blocks, :class:`uotm.toy.ToyConfig`,
:class:`uotm.sjko.SJKOToyConfig`, :class:`uotm.wae.WAEConfig`) is a plain dataclass that inherits :class:`Config`
and lists a :class:`Rule` per field in ``RULES``. :meth:`Config.check_fields` then checks, for every field:

* its type, read from the dataclass's annotation (``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``,
  ``X | None``, a nested ``Config``): a bool is not a number, 2.5 is not an integer, ``"x"`` is not a float;
* that a number is finite and fits the type the run computes in: floats within float32's range (a learning rate of
  1e39 would overflow), integers within int64's;
* its rule: a range (``low``/``high``, open or closed), a set of choices, the smallest length of a tuple, or a check
  of its own.

Each failure is one sentence naming the field (``net.ch_mult must ...``) and raised as ``ValueError``; the command
line prints it and exits with status 2. :meth:`Config.from_dict` builds a config from a mapping (YAML, a snapshot's
``config``), naming unknown keys, turning lists into tuples and nested mappings into their blocks;
:meth:`Config.apply_settings` applies the command line's ``--set KEY=VALUE`` strings (``net.KEY=VALUE`` inside a
block) to such a mapping, each value read as its field's type (:func:`parse_setting`).
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Callable, ClassVar

FLOAT32_MAX = 3.4028234663852886e38
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """What one field may hold besides its type: a range ``[low, high]`` (``low_open``/``high_open`` exclude the
    ends; for a tuple, each item), ``choices``, ``min_items`` for a tuple, and ``check(value)``, a function that
    raises ``ValueError`` with the reason (e.g. an unknown Psi* name)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    min_items: int = 0
    check: Callable[[Any], Any] | None = None

    def describe(self, integer: bool) -> str:
        """``a positive integer``, ``a non-negative finite number``, ``a number in [0, 1)``, ..."""
        kind = "integer" if integer else ("finite number" if self.high is None else "number")
        low, high = _bound(self.low), _bound(self.high)
        if self.high is None:
            if self.low == 0 and self.low_open:
                return f"a positive {kind}"
            if self.low == 0:
                return f"a non-negative {kind}"
            if self.low is None:
                return "a finite number" if not integer else "an integer"
            return f"{'an' if integer else 'a'} {kind} {'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'an' if integer else 'a'} {kind} {'<' if self.high_open else '<='} {high}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{'an' if integer else 'a'} {kind} in {left}{low}, {high}{right}"

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _bound(x) -> str:
    if x is None:
        return ""
    return "2**63 - 1" if x == INT64_MAX else f"{x:g}"


ANY = Rule()
POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)
UNIT = Rule(low=0, high=1, high_open=True)  # [0, 1): EMA decays, Adam's betas
SEED = Rule(low=0, high=INT64_MAX)


def one_of(*choices) -> Rule:
    return Rule(choices=tuple(choices))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unwrap_optional(kind) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(kind, False)``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0], True
    return kind, False


def _type_name(kind) -> str:
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if kind is bool:
        return "true or false"
    if kind is str:
        return "a string"
    return f"a {getattr(kind, '__name__', str(kind))}"


def check_value(name: str, value, kind, rule: Rule = ANY):
    """Check ``value`` against the annotation ``kind`` and ``rule``; raise ``ValueError`` naming ``name``."""
    kind, optional = _unwrap_optional(kind)
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} must be {_type_name(kind)}, got None")
    origin = typing.get_origin(kind)
    if origin is tuple or kind is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, (tuple, list)):
            example = "[1, 2, 2]" if not args or args[-1] is Ellipsis else f"a list of {len(args)} values"
            raise ValueError(f"{name} must be {'a list such as ' + example if example[0] == '[' else example}, "
                             f"got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            item_kinds = [args[0]] * len(value)
        elif args:
            if len(value) != len(args):
                raise ValueError(f"{name} must be a list of {len(args)} values, got {value!r}")
            item_kinds = list(args)
        else:
            item_kinds = [Any] * len(value)
        if len(value) < rule.min_items:
            raise ValueError(f"{name} must hold at least {rule.min_items} value(s), got {list(value)!r}")
        item_rule = Rule(rule.low, rule.high, rule.low_open, rule.high_open, rule.choices)
        for i, (item, item_kind) in enumerate(zip(value, item_kinds)):
            check_value(f"{name}[{i}]", item, item_kind, item_rule)
        _run_check(name, rule, value)
        return
    if origin is list or kind is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif kind is int:
        if not _is_int(value):
            raise ValueError(f"{name} must be {rule.describe(True)}, got {value!r}")
        if abs(value) > INT64_MAX:
            raise ValueError(f"{name} must be {rule.describe(True)} that fits in 64 bits, got {value!r}")
        if not rule.admits(value):
            raise ValueError(f"{name} must be {rule.describe(True)}, got {value!r}")
    elif kind is float:
        if not _is_number(value):
            raise ValueError(f"{name} must be {rule.describe(False)}, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be {rule.describe(False)}, got {value!r} (not a finite number)")
        if abs(value) > FLOAT32_MAX:
            raise ValueError(f"{name} must be {rule.describe(False)} within float32's range (|x| <= 3.4e38), got "
                             f"{value!r}")
        if not rule.admits(value):
            raise ValueError(f"{name} must be {rule.describe(False)}, got {value!r}")
    elif kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
    elif isinstance(kind, type) and issubclass(kind, Config):
        if not isinstance(value, kind):
            raise ValueError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        value.check_fields(prefix=f"{name}.")
        return
    if rule.choices is not None and value not in rule.choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, rule.choices))}, got {value!r}")
    _run_check(name, rule, value)


def _run_check(name: str, rule: Rule, value) -> None:
    if rule.check is None:
        return
    try:
        rule.check(value)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if name in message else f"{name}: {message}") from None


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


class Config:
    """The base of every configuration dataclass: ``RULES`` maps a field name to its :class:`Rule` (missing:
    type only)."""

    RULES: ClassVar[dict[str, Rule]] = {}
    NAME: ClassVar[str] = ""  # "toy " -> "unknown toy config keys [...]"

    def check_fields(self, prefix: str = "") -> None:
        """Check every field's type, finiteness and rule (nested configs too); ``ValueError`` names the first
        field that fails."""
        hints = _hints(type(self))
        for f in fields(self):
            check_value(prefix + f.name, getattr(self, f.name), hints[f.name], self.RULES.get(f.name, ANY))

    @classmethod
    def from_dict(cls, values: dict, prefix: str = ""):
        """A config from a mapping: unknown keys are named, lists become tuples where the field is a tuple, nested
        mappings become their blocks (missing keys keep the defaults). Not validated."""
        if not isinstance(values, dict):
            what = prefix.rstrip(".") or cls.__name__
            raise ValueError(f"{what} must be a mapping of {what}.* keys, got {values!r}")
        hints = _hints(cls)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.NAME}config keys {[prefix + k for k in unknown]}; valid keys are "
                             f"{', '.join(prefix + k for k in sorted(known))}")
        out = {}
        for key, value in values.items():
            kind, _ = _unwrap_optional(hints[key])
            if isinstance(kind, type) and issubclass(kind, Config) and is_dataclass(kind):
                value = kind.from_dict(value if value is not None else {}, f"{prefix}{key}.")
            elif (typing.get_origin(kind) is tuple or kind is tuple) and isinstance(value, list):
                value = tuple(value)
            elif kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
                try:
                    value = float(value)
                except ValueError:
                    pass  # check_fields names it
            out[key] = value
        return cls(**out)

    @classmethod
    def apply_settings(cls, values: dict, settings: list[str]) -> dict:
        """Apply ``--set`` strings ``KEY=VALUE`` (``block.KEY=VALUE`` inside a nested block such as ``net``) to the
        mapping ``values`` (in place; returned), each value read as its field's type (:func:`parse_setting`); an
        unknown key is one sentence listing the valid ones. Not validated (:meth:`check_fields` does that)."""
        return _apply_settings(cls, values, list(settings))


def parse_setting(text: str, kind, key: str):
    """``text`` (a ``--set`` value, YAML syntax: ``1e-4``, ``true``, ``[1, 2, 2]`` or ``1,2,2``, ``null`` for an
    optional field) read as the field type ``kind``; the value is not range-checked here (that is
    :meth:`Config.check_fields`' job), but a value that cannot be read as the type is one sentence."""
    import yaml

    kind, optional = _unwrap_optional(kind)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = text
    if optional and loaded is None:
        return None
    if kind is bool:
        if not isinstance(loaded, bool):
            raise ValueError(f"{key} takes true or false, not {text!r}")
        return loaded
    if kind in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{key} takes a number, not {text!r}") from None
        if kind is int:
            if not math.isfinite(number) or number != int(number):
                raise ValueError(f"{key} takes an integer, not {text!r}")
            return int(number)
        return number
    origin = typing.get_origin(kind)
    if origin in (tuple, list) or kind in (tuple, list):
        try:
            value = yaml.safe_load(text if text.strip().startswith("[") else f"[{text}]")
        except yaml.YAMLError:
            value = None
        if not isinstance(value, list):
            raise ValueError(f"{key} takes a list such as [1, 2, 2], not {text!r}")
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        item = args[0] if args and all(a is args[0] for a in args) else None
        if item in (int, float):
            try:
                value = [item(v) if not isinstance(v, bool) else v for v in value]
            except (TypeError, ValueError):
                raise ValueError(f"{key} takes a list of {'integers' if item is int else 'numbers'}, not "
                                 f"{text!r}") from None
        return tuple(value) if origin is tuple or kind is tuple else value
    if kind is str:
        return text
    return loaded


def _block_class(cls, name: str):
    kind, _ = _unwrap_optional(_hints(cls).get(name))
    return kind if isinstance(kind, type) and issubclass(kind, Config) else None


def _apply_settings(cls, values: dict, settings: list[str]) -> dict:
    known = {f.name for f in fields(cls)}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE (e.g. seed=1 or net.base_channels=64), not {item!r}")
        block, dot, rest = key.partition(".")
        block_cls = _block_class(cls, block) if dot else None
        if block_cls is not None and rest in {f.name for f in fields(block_cls)}:
            values.setdefault(block, {})
            values[block][rest] = parse_setting(text, _hints(block_cls)[rest], key)
            continue
        if key not in known or _block_class(cls, key) is not None:
            valid = sorted(k for k in known if _block_class(cls, k) is None)
            valid += [f"{b}.{f.name}" for b in sorted(known) if _block_class(cls, b) for f in
                      fields(_block_class(cls, b))]
            raise ValueError(f"unknown {cls.NAME}config key {key!r}; valid keys are {', '.join(valid)}")
        values[key] = parse_setting(text, _hints(cls)[key], key)
    return values


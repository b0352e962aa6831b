"""Reading the subscribers file: YAML with line numbers, ``${ENV}`` expansion, pydantic validation.

Every problem is reported as ``FILE:LINE: field.path: message`` so an operator can find it in the file;
the file is read again whenever it changes (``SubscribersWatcher``), without a restart.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.subscribers import SubscribersFile

log = logging.getLogger("pantau.alerts")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SubscribersError(Exception):
    """The file cannot be used; ``lines`` are the problems, each naming the line and the field."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


Path_ = tuple[str | int, ...]


MAX_VALUES = 100_000
"""Values a subscribers file may expand to: aliases of aliases grow it exponentially (a few lines reach
billions), and it is read on the delivery loop; a real file of hundreds of subscribers has thousands."""


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], env: Mapping[str, str], where: str) -> Any:
    """The node as plain data, recording each value's line; ``${NAME}`` replaced from ``env``."""
    lines[path] = node.start_mark.line + 1
    if len(lines) > MAX_VALUES:
        raise SubscribersError(
            [f"{where}:{lines[path]}: the file expands to over {MAX_VALUES:,} values (aliases of aliases?)"]
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise SubscribersError(
                    [f"{where}:{key_node.start_mark.line + 1}: {_dotted((*path, key))}: repeated key"]
                )
            out[key] = _walk(value_node, (*path, key), lines, env, where)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, env, where) for i, item in enumerate(node.value)]
    try:
        value = _scalar(node)
    except yaml.YAMLError as exc:  # e.g. a tag the safe loader does not know (!secret)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SubscribersError([f"{where}:{lines[path]}: {_dotted(path)}: {problem}"]) from None
    except ValueError as exc:  # an int of over 4,300 digits, a date like 2026-13-01
        problem = str(exc).split(";")[0]  # without Python's hint (sys.set_int_max_str_digits)
        raise SubscribersError([f"{where}:{lines[path]}: {_dotted(path)}: {problem}"]) from None
    if isinstance(value, str):
        missing = [name for name in _ENV.findall(value) if name not in env]
        if missing:
            raise SubscribersError(
                [f"{where}:{lines[path]}: {_dotted(path)}: environment variable {missing[0]} is not set"]
            )
        value = _ENV.sub(lambda m: env[m.group(1)], value)
    return value


_PLAIN_NUMBER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _scalar(node: yaml.Node) -> Any:
    """A scalar as YAML's safe loader reads it (``3602`` an int, ``"3602"`` a string, ``true`` a bool),
    except a number not written as a plain decimal, which stays as written: YAML 1.1 reads an unquoted
    ``18:30`` as the base-60 number 1110, a phone number id ``0123`` as the octal 83, ``1e5`` as 100000.0
    and ``1_000`` as 1000 (a numeric field still reads "0123" as 123)."""
    if (
        isinstance(node, yaml.ScalarNode)
        and node.tag.endswith((":int", ":float"))
        and not _PLAIN_NUMBER.fullmatch(str(node.value))
    ):
        return str(node.value)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "file"


def parse_subscribers(
    text: str, where: str = "<alerts file>", env: Mapping[str, str] | None = None
) -> SubscribersFile:
    """The validated file, or ``SubscribersError`` naming each problem's line and field."""
    env = os.environ if env is None else env
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise SubscribersError([f"{where}:{line}: not valid YAML: {exc.problem or exc.context}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character (NUL, ESC…): no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        problem = f"character #x{exc.character:04x} is not allowed in YAML"
        raise SubscribersError([f"{where}:{line}: not valid YAML: {problem}"]) from None
    except RecursionError:  # thousands of nested [ or {
        raise SubscribersError([f"{where}:1: not valid YAML: nests too deeply"]) from None
    if root is None:
        return SubscribersFile()
    lines: dict[Path_, int] = {}
    try:
        data = _walk(root, (), lines, env, where)
    except RecursionError:  # an alias that contains itself
        raise SubscribersError([f"{where}:1: file: aliases nest too deeply"]) from None
    if not isinstance(data, dict):
        raise SubscribersError([f"{where}:{lines[()]}: file: must be a mapping with a subscribers list"])
    try:
        return SubscribersFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            known = next((loc[:n] for n in range(len(loc), -1, -1) if loc[:n] in lines), ())
            field = _dotted(loc) if loc else "file"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}:{lines.get(known, 1)}: {field}: {message}")
        raise SubscribersError(problems) from None


def load_subscribers(path: Path, env: Mapping[str, str] | None = None) -> SubscribersFile:
    """``parse_subscribers`` of the file; one that cannot be read, or is not UTF-8 (a Latin-1 ``é`` in a
    comment), is a ``SubscribersError`` too, so the CLI prints one line and the worker keeps the last good
    file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscribersError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SubscribersError([f"{path}:{line}: not UTF-8: byte 0x{data[exc.start]:02x}"]) from None
    return parse_subscribers(text, str(path), env)


class SubscribersWatcher:
    """The file's current subscribers, read again when its modification time or size changes. A change
    that breaks the file keeps the last good version (and says why, once per change). So does an empty
    file: that is what a save caught between its truncate and its write reads as (``subscribers: []``
    removes everyone); and a file that changed while it was read is read again on the next call."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current = SubscribersFile()
        self.error: SubscribersError | None = None
        self._stamp: tuple[float, int] | None = None

    def _stat(self) -> tuple[float, int]:
        assert self.path is not None
        try:
            stat = self.path.stat()
            return (stat.st_mtime, stat.st_size)
        except OSError:
            return (0.0, -1)

    def get(self) -> SubscribersFile:
        if self.path is None:
            return self.current
        stamp = self._stat()
        if stamp == self._stamp:
            return self.current
        if stamp[1] == 0 and self._stamp is not None:
            self._stamp = stamp
            log.info("subscribers file %s is empty, keeping the last good one", self.path)
            return self.current
        try:
            loaded, error = load_subscribers(self.path), None
        except SubscribersError as exc:
            loaded, error = None, exc
        if self._stat() != stamp:
            return self.current  # written while it was read: the next call reads the finished file
        self._stamp, self.error = stamp, error
        if loaded is not None:
            self.current = loaded
            log.info("subscribers file %s: %d subscribers", self.path, len(self.current.subscribers))
        else:
            log.error("subscribers file not used, keeping the last good one: %s", error)
        return self.current

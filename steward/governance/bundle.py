"""The rules bundle: the Rego policies and the data document in one directory.

`load_bundle(dir)` reads every `*.rego` file under the directory (the `*_test.rego` files
apart, as tests) and `data.json` at its root (the data document, OPA's `data`), and names
the pair by a revision. `compile_bundle` turns it into a regopy interpreter; a syntax error
becomes a `ConfigError` naming the file, line and column.

The revision is the first 16 hex characters of a SHA-256 over the evaluated files in
sorted relative-path order: for each, its POSIX relative path, a NUL byte, its bytes, a
NUL byte. The evaluated files are the policy `.rego` files and `data.json`; test files
and examples do not change what a decision says, so they do not change the revision.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward.errors import ConfigError

DATA_FILE = "data.json"
TEST_SUFFIX = "_test.rego"
GATE_PATH = "steward/gate/decision"
"""The one entry document the governance gate evaluates."""
ENTRYPOINTS: tuple[str, ...] = (GATE_PATH,)
"""Paths compiled ahead of time (fast path); any other path is evaluated as a query."""

_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)
_ERROR_AT = re.compile(r"\(error \d+:(?P<file>[^|\s]+)\|(?P<offset>\d+)\|(?P<length>\d+)")
_ERROR_MSG = re.compile(r"\(errormsg \d+:(?P<msg>[^)\n]*)\)")


@dataclass(frozen=True)
class RegoFile:
    """One Rego module: its path relative to the rules directory, and its source."""

    path: str
    text: str

    @property
    def package(self) -> str:
        match = _PACKAGE.search(self.text)
        if match is None:
            raise ConfigError(f"{self.path}: no package declaration")
        return match.group(1)

    def test_rules(self) -> list[str]:
        """Names of the `test_*` rules a test module defines, in file order, once each."""
        return list(dict.fromkeys(_TEST_RULE.findall(self.text)))


@dataclass(frozen=True)
class Bundle:
    """Policies, tests and the data document of one rules directory, and their revision."""

    root: Path
    modules: tuple[RegoFile, ...]
    tests: tuple[RegoFile, ...]
    data: dict[str, Any]
    revision: str
    signature: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)


def _rego_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.rego") if p.is_file())


def signature(rules_dir: str | Path) -> tuple[tuple[str, int, int], ...]:
    """(relative path, mtime_ns, size) of every file a bundle reads: a cheap change check."""
    root = Path(rules_dir)
    paths = _rego_files(root)
    data = root / DATA_FILE
    if data.is_file():
        paths.append(data)
    out = []
    for p in paths:
        with contextlib.suppress(OSError):
            st = p.stat()
            out.append((p.relative_to(root).as_posix(), st.st_mtime_ns, st.st_size))
    return tuple(out)


def revision_of(files: dict[str, bytes]) -> str:
    """The revision of the evaluated files (relative path -> bytes); see the module doc."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()[:16]


def load_bundle(rules_dir: str | Path) -> Bundle:
    """Read a rules directory; `ConfigError` when it is missing, empty or has bad JSON."""
    root = Path(rules_dir)
    if not root.is_dir():
        raise ConfigError(f"rules directory {root} does not exist")
    sig = signature(root)
    modules: list[RegoFile] = []
    tests: list[RegoFile] = []
    evaluated: dict[str, bytes] = {}
    for path in _rego_files(root):
        rel = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{rel}: not UTF-8 ({exc})") from exc
        if rel.endswith(TEST_SUFFIX):
            tests.append(RegoFile(rel, text))
        else:
            modules.append(RegoFile(rel, text))
            evaluated[rel] = raw
    if not modules:
        raise ConfigError(f"rules directory {root} has no .rego policies")
    data: dict[str, Any] = {}
    data_path = root / DATA_FILE
    if data_path.is_file():
        raw = data_path.read_bytes()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{DATA_FILE}: invalid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{DATA_FILE}: the data document must be a JSON object")
        evaluated[DATA_FILE] = raw
    for module in (*modules, *tests):
        _ = module.package  # every module declares one
    return Bundle(root, tuple(modules), tuple(tests), data, revision_of(evaluated), sig)


def rego_error(exc: Exception, sources: dict[str, str], what: str = "syntax error") -> ConfigError:
    """A `ConfigError` naming the file, line and column of a regopy compile error."""
    text = str(exc)
    at = _ERROR_AT.search(text)
    msg = _ERROR_MSG.search(text)
    message = msg.group("msg").strip() if msg else text.strip().splitlines()[0][:200]
    if at is None:
        return ConfigError(f"rego {what}: {message}")
    name = at.group("file")
    offset = int(at.group("offset"))
    source = sources.get(name)
    if source is None:
        return ConfigError(f"{name}: rego {what}: {message}")
    before = source.encode("utf-8")[:offset].decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return ConfigError(f"{name}:{line}:{column}: rego {what}: {message}")

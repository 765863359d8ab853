"""The embedded policy engine: Rego evaluated in-process by regopy (rego-cpp).

One compiled interpreter per revision. The gate's entry document (and any other path in
`entrypoints`) is compiled ahead of time into a regopy bundle and evaluated through it
(about a tenth of a millisecond); any other path is evaluated as a query (about a
millisecond: the query is compiled each time).

regopy's interpreter is not safe to share between threads (input is interpreter state),
so evaluation is serialised by a lock (`threads="lock"`, the default), or each thread
compiles its own interpreter (`threads="per_thread"`); bench/governance.py measures both.

`reload_if_changed()` re-reads the rules directory when a file's mtime or size changed,
and switches revision only when the content changed; a new bundle that does not compile
is logged and the old one kept. `evaluate()` never raises: an engine failure is an
`Evaluation` with `error` set, so the gate fails closed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import regopy
from regopy.rego_shared import (
    rego_bundle_query_entrypoint,
    rego_free_output,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from steward.errors import ConfigError
from steward.governance.bundle import ENTRYPOINTS, Bundle, load_bundle, rego_error, signature
from steward.governance.engine import Evaluation

log = logging.getLogger("steward.governance.embedded")

MAX_ENTRYPOINTS = 64
"""Paths compiled on first use, at most; further paths are evaluated as queries."""
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ERROR_MSG = re.compile(r"\(errormsg \d+:(?P<msg>[^)\n]*)\)")


class RegoEvalError(Exception):
    """The interpreter answered with an error instead of a value."""


def query_for(path: str) -> str:
    """The Rego query for a slash-separated data path (`a/b-c` -> `data.a["b-c"]`)."""
    query = "data"
    for segment in (s for s in path.strip("/").split("/") if s):
        query += f".{segment}" if _SEGMENT.match(segment) else f"[{json.dumps(segment)}]"
    return query


def _parse_output(impl: Any) -> Any:
    """The value of a one-expression query output; None when undefined."""
    try:
        if not rego_output_ok(impl):
            raise RegoEvalError("evaluation error (conflicting rule values or a runtime error)")
        text = rego_output_string(impl)
    finally:
        rego_free_output(impl)
    if text == "undefined":
        return None
    if text.startswith("(error"):
        match = _ERROR_MSG.search(text)
        raise RegoEvalError(match.group("msg") if match else text.strip()[:300])
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RegoEvalError(f"unreadable interpreter output: {text[:200]!r}") from exc
    if isinstance(doc, list):  # several results: a ref query has one
        doc = doc[0] if doc else {}
    expressions = doc.get("expressions") or []
    return expressions[0] if expressions else None


class Compiled:
    """One revision compiled into one interpreter. Not thread-safe: hold `lock`."""

    def __init__(self, bundle: Bundle, entrypoints: Iterable[str] = ENTRYPOINTS,
                 *, with_tests: bool = False) -> None:
        self.revision = bundle.revision
        self.lock = threading.Lock()
        self.bundle = bundle
        self.with_tests = with_tests
        modules = (*bundle.modules, *bundle.tests) if with_tests else bundle.modules
        self.packages = {m.package.replace(".", "/") for m in modules}
        self._not_entrypoints: set[str] = set()
        self._compile(tuple(p.strip("/") for p in entrypoints))

    def _compile(self, entrypoints: tuple[str, ...]) -> None:
        """A fresh interpreter and bundle for `entrypoints` (rebuilding a bundle on the same
        interpreter mixes up rego-cpp's entrypoints, so every build starts afresh)."""
        interp = regopy.Interpreter()
        interp.log_level = regopy.LogLevel.NONE  # errors come back as exceptions
        sources: dict[str, str] = {}
        try:
            interp.add_data(self.bundle.data)
        except regopy.RegoError as exc:
            raise ConfigError(f"data.json: rejected by the interpreter: {exc}") from exc
        modules = self.bundle.modules + (self.bundle.tests if self.with_tests else ())
        for module in modules:
            sources[module.path] = module.text
            try:
                interp.add_module(module.path, module.text)
            except regopy.RegoError as exc:
                raise rego_error(exc, sources) from exc
        try:
            rbundle = interp.build(None, list(entrypoints))
        except regopy.RegoError as exc:
            raise rego_error(exc, sources, "compile error") from exc
        except Exception as exc:  # regopy reports some compile failures as bad output
            raise ConfigError(f"rego compile error: {exc}") from exc
        self.interp, self.rbundle, self.entrypoints = interp, rbundle, entrypoints

    def _entrypoint(self, path: str) -> bool:
        """Compile `path` as an entrypoint on first use (rego-cpp's plain query path ignores
        `default` values); False when it is a package or cannot be compiled (then it is
        evaluated as a query)."""
        if path in self.entrypoints:
            return True
        if (path in self._not_entrypoints or path in self.packages
                or len(self.entrypoints) >= MAX_ENTRYPOINTS):
            return False
        try:
            self._compile((*self.entrypoints, path))
        except ConfigError:
            self._not_entrypoints.add(path)
            self._compile(self.entrypoints)
            return False
        return True

    def evaluate(self, path: str, input: Any) -> Any:
        """The document at `path` for `input` (None when undefined); raises on error."""
        path = path.strip("/")
        term = json.dumps(input, separators=(",", ":"), allow_nan=False)
        if path.count("/") >= 1 and self._entrypoint(path):  # may recompile: input after
            self.interp.set_input_term(term)
            impl = rego_bundle_query_entrypoint(self.interp._impl, self.rbundle._impl, path)
        else:
            self.interp.set_input_term(term)
            impl = rego_query(self.interp._impl, query_for(path))
        return _parse_output(impl)


class EmbeddedEngine:
    """`PolicyEngine` over a rules directory, evaluated in-process with regopy."""

    name: Literal["embedded"] = "embedded"

    def __init__(self, rules_dir: str | Path, *,
                 entrypoints: Iterable[str] = ENTRYPOINTS,
                 threads: Literal["lock", "per_thread"] = "lock",
                 reload_every_s: float | None = None,
                 on_reload: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 logger: logging.Logger | None = None) -> None:
        """Compile the rules now; `ConfigError` if they do not compile.

        `reload_every_s`: when set, `evaluate` calls `reload_if_changed` at most that
        often. `on_reload(old, new)` is called after every switch of revision.
        """
        self.rules_dir = Path(rules_dir)
        self.entrypoints = tuple(entrypoints)
        self.threads = threads
        self.reload_every_s = reload_every_s
        self.on_reload = on_reload
        self.clock = clock
        self.log = logger or log
        self.last_error: str | None = None
        """Why the newest files on disk are not in use (None when they are)."""
        self._reload_lock = threading.Lock()
        self._local = threading.local()
        bundle = load_bundle(self.rules_dir)
        self._compiled = Compiled(bundle, self.entrypoints)
        self._bundle = bundle
        self._seen_signature = bundle.signature
        self._next_check = time.monotonic() + (reload_every_s or 0.0)

    @property
    def revision(self) -> str:
        return self._compiled.revision

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    # --- hot reload ---------------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Switch to the rules on disk if they changed; True when the revision changed.

        A bundle that fails to load or compile is logged (once per change on disk) and the
        running revision kept.
        """
        with self._reload_lock:
            sig = signature(self.rules_dir)
            if sig == self._seen_signature:
                return False
            self._seen_signature = sig
            try:
                bundle = load_bundle(self.rules_dir)
                if bundle.revision == self._compiled.revision:
                    self.last_error = None
                    return False
                compiled = Compiled(bundle, self.entrypoints)
            except ConfigError as exc:
                self.last_error = exc.reason
                self.log.error("policy reload failed, keeping revision %s: %s",
                               self._compiled.revision, exc.reason)
                return False
            old = self._compiled.revision
            self._compiled, self._bundle = compiled, bundle
            self.last_error = None
            self.log.info("policy revision %s -> %s", old, bundle.revision)
        if self.on_reload is not None:
            self.on_reload(old, bundle.revision)
        return True

    # --- evaluation ---------------------------------------------------------------------

    def _thread_compiled(self) -> Compiled:
        compiled = self._compiled
        mine = getattr(self._local, "compiled", None)
        if mine is None or mine.revision != compiled.revision:
            mine = Compiled(self._bundle, self.entrypoints)
            self._local.compiled = mine
        return mine

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation:
        """Evaluate `path` for `input`; never raises (errors are `Evaluation.error`)."""
        if self.reload_every_s is not None and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.reload_every_s
            try:
                self.reload_if_changed()
            except Exception:
                self.log.exception("policy reload check failed")
        start = self.clock()
        compiled = self._compiled
        try:
            if self.threads == "per_thread":
                compiled = self._thread_compiled()
                result = compiled.evaluate(path, input)
            else:
                with compiled.lock:
                    result = compiled.evaluate(path, input)
        except Exception as exc:  # noqa: BLE001 - fail closed, never raise
            return Evaluation(path.strip("/"), None, compiled.revision, "embedded",
                              (self.clock() - start) * 1000.0,
                              error=f"embedded engine: {type(exc).__name__}: {exc}")
        return Evaluation(path.strip("/"), result, compiled.revision, "embedded",
                          (self.clock() - start) * 1000.0)

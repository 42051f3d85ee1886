"""Offline checks of infra/terraform, as strict as ``terraform validate`` where it matters.

No terraform binary can run here, so the stack is checked statically:

* :func:`load_stack` parses every ``.tf`` file with python-hcl2 (either dialect: the
  ``bc-python-hcl2`` fork that checkov pins, or python-hcl2 >= 7, which marks blocks).
* :func:`check_schema` checks every resource, data source and provider block against the
  provider schemas in ``tools/provider-schema/schema.json`` (extracted from the npm packages
  ``@cdktf/provider-google`` / ``@cdktf/provider-archive``): unknown types, unknown or
  read-only arguments, unknown blocks, too many single blocks, missing required arguments
  and blocks, and references to undeclared resources, variables, locals or attributes.
* :func:`check_conventions`: every variable typed, described, validated (booleans need no
  validation); every output described; every ``checkov:skip`` carries a reason.
* :func:`check_env` / :func:`function_env`: the environment each function gets, against the
  settings the code reads (``gridhook.settings.ENV_VARS``); secrets never as plain env;
  development settings (``DEV_ENV_VARS``, e.g. GRIDHOOK_DEV_CLOCK) never at all.
* :func:`check_power_report`: power_report stays private and read-only: exactly its
  settings, no secret mounted, its own account with read-only Firestore, invokers only
  from ``var.report_viewers``; only the receiver is public.
* :func:`check_secret_access`: least privilege on the sites' secrets: the one table of who
  reads which kind (``local.secret_readers``) allows the receiver webhook tokens only,
  sample_load the NvGrid secrets only, power_report nothing; every grant and every mount
  is derived from that table, for the account the function runs as.
* :func:`check_site_jobs`: every site has its reconcile and sample_load Scheduler jobs,
  each sending ``?site=<that site>`` with an OIDC token for its function.
* :func:`check_sites_json`: ``GRIDHOOK_SITES`` carries exactly the keys
  ``gridhook.sites`` reads.
* :func:`check_metric_labels`: every log-based metric has a ``site`` label extracted from
  ``jsonPayload.site`` (a field the code logs), and every alert keeps a series per site.
* :func:`entry_points` / :func:`main_functions`: entry points against ``functions/main.py``.
* :func:`build_archive`: the zip ``data.archive_file`` would build, by the rules of
  hashicorp/archive 2.7 (symlinked directories followed, doublestar excludes).
* :func:`check_firestore`: composite indexes and single-field settings against the fields
  ``functions/gridhook/store/firestore.py`` queries (read from its code); each TTL field is
  one the store writes. :func:`firestore_index_problems`: every query shape the store sends
  (recorded on the wire by tests/infra) has the index Firestore needs for it, and every
  composite index serves one.
* :func:`check_log_metrics`: the log-based metrics count only outcomes the code logs, and
  every outcome but the two "ok" ones is counted; they filter only on fields the code
  logs, with values those fields take (event names, booleans). :func:`filter_admits`
  applies a metric's filter to a log line.
* :func:`run_checkov`: checkov, offline, framework terraform.

Each check returns a list of problems (empty = pass) so that tests can assert both ways.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra" / "terraform"
SCHEMA_FILE = ROOT / "tools" / "provider-schema" / "schema.json"
SCHEMA_PACKAGE = ROOT / "tools" / "provider-schema" / "package.json"
FUNCTIONS = ROOT / "functions"

#: Which function needs which settings (beyond those it may set), by entry point.
REQUIRED_ENV = {
    "receive_power_event": {
        "GRIDHOOK_STORE",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE",
        "GRIDHOOK_MAX_BODY_BYTES",
        "GRIDHOOK_QUARANTINE_TTL_DAYS",
        "GRIDHOOK_LOG_LEVEL",
    },
    "reconcile_subscriptions": {
        "GRIDHOOK_STORE",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE",
        "GRIDHOOK_WEBHOOK_URL",
        "GRIDHOOK_EVENTS",
        "GRIDHOOK_RECONCILE_DEADLINE_SECONDS",
        "GRIDHOOK_RECONCILE_CONCURRENCY",
        "GRIDHOOK_DRIFT_GRACE_SECONDS",
        "GRIDHOOK_RAMP_DEADLINE_SECONDS",
        "GRIDHOOK_LOG_LEVEL",
        "NVGRID_HOST",
        "NVGRID_TLS",
        "NVGRID_CREDENTIALS_FILE",
    },
    "sample_load": {
        "GRIDHOOK_STORE",
        "GRIDHOOK_STORE_TIMEOUT_SECONDS",
        "GRIDHOOK_LOG_LEVEL",
        "GRIDHOOK_RECONCILE_DEADLINE_SECONDS",
        "GRIDHOOK_SAMPLE_RETENTION_DAYS",
        "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS",
        "NVGRID_HOST",
        "NVGRID_TLS",
        "NVGRID_CREDENTIALS_FILE",
    },
    "power_report": {
        "GRIDHOOK_STORE",
        "GRIDHOOK_STORE_TIMEOUT_SECONDS",
        "GRIDHOOK_LOG_LEVEL",
        "GRIDHOOK_RAMP_DEADLINE_SECONDS",
        "GRIDHOOK_INTERVAL_MIN_COVERAGE",
        "GRIDHOOK_BASELINE_METHOD",
    },
}
REQUIRED_ENV["teardown_subscriptions"] = REQUIRED_ENV["reconcile_subscriptions"]
#: How every function learns its sites: GRIDHOOK_SITES for a fleet, else the default
#: site's time zone (its other settings are the one-site variables above).
SITES_ENV = {"GRIDHOOK_SITES", "GRIDHOOK_TIMEZONE"}
for _needed in REQUIRED_ENV.values():
    _needed |= SITES_ENV
#: Functions whose environment is exactly REQUIRED_ENV (NVGRID_* aside, which are
#: optional: port, CA): nothing more may be added.
EXACT_ENV = {"power_report", "sample_load"}
#: Settings that hold secrets: only ever mounted files, never plain environment values.
SECRET_ENV = {"GRIDHOOK_WEBHOOK_TOKENS", "NVGRID_PASSWORD", "NVGRID_USERNAME"}
#: Settings the code reads that Terraform never sets, because it sets the alternative
#: (both set fails start-up): setting -> the one Terraform sets instead.
ALTERNATIVE_ENV = {"GRIDHOOK_SITES_FILE": "GRIDHOOK_SITES"}
#: Functions that never talk to DPS (the receiver imports nothing the jobs need; the
#: report only reads the store).
NO_DPS = {"receive_power_event", "power_report"}
DPS_PREFIX = "NVGRID_"

RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner"}
RESOURCE_META |= {"connection"}
DATA_META = {"count", "for_each", "depends_on", "provider", "lifecycle"}
BLOCK_META = {"lifecycle", "provisioner", "connection", "dynamic"}


# ---------------------------------------------------------------------------------------
# Parsing: both python-hcl2 dialects into one small tree
# ---------------------------------------------------------------------------------------


@dataclass
class Block:
    """One HCL block: ``kind "label" ... { body }``."""

    kind: str
    labels: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    # Entries whose syntax the parser does not tell (old dialect: `x = {..}` vs `x {..}`).
    ambiguous: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    file: str = ""

    def where(self) -> str:
        return f"{self.file}: {self.kind} {' '.join(self.labels)}".strip()

    def children(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]

    def child(self, kind: str) -> Block | None:
        """The first nested ``kind`` block, in either dialect."""
        found = self.children(kind)
        if found:
            return found[0]
        if kind in self.ambiguous:
            return _Reader(False).body(kind, (), self.ambiguous[kind][0], self.file)
        return None


_META_KEYS = {"__start_line__", "__end_line__", "__is_block__", "__comments__"}
_META_KEYS |= {"__inline_comments__"}


def _unquote(text: Any) -> Any:
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


class _Reader:
    """Turns python-hcl2 output into :class:`Block` trees."""

    def __init__(self, marked: bool) -> None:
        self.marked = marked  # python-hcl2 >= 7: blocks carry __is_block__

    def _is_block_list(self, value: Any) -> bool:
        def marked(item: Any) -> bool:
            if not isinstance(item, dict):
                return False
            if item.get("__is_block__"):
                return True
            # A labelled block (dynamic "x" { … }): {label: {…, __is_block__}}.
            inner = [v for k, v in item.items() if k not in _META_KEYS]
            return bool(inner) and all(isinstance(v, dict) and v.get("__is_block__") for v in inner)

        return isinstance(value, list) and bool(value) and all(marked(v) for v in value)

    def body(self, kind: str, labels: tuple[str, ...], raw: dict[str, Any], file: str) -> Block:
        block = Block(kind, labels, file=file)
        for key, value in raw.items():
            if key in _META_KEYS:
                continue
            name = _unquote(key)
            dicts = isinstance(value, list) and bool(value)
            dicts = dicts and all(isinstance(v, dict) for v in value)
            # Old dialect: attribute values are wrapped in a one-element list, blocks are
            # lists of dicts, an object-valued attribute is a one-element list of a dict.
            old_block = dicts and (name in BLOCK_META or name in {"content", "validation"})
            if self._is_block_list(value) if self.marked else old_block:
                for item in value:
                    block.blocks.extend(self._labelled(name, item, file))
            elif self.marked:
                block.attrs[name] = value
            elif dicts:
                block.ambiguous[name] = value
            elif isinstance(value, list) and len(value) == 1:
                block.attrs[name] = value[0]
            else:
                block.attrs[name] = value
        return block

    def _labelled(self, kind: str, raw: dict[str, Any], file: str) -> Iterator[Block]:
        """A block dict, possibly nested one level per label (dynamic "x" {...})."""
        if kind == "dynamic":
            for label, body in raw.items():
                if label not in _META_KEYS:
                    yield self.body(kind, (_unquote(label),), body, file)
            return
        yield self.body(kind, (), raw, file)

    def top(self, doc: dict[str, Any], file: str) -> Iterator[Block]:
        labels_for = {"resource": 2, "data": 2, "variable": 1, "output": 1, "provider": 1}
        labels_for |= {"module": 1, "locals": 0, "terraform": 0, "moved": 0, "import": 0}
        for kind, items in doc.items():
            if kind in _META_KEYS:
                continue
            for item in items:
                yield from self._walk_labels(kind, (), item, labels_for.get(kind, 0), file)

    def _walk_labels(
        self, kind: str, labels: tuple[str, ...], raw: dict[str, Any], depth: int, file: str
    ) -> Iterator[Block]:
        if depth == 0:
            yield self.body(kind, labels, raw, file)
            return
        for label, inner in raw.items():
            if label in _META_KEYS:
                continue
            yield from self._walk_labels(kind, (*labels, _unquote(label)), inner, depth - 1, file)


@dataclass
class Stack:
    root: Path
    blocks: list[Block]
    texts: dict[str, str]

    def of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]

    def resources(self, data: bool = False) -> list[Block]:
        return self.of("data" if data else "resource")

    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.of("locals"):
            merged.update(block.attrs)
            for name, value in block.ambiguous.items():
                merged[name] = value[0] if len(value) == 1 else value
        return merged

    def get(self, kind: str, type_: str, name: str) -> Block:
        for block in self.of(kind):
            if block.labels == (type_, name):
                return block
        raise KeyError(f"{kind} {type_}.{name} not in the stack")


def parse_file(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"))


def load_stack(root: Path = STACK) -> Stack:
    """Parse every ``.tf`` file of ``root``; a file that does not parse raises."""
    blocks: list[Block] = []
    texts: dict[str, str] = {}
    for path in sorted(root.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        texts[path.name] = text
        try:
            doc = hcl2.loads(text)
        except Exception as exc:
            raise ValueError(f"{path.name} does not parse: {exc}") from exc
        marked = '"__is_block__": true' in json.dumps(doc)
        blocks.extend(_Reader(marked).top(doc, path.name))
    return Stack(root, blocks, texts)


# ---------------------------------------------------------------------------------------
# Provider schema
# ---------------------------------------------------------------------------------------


@cache
def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _provider_of(type_: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    return schema["providers"].get(type_.split("_", 1)[0])


def _expr_texts(value: Any) -> Iterator[str]:
    """Every string inside an attribute value (expressions included), keys too."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in _META_KEYS:
                yield str(key)
                yield from _expr_texts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _expr_texts(inner)


def _check_body(block: Block, spec: dict[str, Any], where: str, meta: set[str]) -> list[str]:
    problems: list[str] = []
    attributes: dict[str, list[Any]] = spec.get("attributes", {})
    blocks: dict[str, Any] = spec.get("blocks", {})
    computed = set(spec.get("computed", ()))
    seen_blocks: dict[str, int] = {}
    dynamic: set[str] = set()

    for name in block.attrs:
        if name in meta or name in attributes:
            continue
        if name in blocks:
            problems.append(f"{where}: {name} is a block, not an argument: write `{name} {{ … }}`")
        elif name in computed:
            problems.append(f"{where}: {name} is read-only (computed) and cannot be set")
        else:
            problems.append(f"{where}: unsupported argument {name!r}{_suggest(name, attributes)}")

    nested: list[tuple[str, Block | dict[str, Any]]] = [(b.kind, b) for b in block.blocks]
    for name, items in block.ambiguous.items():
        if name in attributes or name in meta:
            continue  # an object- or list-valued argument
        nested.extend((name, item) for item in items)

    for name, item in nested:
        if name in {"lifecycle", "provisioner", "connection"} and name in meta:
            continue
        if isinstance(item, Block) and item.kind == "dynamic":
            target = item.labels[0]
            if target not in blocks:
                problems.append(f"{where}: dynamic block for unknown block type {target!r}")
                continue
            dynamic.add(target)
            for content in item.children("content"):
                problems += _check_body(
                    content, blocks[target], f"{where} > dynamic {target}", set()
                )
            extra = set(item.attrs) - {"for_each", "iterator", "labels"}
            if extra:
                problems.append(f"{where} > dynamic {target}: unsupported {sorted(extra)}")
            continue
        if name not in blocks:
            if name in attributes:
                problems.append(f"{where}: {name} is an argument, not a block: `{name} = …`")
            else:
                problems.append(f"{where}: unsupported block type {name!r}{_suggest(name, blocks)}")
            continue
        seen_blocks[name] = seen_blocks.get(name, 0) + 1
        body = item if isinstance(item, Block) else _Reader(False).body(name, (), item, where)
        problems += _check_body(body, blocks[name], f"{where} > {name}", set())

    for name, (required, _kind) in attributes.items():
        if required and name not in block.attrs and name not in block.ambiguous:
            problems.append(f"{where}: missing required argument {name!r}")
    for name, nested_spec in blocks.items():
        count = seen_blocks.get(name, 0)
        if nested_spec["required"] and count == 0 and name not in dynamic:
            problems.append(f"{where}: missing required block {name!r}")
        if nested_spec["nesting"] == "single" and count > 1:
            problems.append(f"{where}: at most one {name!r} block is allowed")
    return problems


def _suggest(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_REF = re.compile(
    r"(?<![\w.])(data\.)?([a-z][a-z0-9]*_[a-z0-9_]+)\.([a-z_][\w-]*)"  # [data.]type.name
    r"((?:\[[^\]]*\])?)\.([a-z_]\w*)"  # [key].attribute
)
_VAR = re.compile(r"(?<![\w.])var\.([a-z_]\w*)")
_LOCAL = re.compile(r"(?<![\w.])local\.([a-z_]\w*)")


def strip_comments(text: str) -> str:
    """HCL text without comments (#, //, /* */), strings and heredocs kept."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
        elif ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif ch == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def check_schema(stack: Stack, schema: dict[str, Any] | None = None) -> list[str]:
    """Resources, data sources, providers and references against the provider schemas."""
    schema = schema or load_schema()
    problems: list[str] = []
    declared: dict[tuple[bool, str], set[str]] = {}

    for data in (False, True):
        for block in stack.resources(data):
            type_, name = block.labels
            declared.setdefault((data, type_), set()).add(name)
            provider = _provider_of(type_, schema)
            where = f"{block.file}: {'data' if data else 'resource'} {type_}.{name}"
            if provider is None:
                problems.append(f"{where}: no schema for the provider of {type_}")
                continue
            types = provider["data_sources" if data else "resources"]
            if type_ not in types:
                kind = "data source" if data else "resource type"
                problems.append(f"{where}: unknown {kind} {type_!r}{_suggest(type_, types)}")
                continue
            meta = DATA_META if data else RESOURCE_META
            problems += _check_body(block, types[type_], where, meta)

    for block in stack.of("provider"):
        (local_name,) = block.labels
        provider = schema["providers"].get(local_name)
        where = f"{block.file}: provider {local_name}"
        if provider is None:
            problems.append(f"{where}: no schema for this provider")
            continue
        problems += _check_body(block, provider["provider"], where, {"alias"})

    # References: resources, data sources and their attributes; variables; locals.
    variables = {b.labels[0] for b in stack.of("variable")}
    local_names = set(stack.locals())
    for file, text in stack.texts.items():
        code = strip_comments(text)
        for match in _REF.finditer(code):
            is_data, type_, name, _index, attr = match.groups()
            data = bool(is_data)
            provider = _provider_of(type_, schema)
            if provider is None or type_.startswith(("each_", "count_")):
                continue
            types = provider["data_sources" if data else "resources"]
            if type_ not in types:
                continue  # reported above when declared; otherwise not a reference
            if name not in declared.get((data, type_), set()):
                problems.append(f"{file}: reference to undeclared {match.group(0)}")
                continue
            spec = types[type_]
            known = set(spec["attributes"]) | set(spec.get("blocks", {}))
            known |= set(spec.get("computed", ())) | {"id"}
            if attr not in known:
                problems.append(
                    f"{file}: {match.group(0)}: {type_} has no attribute {attr!r}"
                    f"{_suggest(attr, known)}"
                )
        problems += [
            f"{file}: undeclared variable var.{v}" for v in _VAR.findall(code) if v not in variables
        ]
        problems += [
            f"{file}: undeclared local.{v}" for v in _LOCAL.findall(code) if v not in local_names
        ]
    return sorted(set(problems))


# ---------------------------------------------------------------------------------------
# Module conventions
# ---------------------------------------------------------------------------------------

_SKIP = re.compile(r"checkov:skip=([A-Z0-9_]*)(:?)(.*)")


def check_conventions(stack: Stack) -> list[str]:
    problems: list[str] = []
    for block in stack.of("variable"):
        where = f"{block.file}: variable {block.labels[0]}"
        type_ = str(block.attrs.get("type", ""))
        if not type_:
            problems.append(f"{where}: no type")
        if not _unquote(block.attrs.get("description", "")):
            problems.append(f"{where}: no description")
        if "bool" not in type_ and not block.children("validation"):
            problems.append(f"{where}: no validation block")
    for block in stack.of("output"):
        if not _unquote(block.attrs.get("description", "")):
            problems.append(f"{block.file}: output {block.labels[0]}: no description")
    for file, text in stack.texts.items():
        for number, line in enumerate(text.splitlines(), 1):
            match = _SKIP.search(line)
            if match and not (
                line.lstrip().startswith("#")
                and re.fullmatch(r"CKV2?_[A-Z]+_\d+", match.group(1))
                and match.group(2)
                and len(match.group(3).strip()) >= 10
            ):
                problems.append(f"{file}:{number}: checkov skip without a check id and reason")
    for file, text in stack.texts.items():
        for role in ("roles/owner", "roles/editor", "roles/viewer"):
            if role in text:
                problems.append(f"{file}: primitive role {role}")
        if "-compute@developer.gserviceaccount.com" in text:
            problems.append(f"{file}: uses the default compute service account")
    return problems


# ---------------------------------------------------------------------------------------
# Functions: entry points and environment
# ---------------------------------------------------------------------------------------

_ENV_KEY = re.compile(r"""['"]?\b([A-Z][A-Z0-9_]*[A-Z0-9])\b['"]?\s*(?:=(?!=)|:)""")
#: Environment maps are locals named ``*_env`` (common_env, sites_env, jobs_env, …): the
#: names an environment can hold are followed through those only, not into the data
#: (local.sites, local.site_secrets) they are built from.
_ENV_LOCAL = re.compile(r"(?<![\w.])local\.([a-z_]\w*_env)\b")


def _env_names(value: Any, locals_: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Environment variable names an expression can produce, following local.*_env."""
    if isinstance(value, dict):  # a literal map: its keys
        return {_unquote(k) for k in value if k not in _META_KEYS}
    names: set[str] = set()
    for text in _expr_texts(value):
        names |= set(_ENV_KEY.findall(text))
        for ref in _ENV_LOCAL.findall(text):
            if ref in locals_ and ref not in seen:
                names |= _env_names(locals_[ref], locals_, seen | {ref})
    return names


def _function_entry_points(stack: Stack, block: Block) -> list[str]:
    build = block.child("build_config")
    raw = _unquote(build.attrs.get("entry_point")) if build is not None else None
    if raw is None:
        return []
    if "each.value.entry_point" in str(raw):
        for_each = str(block.attrs.get("for_each", ""))
        ref = _LOCAL.search(for_each)
        items = stack.locals().get(ref.group(1), {}) if ref else {}
        return [_unquote(v["entry_point"]) for v in items.values() if isinstance(v, dict)]
    return [raw]


def function_env(stack: Stack) -> dict[str, set[str]]:
    """Entry point -> the environment variable names Terraform may set for it."""
    env: dict[str, set[str]] = {}
    locals_ = stack.locals()
    for block in stack.resources():
        if block.labels[0] != "google_cloudfunctions2_function":
            continue
        service = block.child("service_config")
        value: Any = {}
        if service is not None:
            value = service.attrs.get("environment_variables")
            if value is None and "environment_variables" in service.ambiguous:
                value = service.ambiguous["environment_variables"][0]
        names = _env_names(value or {}, locals_)
        for entry_point in _function_entry_points(stack, block):
            env[entry_point] = names
    return env


def entry_points(stack: Stack) -> set[str]:
    points: set[str] = set()
    for block in stack.resources():
        if block.labels[0] == "google_cloudfunctions2_function":
            found = _function_entry_points(stack, block)
            if not found:
                raise ValueError(f"{block.where()}: no entry_point")
            points.update(found)
    return points


def main_functions(path: Path = FUNCTIONS / "main.py") -> set[str]:
    """Top-level functions of main.py, read with ast (main.py is not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def code_env_vars() -> tuple[str, ...]:
    """The settings the code reads: gridhook.settings.ENV_VARS."""
    sys.path.insert(0, str(FUNCTIONS)) if str(FUNCTIONS) not in sys.path else None
    from gridhook.settings import ENV_VARS

    return tuple(ENV_VARS)


def dev_env_vars() -> tuple[str, ...]:
    """Development-only settings the code reads: gridhook.settings.DEV_ENV_VARS."""
    code_env_vars()  # functions/ on sys.path
    from gridhook.settings import DEV_ENV_VARS

    return tuple(DEV_ENV_VARS)


def check_env(stack: Stack, known: Iterable[str] | None = None) -> list[str]:
    known = set(code_env_vars() if known is None else known)
    dev = set(dev_env_vars())
    problems: list[str] = []
    env = function_env(stack)
    for entry_point, names in sorted(env.items()):
        for name in sorted(names & dev):
            problems.append(
                f"{entry_point}: sets {name}, a development-only setting Terraform must never set"
            )
        for name in sorted(names - known - dev):
            problems.append(f"{entry_point}: sets {name}, which the code does not read")
        for name in sorted(names & SECRET_ENV):
            problems.append(f"{entry_point}: sets secret {name} as plain env (mount it)")
        for name in sorted(names & set(ALTERNATIVE_ENV)):
            problems.append(
                f"{entry_point}: sets {name}; Terraform sets {ALTERNATIVE_ENV[name]} instead "
                "(both set fails start-up)"
            )
        for name in sorted(REQUIRED_ENV.get(entry_point, set()) - names):
            problems.append(f"{entry_point}: does not set {name}, which it needs")
        if entry_point in NO_DPS:
            problems += [
                f"{entry_point}: sets {name}; {entry_point} never talks to DPS"
                for name in sorted(names)
                if name.startswith(DPS_PREFIX)
            ]
        if entry_point in EXACT_ENV:
            problems += [
                f"{entry_point}: sets {name}; its environment is exactly "
                f"{', '.join(sorted(REQUIRED_ENV[entry_point]))}"
                for name in sorted(names - REQUIRED_ENV[entry_point] - dev)
                if not name.startswith(DPS_PREFIX)
            ]
    for file, text in stack.texts.items():
        for name in SECRET_ENV:
            if re.search(rf"\b{name}\b", text):
                problems.append(f"{file}: mentions {name}; secrets are mounted files only")
        code = strip_comments(text)
        for name in sorted(dev):
            if re.search(rf"\b{name}\b", code):
                problems.append(f"{file}: sets {name}; development settings are never deployed")
    return problems


# ---------------------------------------------------------------------------------------
# power_report: private and read-only
# ---------------------------------------------------------------------------------------

#: The roles power_report's own account may hold: read Firestore, write its logs.
REPORT_ROLES = {"roles/datastore.viewer", "roles/logging.logWriter"}
#: Entry points anyone may invoke (the receiver authenticates DPS by its webhook token).
PUBLIC_ENTRY_POINTS = {"receive_power_event"}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
_QUOTED = re.compile(r"""['"]([A-Za-z_][\w-]*)['"]""")
_SA_REF = re.compile(r"google_service_account\.sa\[([^\]]*)\]")


def _functions_by_label(stack: Stack) -> dict[str, list[str]]:
    """Resource name of each google_cloudfunctions2_function -> its entry points."""
    return {
        block.labels[1]: _function_entry_points(stack, block)
        for block in stack.resources()
        if block.labels[0] == "google_cloudfunctions2_function"
    }


def account_roles(stack: Stack) -> dict[str, set[str]]:
    """Service account (key of local.service_accounts) -> the roles granted to it by
    every ``*_iam_member`` resource, following for_each over locals."""
    locals_ = stack.locals()
    accounts = set(locals_.get("service_accounts", {}))
    roles: dict[str, set[str]] = {name: set() for name in accounts}
    for block in stack.resources():
        if not block.labels[0].endswith("_iam_member"):
            continue
        ref = _SA_REF.search(str(block.attrs.get("member", "")))
        if ref is None:
            continue
        inside = ref.group(1)
        if "each." in inside and "?" not in inside:
            source = _LOCAL.search(str(block.attrs.get("for_each", "")))
            value = locals_.get(source.group(1), {}) if source else {}
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            if "each.value.account" in inside and not isinstance(value, dict):
                # A map built by a for expression: every account the locals it is built
                # from can name (local.secret_grants: local.secret_readers' accounts).
                names = _quoted_names(value, locals_)
            elif "each.value.account" in inside:
                names = set(re.findall(r"""account['"]?\s*[:=]\s*['"](\w+)['"]""", text))
            else:
                names = set(value) if isinstance(value, dict) else set(_QUOTED.findall(text))
        else:
            names = set(_QUOTED.findall(inside))
        for name in names & accounts:
            roles[name].add(_unquote(block.attrs.get("role", "")))
    return roles


def _quoted_names(
    value: Any, locals_: dict[str, Any], seen: frozenset[str] = frozenset()
) -> set[str]:
    """Every quoted name in an expression and in the locals it references, transitively."""
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    names = set(_QUOTED.findall(text)) | set(re.findall(r'\\?"([A-Za-z_][\w-]*)\\?"', text))
    for ref in _LOCAL.findall(text):
        if ref in locals_ and ref not in seen:
            names |= _quoted_names(locals_[ref], locals_, seen | {ref})
    return names


def function_secrets(stack: Stack) -> dict[str, list[str]]:
    """Entry point -> the secret blocks (volumes or environment) of its service_config."""
    found: dict[str, list[str]] = {}
    for block in stack.resources():
        if block.labels[0] != "google_cloudfunctions2_function":
            continue
        service = block.child("service_config")
        secrets: list[str] = []
        if service is not None:
            for child in service.blocks:
                kind = child.labels[0] if child.kind == "dynamic" else child.kind
                if kind.startswith("secret_"):
                    what = child.attrs.get("for_each") or child.attrs.get("secret") or ""
                    secrets.append(f"{kind} ({_unquote(what)})".replace(" ()", ""))
            secrets += [f"{name} (…)" for name in service.ambiguous if name.startswith("secret_")]
        for entry_point in _function_entry_points(stack, block):
            found[entry_point] = secrets
    return found


def check_power_report(stack: Stack) -> list[str]:
    problems: list[str] = []
    functions = _functions_by_label(stack)
    labels = [label for label, points in functions.items() if "power_report" in points]
    if len(labels) != 1:
        return [f"power_report must be one function of its own, found {labels}"]
    (label,) = labels
    block = stack.get("resource", "google_cloudfunctions2_function", label)

    for secret in function_secrets(stack).get("power_report", []):
        problems.append(f"power_report mounts {secret}; it reads the store and needs no secret")

    service = block.child("service_config")
    account = _SA_REF.search(str(service.attrs.get("service_account_email", "")) if service else "")
    account_name = _QUOTED.findall(account.group(1)) if account else []
    if account_name != ["report"]:
        problems.append(
            f"power_report runs as {account_name or 'no account of ours'}, "
            "not its own read-only 'report' account"
        )
    granted = account_roles(stack).get("report", set())
    for role in sorted(granted - REPORT_ROLES):
        problems.append(
            f"the report account holds {role}; power_report is read-only "
            f"(allowed: {', '.join(sorted(REPORT_ROLES))})"
        )
    if "roles/datastore.viewer" not in granted:
        problems.append("the report account cannot read Firestore (roles/datastore.viewer)")

    for grant in stack.resources():
        if not grant.labels[0].endswith("_iam_member"):
            continue
        target = re.search(
            r"google_cloudfunctions2_function\.(\w+)", str(grant.attrs.get("name", ""))
        )
        if target is None:
            continue
        points = functions.get(target.group(1), [])
        member = str(grant.attrs.get("member", ""))
        where = f"{grant.file}: {grant.labels[0]}.{grant.labels[1]}"
        if any(m in member for m in PUBLIC_MEMBERS) and not set(points) <= PUBLIC_ENTRY_POINTS:
            problems.append(
                f"{where}: opens {', '.join(points)} to {member}; only the receiver is public"
            )
        if "power_report" in points and not (
            _unquote(member) == "${each.value}"
            and "var.report_viewers" in str(grant.attrs.get("for_each", ""))
        ):
            problems.append(
                f"{where}: grants {_unquote(grant.attrs.get('role'))} on power_report to "
                f"{_unquote(member)}; its invokers come only from var.report_viewers"
            )
    return problems


# ---------------------------------------------------------------------------------------
# Sites: secrets by least privilege, a Scheduler job per site and job, GRIDHOOK_SITES
# ---------------------------------------------------------------------------------------

#: Kinds of secret each runtime account may read (local.secret_readers), and must: the
#: receiver authenticates DPS (tokens only); the subscription jobs log in to DPS and
#: register URLs that carry the tokens; sample_load logs in to DPS only. power_report,
#: like any account not named here, reads none.
SECRET_KINDS_ALLOWED = {
    "receiver": {"webhook_tokens"},
    "jobs": {"webhook_tokens", "nvgrid_credentials", "nvgrid_ca"},
    "sampler": {"nvgrid_credentials", "nvgrid_ca"},
}
SECRET_KINDS_NEEDED = {
    "receiver": {"webhook_tokens"},
    "jobs": {"webhook_tokens", "nvgrid_credentials"},
    "sampler": {"nvgrid_credentials"},
}
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
_MOUNTS_OF = re.compile(r"""local\.secret_mounts\[\\?["']([\w-]+)\\?["']\]""")


def _function_account(block: Block) -> str | None:
    service = block.child("service_config")
    ref = _SA_REF.search(str(service.attrs.get("service_account_email", "")) if service else "")
    names = _QUOTED.findall(ref.group(1)) if ref else []
    return names[0] if len(names) == 1 else None


def check_secret_access(stack: Stack) -> list[str]:
    """Who may read which secret: the table, the grants derived from it, the mounts."""
    problems: list[str] = []
    locals_ = stack.locals()
    readers = locals_.get("secret_readers")
    if not isinstance(readers, dict):
        return ["local.secret_readers (kind -> accounts that read it) is not a literal map"]
    kinds_of: dict[str, set[str]] = {}
    for kind, accounts in readers.items():
        for account in accounts if isinstance(accounts, list) else [accounts]:
            kinds_of.setdefault(_unquote(account), set()).add(_unquote(kind))
    for account, kinds in sorted(kinds_of.items()):
        allowed = SECRET_KINDS_ALLOWED.get(account, set())
        for kind in sorted(kinds - allowed):
            what = f"only {', '.join(sorted(allowed))}" if allowed else "no secret"
            problems.append(f"the {account} account can read {kind}; it may read {what}")
    for account, kinds in sorted(SECRET_KINDS_NEEDED.items()):
        for kind in sorted(kinds - kinds_of.get(account, set())):
            problems.append(f"the {account} account cannot read {kind}, which it needs")

    # Grants: only the accessor resource derived from the table.
    grants = str(locals_.get("secret_grants", ""))
    for block in stack.resources():
        if not block.labels[0].endswith("_iam_member"):
            continue
        if _unquote(block.attrs.get("role", "")) != SECRET_ACCESSOR:
            continue
        where = f"{block.file}: {block.labels[0]}.{block.labels[1]}"
        derived = (
            "local.secret_grants" in str(block.attrs.get("for_each", ""))
            and "each.value.account" in str(block.attrs.get("member", ""))
            and "local.secret_readers[" in grants
        )
        if not derived:
            problems.append(
                f"{where}: grants {SECRET_ACCESSOR} outside local.secret_grants "
                "(derived from local.secret_readers)"
            )

    # Mounts: each function mounts exactly what its own account may read.
    mounts = str(locals_.get("secret_mounts", ""))
    if "local.secret_readers[" not in mounts:
        problems.append("local.secret_mounts is not derived from local.secret_readers")
    for block in stack.resources():
        if block.labels[0] != "google_cloudfunctions2_function":
            continue
        points = ", ".join(_function_entry_points(stack, block))
        account = _function_account(block)
        service = block.child("service_config")
        if service is None:
            continue
        for name in service.ambiguous:
            if name.startswith("secret_"):
                problems.append(f"{points}: a {name} block; mount secrets per account (dynamic)")
        for child in service.blocks:
            kind = child.labels[0] if child.kind == "dynamic" else child.kind
            if not kind.startswith("secret_"):
                continue
            if kind != "secret_volumes" or child.kind != "dynamic":
                problems.append(f"{points}: a {kind} block; mount secrets per account (dynamic)")
                continue
            mounted = _MOUNTS_OF.findall(str(child.attrs.get("for_each", "")))
            if mounted != [account]:
                problems.append(
                    f"{points}: mounts {mounted or 'secrets not from local.secret_mounts'} but "
                    f'runs as {account!r}: it must mount local.secret_mounts["{account}"]'
                )
    return problems


#: Functions every site calls on its own Scheduler job, with ?site=.
PER_SITE_ENTRY_POINTS = {"reconcile_subscriptions", "sample_load"}
_SITE_JOB_ITEM = re.compile(r"""\\?["'](\w+)/\$\{(\w+)\}\\?["']\s*[:=]\s*\{""")
_FUNCTION_URL = re.compile(
    r"""function_url\\?['"]?\s*[:=]\s*\\?['"]?\$\{google_cloudfunctions2_function\.(\w+)"""
    r"""(?:\[\\?["'](\w+)\\?["']\])?\.url\}"""
)
_SITE_LOOP = re.compile(r"for\s+(\w+)(?:\s*,\s*\w+)?\s+in\s+(?:keys\()?local\.sites\b")


def _entry_point_of(stack: Stack, label: str, key: str | None) -> str | None:
    block = stack.get("resource", "google_cloudfunctions2_function", label)
    points = _function_entry_points(stack, block)
    if key is None:
        return points[0] if len(points) == 1 else None
    item = stack.locals().get("jobs", {}).get(key)
    return _unquote(item["entry_point"]) if isinstance(item, dict) else None


def check_site_jobs(stack: Stack) -> list[str]:
    """Each site has a Scheduler job per per-site function, each sending ``?site=`` with its
    own site and an OIDC token for that function; no other job calls those functions."""
    problems: list[str] = []
    locals_ = stack.locals()
    per_site_seen: set[str] = set()
    for block in stack.resources():
        if block.labels[0] != "google_cloud_scheduler_job":
            continue
        where = f"{block.file}: google_cloud_scheduler_job.{block.labels[1]}"
        target = block.child("http_target")
        uri = _unquote(str(target.attrs.get("uri", ""))) if target else ""
        oidc = target.child("oidc_token") if target else None
        if oidc is None:
            problems.append(f"{where}: no oidc_token (the functions it calls are private)")
        source = _LOCAL.search(str(block.attrs.get("for_each", "")))
        jobs_text = str(locals_.get(source.group(1), "")) if source else ""
        loop = _SITE_LOOP.search(jobs_text)
        if loop is None:
            # Not per site: it must not call a per-site function.
            called = re.search(r"google_cloudfunctions2_function\.(\w+)(?:\[\W*(\w+)\W*\])?", uri)
            point = _entry_point_of(stack, called.group(1), called.group(2)) if called else None
            if point in PER_SITE_ENTRY_POINTS:
                problems.append(f"{where}: calls {point} for no site; it runs per site")
            continue
        if not uri.endswith("?site=${each.value.site}"):
            problems.append(f"{where}: the job does not send ?site=${{each.value.site}} ({uri})")
        if oidc is not None:
            audience = _unquote(str(oidc.attrs.get("audience", "")))
            if audience != "${each.value.function_url}":
                problems.append(f"{where}: the OIDC audience is not the function's URL")
            account = _SA_REF.search(str(oidc.attrs.get("service_account_email", "")))
            if account is None or _QUOTED.findall(account.group(1)) != ["scheduler"]:
                problems.append(f"{where}: the OIDC token is not the scheduler account's")
        items = list(_SITE_JOB_ITEM.finditer(jobs_text))
        for i, item in enumerate(items):
            kind, var = item.groups()
            body = jobs_text[item.end() : items[i + 1].start() if i + 1 < len(items) else None]
            if var != loop.group(1):
                problems.append(f"{where}: job {kind}/${{{var}}} is not keyed by the site")
            if not re.search(rf"""\bsite\\?['"]?\s*[:=]\s*\\?['"]?\$\{{{loop.group(1)}\}}""", body):
                problems.append(f"{where}: job {kind}/… does not send its own site (site = …)")
            url = _FUNCTION_URL.search(body)
            point = _entry_point_of(stack, *url.groups()) if url else None
            if point is None:
                problems.append(f"{where}: job {kind}/… calls no function of ours")
                continue
            per_site_seen.add(point)
    for point in sorted(PER_SITE_ENTRY_POINTS - per_site_seen):
        problems.append(f"no Scheduler job per site calls {point}")
    return problems


def check_sites_json(stack: Stack) -> list[str]:
    """GRIDHOOK_SITES (local.sites_json) holds exactly the keys gridhook.sites reads."""
    code_env_vars()  # functions/ on sys.path
    from gridhook.sites import SITE_KEYS

    text = str(stack.locals().get("sites_json", ""))
    if "jsonencode" not in text:
        return ["local.sites_json is not a jsonencode(…) of the sites"]
    inner = text[text.index("local.sites") :]
    written = set(re.findall(r"""\\*['"]?(\w+)\\*['"]?\s*[:=]\s*\\*['"]?\$\{""", inner))
    written -= {"sites"}
    problems = [
        f"GRIDHOOK_SITES: key {key} is not one gridhook.sites reads ({', '.join(SITE_KEYS)})"
        for key in sorted(written - set(SITE_KEYS))
    ]
    problems += [
        f"GRIDHOOK_SITES: the required key {key} is missing"
        for key, required in SITE_KEYS.items()
        if required and key not in written
    ]
    return problems


def check_metric_labels(stack: Stack) -> list[str]:
    """Every log-based metric has a ``site`` label (from ``jsonPayload.site``, a field the
    code logs) described in its descriptor, and every alert keeps a series per site."""
    problems: list[str] = []
    labels = stack.locals().get("metric_labels", {})
    if not isinstance(labels, dict):
        labels = {}
    labels = {_unquote(k): _unquote(v) for k, v in labels.items()}
    logged = code_log_fields()
    for block in stack.resources():
        if block.labels[0] != "google_logging_metric":
            continue
        where = f"{block.file}: google_logging_metric.{block.labels[1]}"
        raw = block.attrs.get("label_extractors")
        if raw is None and "label_extractors" in block.ambiguous:
            raw = block.ambiguous["label_extractors"][0]
        if isinstance(raw, dict):
            extractors = {_unquote(k): _unquote(v) for k, v in raw.items()}
        elif "local.metric_labels" in str(raw) and "EXTRACT(jsonPayload.${" in str(raw):
            extractors = {k: f"EXTRACT(jsonPayload.{v})" for k, v in labels.items()}
        else:
            extractors = {}
        if extractors.get("site") != "EXTRACT(jsonPayload.site)":
            problems.append(f"{where}: no site label extracted from jsonPayload.site")
        for label, extractor in sorted(extractors.items()):
            field_name = re.fullmatch(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)
            if field_name and field_name.group(1) not in logged:
                problems.append(
                    f"{where}: label {label} extracts jsonPayload.{field_name.group(1)}, "
                    "which no log line carries"
                )
        descriptor = block.child("metric_descriptor")
        described: set[str] = set()
        for child in descriptor.blocks if descriptor else []:
            if child.kind == "dynamic" and child.labels == ("labels",):
                if "local.metric_labels" in str(child.attrs.get("for_each", "")):
                    described |= set(labels)
            elif child.kind == "labels":
                described.add(_unquote(child.attrs.get("key", "")))
        for item in descriptor.ambiguous.get("labels", []) if descriptor else []:
            key = item.get("key", "")
            described.add(_unquote(key[0] if isinstance(key, list) else key))
        if described != set(extractors):
            problems.append(
                f"{where}: the descriptor describes labels {sorted(described)}, "
                f"the extractors make {sorted(extractors)}"
            )
    for block in stack.resources():
        if block.labels[0] != "google_monitoring_alert_policy":
            continue
        where = f"{block.file}: google_monitoring_alert_policy.{block.labels[1]}"
        condition = block.child("conditions")
        threshold = condition.child("condition_threshold") if condition else None
        aggregation = threshold.child("aggregations") if threshold else None
        fields = aggregation.attrs.get("group_by_fields", []) if aggregation else []
        if "metric.label.site" not in [_unquote(f) for f in fields]:
            problems.append(f"{where}: does not group by metric.label.site (one series per site)")
    return problems


# ---------------------------------------------------------------------------------------
# Firestore: indexes against the store's queries
# ---------------------------------------------------------------------------------------

FIRESTORE_PY = FUNCTIONS / "gridhook" / "store" / "firestore.py"


def _str_arg(call: ast.Call) -> str | None:
    arg = call.args[0] if call.args else None
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def firestore_queries(path: Path = FIRESTORE_PY) -> dict[str, set[str]]:
    """Collection -> fields the store filters or orders on (FieldFilter / order_by).

    A method's fields belong to the collections it reaches through ``self._x``, which
    ``__init__`` binds to ``self._client.collection(COLLECTIONS["k"])``, or through
    ``self._collection("k", site)`` (a site's collection: the same collection id). A method that
    calls a helper (``self._ranged(...)``) queries what the helper filters or orders on
    too, for the collections the caller passes it, and the listing key it passes as
    ``key="..."``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    collections: dict[str, str] = {}
    for node in ast.walk(tree):
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id == "COLLECTIONS":
            collections = ast.literal_eval(node.value)
    handles: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                key = value.args[0] if value.func.attr == "collection" and value.args else None
                if isinstance(key, ast.Subscript) and isinstance(key.slice, ast.Constant):
                    handles[node.targets[0].attr] = collections[key.slice.value]
    methods = {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name != "__init__"
    }

    def own_fields(method: ast.FunctionDef) -> set[str]:
        fields = set()
        for call in ast.walk(method):
            if isinstance(call, ast.Call):
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in {"FieldFilter", "order_by"} and _str_arg(call):
                    fields.add(_str_arg(call))
                # A helper told which listing key to range and order on: key="sort_key".
                fields |= {
                    k.value.value
                    for k in call.keywords
                    if k.arg == "key"
                    and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)
                }
        return fields

    def fields_of(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        method = methods[name]
        fields = own_fields(method)
        for call in ast.walk(method):
            func = call.func if isinstance(call, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "self"
                and func.attr in methods
                and func.attr not in seen
            ):
                fields |= fields_of(func.attr, seen | {name})
        return fields

    def by_site(method: ast.FunctionDef) -> set[str]:
        """The collections ``self._collection("k", site)`` calls in ``method`` reach."""
        return {
            collections[key]
            for call in ast.walk(method)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "_collection"
            and (key := _str_arg(call)) in collections
        }

    queried: dict[str, set[str]] = {name: set() for name in collections.values()}
    for name, method in methods.items():
        used = {
            handles[n.attr]
            for n in ast.walk(method)
            if isinstance(n, ast.Attribute) and n.attr in handles
        } | by_site(method)
        fields = fields_of(name)
        for collection in used:
            queried[collection] |= fields
    return queried


@dataclass(frozen=True, order=True)
class QueryShape:
    """What decides the index a Firestore query needs.

    ``equalities``: fields filtered with ==, sorted; ``ranges``: fields with an
    inequality; ``orders``: (field, ASCENDING|DESCENDING) as ordered, or the range
    field ascending, as Firestore orders a query with an inequality and no order_by.
    """

    collection: str
    equalities: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    orders: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [f"{f} ==" for f in self.equalities] + [f"{f} range" for f in self.ranges]
        parts += [f"order by {f} {d}" for f, d in self.orders]
        return f"{self.collection}: {', '.join(parts) or 'no filter'}"


def query_shape(structured_query: Any) -> QueryShape:
    """The shape of a ``google.firestore.v1.StructuredQuery`` (as the client sends it)."""
    where = structured_query.where
    if "composite_filter" in where:
        filters = [f.field_filter for f in where.composite_filter.filters]
    elif "field_filter" in where:
        filters = [where.field_filter]
    else:
        filters = []
    equalities = sorted({f.field.field_path for f in filters if f.op.name == "EQUAL"})
    ranges = sorted({f.field.field_path for f in filters if f.op.name != "EQUAL"})
    orders = tuple((o.field.field_path, o.direction.name) for o in structured_query.order_by)
    if not orders and ranges:
        orders = ((ranges[0], "ASCENDING"),)
    return QueryShape(
        structured_query.from_[0].collection_id, tuple(equalities), tuple(ranges), orders
    )


def firestore_index_problems(stack: Stack, shapes: Iterable[QueryShape]) -> list[str]:
    """Every query shape has an index in the stack, and every composite index serves one.

    Firestore's rules, as gridhook's queries use them: equality filters alone are served
    by merging single-field indexes; one order (with or without a range on the same
    field) and no equality filter by that field's single-field index in that direction;
    equality filters and an order need a composite index of the equality fields, in any
    order, followed by the ordered field in its direction.
    """
    composites = firestore_indexes(stack)
    settings = {(f["collection"], f["field"]): f["indexes"] for f in firestore_fields(stack)}

    def single(collection: str, field_name: str, direction: str | None) -> bool:
        kept = settings.get((collection, field_name))  # None: Firestore's defaults, both ways
        return kept is None or (direction in kept if direction else bool(kept))

    problems = []
    used: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for shape in sorted(set(shapes)):
        if len(shape.orders) > 1 or set(shape.ranges) - {f for f, _ in shape.orders}:
            problems.append(f"{shape}: a query shape this check does not know")
            continue
        if not shape.orders:
            missing = [f for f in shape.equalities if not single(shape.collection, f, None)]
            problems += [f"{shape}: {f} is exempt from indexing" for f in missing]
            continue
        order = shape.orders[0]
        if not shape.equalities:
            if not single(shape.collection, *order):
                problems.append(f"{shape}: no single-field {order[1]} index on {order[0]}")
            continue
        serving = [
            (collection, fields)
            for collection, fields in composites
            if collection == shape.collection
            and fields[-1] == order
            and sorted(f for f, _ in fields[:-1]) == list(shape.equalities)
        ]
        if not serving:
            problems.append(f"{shape}: no composite index serves it")
        used.update(serving)
    problems += [
        f"composite index {collection}{list(fields)} serves no query the store sends"
        for collection, fields in sorted(composites - used)
    ]
    return problems


def firestore_indexes(stack: Stack) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(collection, ((field, order), ...)) of every composite index."""
    locals_ = stack.locals()
    found = set()
    for block in stack.resources():
        if block.labels[0] != "google_firestore_index":
            continue
        ref = _LOCAL.search(str(block.attrs.get("for_each", "")))
        shapes = locals_[ref.group(1)].values() if ref else []
        for fields in shapes:
            pairs = tuple((_unquote(f), _unquote(o)) for f, o in fields)
            found.add((_unquote(block.attrs["collection"]), pairs))
    return found


def firestore_fields(stack: Stack) -> list[dict[str, Any]]:
    """Single-field settings: collection, field, indexes kept (orders) and ttl."""
    locals_ = stack.locals()
    out = []
    for block in stack.resources():
        if block.labels[0] != "google_firestore_field":
            continue
        ref = _LOCAL.search(str(block.attrs.get("for_each", "")))
        if ref:
            out += [
                {
                    "collection": _unquote(item["collection"]),
                    "field": _unquote(item["field"]),
                    "indexes": [_unquote(i) for i in item["indexes"]],
                    "ttl": False,
                }
                for item in locals_[ref.group(1)].values()
            ]
            continue
        config = block.child("index_config")
        kept = [i.attrs.get("order") for i in config.children("indexes")] if config else None
        out.append(
            {
                "collection": _unquote(block.attrs["collection"]),
                "field": _unquote(block.attrs["field"]),
                "indexes": kept,  # None: Firestore's defaults
                "ttl": block.child("ttl_config") is not None,
            }
        )
    return out


def check_firestore(stack: Stack, path: Path = FIRESTORE_PY) -> list[str]:
    queried = firestore_queries(path)
    code = path.read_text(encoding="utf-8")
    problems = []
    for collection, fields in sorted(firestore_indexes(stack)):
        if collection not in queried:
            problems.append(f"composite index on unknown collection {collection}")
            continue
        for field_name, _order in fields:
            if field_name not in queried[collection]:
                problems.append(
                    f"composite index {collection}{list(fields)} uses {field_name}, "
                    "which no query filters or orders on"
                )
    for item in firestore_fields(stack):
        collection, name, kept = item["collection"], item["field"], item["indexes"]
        used = name in queried.get(collection, set())
        if collection not in queried:
            problems.append(f"field setting on unknown collection {collection}")
        elif kept == [] and used:
            problems.append(f"{collection}.{name} is exempt from indexing but a query uses it")
        elif kept and not used:
            problems.append(f"{collection}.{name} keeps single-field indexes no query uses")
        if item["ttl"] and f'"{name}"' not in code:
            problems.append(f"TTL on {collection}.{name}, a field the store never writes")
    return problems


# ---------------------------------------------------------------------------------------
# Log-based metrics against the outcomes the code logs
# ---------------------------------------------------------------------------------------

OUTCOME_SOURCES = ("receiver.py", "subscriptions.py", "observe.py", "jobs.py")
#: Outcomes no metric needs to count: the runs that went well.
UNCOUNTED_OUTCOMES = {"reconcile_ok", "teardown_ok", "sample_ok"}


def _outcome_values(node: ast.AST) -> set[str]:
    """String constants an expression can evaluate to (through ``a if c else b``)."""
    if isinstance(node, ast.IfExp):
        return _outcome_values(node.body) | _outcome_values(node.orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def code_outcomes() -> set[str]:
    """Every ``jsonPayload.outcome`` the functions log: ``outcome=``, ``{"outcome": …}``,
    the receiver's ``_error(status, code, message, outcome)`` and AddOutcome (accepted,
    duplicate, logged as ``outcome.value``)."""
    code_env_vars()  # functions/ on sys.path
    from gridhook.store.base import AddOutcome

    found = {o.value for o in AddOutcome}
    for name in OUTCOME_SOURCES:
        tree = ast.parse((FUNCTIONS / "gridhook" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "outcome":
                        found |= _outcome_values(kw.value)
                if getattr(node.func, "id", "") == "_error" and len(node.args) >= 4:
                    found |= _outcome_values(node.args[3])
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "outcome":
                        found |= _outcome_values(value)
    return found


_OUTCOME_FILTER = re.compile(r"jsonPayload\.outcome\s*=\s*(\([^)]*\)|\\?\"[^\"\\]*\\?\")")


def metric_outcomes(stack: Stack) -> dict[str, set[str]]:
    """Counter metric (key of local.counter_metrics) -> the outcomes its filter admits."""
    out = {}
    for key, metric in stack.locals()["counter_metrics"].items():
        values = set()
        for match in _OUTCOME_FILTER.finditer(_unquote(metric["filter"])):
            values |= set(re.findall(r"\w+", match.group(1)))
        out[key] = values - {"OR"}
    return out


#: Keys every log line has (functions/gridhook/log.py JsonFormatter), besides its fields.
LOG_LINE_KEYS = {"severity", "message", "logger", "stack_trace"}
#: Fields that hold booleans: compared with unquoted true / false.
BOOLEAN_FIELDS = {"compliant"}


def code_log_fields() -> set[str]:
    """Every jsonPayload key the functions log: ``log_event(..., key=…)`` and
    ``log_request(..., key=…)`` keywords (those a request line adds itself too),
    ``extra={"fields": {key: …}}`` keys, and the keys every line has."""
    found = set(LOG_LINE_KEYS)
    for name in OUTCOME_SOURCES:
        tree = ast.parse((FUNCTIONS / "gridhook" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == "log_event":
                    found |= {kw.arg for kw in node.keywords if kw.arg}
                elif called == "log_request":
                    found |= {kw.arg for kw in node.keywords if kw.arg} - {"started"}
                    found |= {"latency_ms", "httpRequest"}
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "fields"
                        and isinstance(value, ast.Dict)
                    ):
                        found |= {
                            k.value
                            for k in value.keys
                            if isinstance(k, ast.Constant) and isinstance(k.value, str)
                        }
    return found


_CONDITION = re.compile(
    r"\b(jsonPayload\.\w+|severity)\s*(>=|<=|!=|=|>|<)\s*"
    r"(\((?:[^()\\\"]|\\?\"[^\"\\]*\\?\")*\)|\\?\"[^\"\\]*\\?\"|[\w.+-]+)"
)
_SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]


def filter_conditions(text: str) -> list[tuple[str, str, list[Any]]]:
    """(field, operator, values) of every ``jsonPayload.x`` and ``severity`` comparison
    in a logging filter; quoted values stay strings, true/false become booleans."""

    def value(raw: str) -> Any:
        if raw.startswith(('\\"', '"')):
            return raw.strip('\\"')
        if raw in ("true", "false"):
            return raw == "true"
        try:
            return float(raw)
        except ValueError:
            return raw

    out = []
    for field_name, op, raw in _CONDITION.findall(_unquote(text)):
        parts = raw[1:-1].split(" OR ") if raw.startswith("(") else [raw]
        name = field_name.removeprefix("jsonPayload.")
        out.append((name, op, [value(part.strip()) for part in parts]))
    return out


def filter_admits(text: str, entry: dict[str, Any]) -> bool:
    """Whether a log line (its JSON) passes the jsonPayload and severity conditions of a
    logging filter joined by AND (resource conditions are the function's, not the line's)."""
    for name, op, values in filter_conditions(text):
        have = entry.get(name)
        if name == "severity":
            rank = _SEVERITIES.index
            want = rank(str(values[0]))
            ok = {">=": rank(have) >= want, "=": rank(have) == want, ">": rank(have) > want}[op]
        elif op == "=":
            # Cloud Logging compares booleans with true/false and numbers numerically.
            ok = any(have is v if isinstance(v, bool) else have == v for v in values)
        elif have is None or isinstance(have, bool | str):
            ok = False
        else:
            ok = {">=": have >= values[0], "<=": have <= values[0], ">": have > values[0]}.get(
                op, have < values[0]
            )
        if not ok:
            return False
    return True


def check_log_metrics(stack: Stack, outcomes: set[str] | None = None) -> list[str]:
    outcomes = code_outcomes() if outcomes is None else outcomes
    counted = metric_outcomes(stack)
    problems = [
        f"metric {metric} counts outcome {value!r}, which the code never logs"
        for metric, values in sorted(counted.items())
        for value in sorted(values - outcomes)
    ]
    missing = outcomes - UNCOUNTED_OUTCOMES - set().union(*counted.values())
    problems += [f"no metric counts outcome {value!r}" for value in sorted(missing)]

    code_env_vars()  # functions/ on sys.path
    from gridhook.settings import POWER_EVENTS

    logged = code_log_fields()
    for metric, spec in sorted(stack.locals()["counter_metrics"].items()):
        for name, _op, values in filter_conditions(spec["filter"]):
            if name != "severity" and name not in logged:
                problems.append(
                    f"metric {metric} filters on jsonPayload.{name}, which no log line carries"
                )
            if name == "event":
                problems += [
                    f"metric {metric} filters on event {v!r}, not a power event"
                    for v in values
                    if v not in POWER_EVENTS
                ]
            if name in BOOLEAN_FIELDS:
                problems += [
                    f"metric {metric} compares {name} with {v!r}; it is logged as a boolean "
                    "(write true or false, unquoted)"
                    for v in values
                    if not isinstance(v, bool)
                ]
    return problems


# ---------------------------------------------------------------------------------------
# The archive Terraform would build
# ---------------------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """doublestar semantics: ** spans directories, * and ? stay within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def archive_spec(stack: Stack) -> dict[str, Any]:
    """source_dir (resolved), excludes and exclude_symlink_directories of the archive."""
    (block,) = [b for b in stack.resources(data=True) if b.labels[0] == "archive_file"]
    source = _unquote(block.attrs["source_dir"]).replace("${path.module}", str(stack.root))
    excludes = block.attrs.get("excludes", [])
    if isinstance(excludes, str):  # old dialect renders lists of strings as-is
        excludes = [excludes]
    return {
        "source_dir": Path(os.path.normpath(source)),
        "excludes": [_unquote(e) for e in excludes],
        "exclude_symlink_directories": str(block.attrs.get("exclude_symlink_directories"))
        .lower()
        .strip('"')
        == "true",
        "type": _unquote(block.attrs["type"]),
    }


def archive_members(stack: Stack) -> dict[str, Path]:
    """Archive name -> file, walking like hashicorp/archive's zip archiver."""
    spec = archive_spec(stack)
    patterns = [_glob_regex(p) for p in spec["excludes"]]
    members: dict[str, Path] = {}

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(directory.iterdir()):
            rel = f"{prefix}{entry.name}"
            excluded = any(p.match(rel) for p in patterns)
            if entry.is_symlink() and entry.resolve().is_dir():
                if spec["exclude_symlink_directories"] or excluded:
                    continue
                walk(entry.resolve(), rel + "/")
            elif entry.is_dir():
                if not excluded:
                    walk(entry, rel + "/")
            elif not excluded:
                members[rel] = entry.resolve()

    walk(spec["source_dir"], "")
    return members


def build_archive(stack: Stack, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in sorted(archive_members(stack).items()):
            zf.write(path, name)
    return out


# ---------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------

CHECKOV_ENV = {
    # No platform, no downloads, no version check, no telemetry: it must work offline.
    "BC_API_KEY": "",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
    "CKV_NO_GUIDE": "true",
    "BC_SKIP_MAPPING": "TRUE",
    "CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING": "false",
    "LOG_LEVEL": "ERROR",
}


def run_checkov(root: Path = STACK) -> dict[str, Any]:
    """Run checkov from this venv on ``root``; the parsed JSON report."""
    checkov = Path(sys.executable).with_name("checkov")
    cmd = [str(checkov)] if checkov.exists() else [sys.executable, "-m", "checkov.main"]
    cmd += [
        "--directory",
        str(root),
        "--framework",
        "terraform",
        "--skip-download",
        "--download-external-modules",
        "false",
        "--output",
        "json",
        "--quiet",
        "--soft-fail",
    ]
    env = {**os.environ, **CHECKOV_ENV}
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov failed ({proc.returncode}): {proc.stderr[-2000:]}") from exc
    if isinstance(report, list):  # one entry per framework
        (report,) = [r for r in report if r.get("check_type") == "terraform"]
    return report


def checkov_problems(report: dict[str, Any]) -> list[str]:
    results = report.get("results", {})
    problems = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in results.get("failed_checks", [])
    ]
    for skipped in results.get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        if len(reason.strip()) < 10:
            problems.append(f"{skipped['check_id']} skipped without reason: {skipped['resource']}")
    return problems

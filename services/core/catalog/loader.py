"""Load the SOP catalog directory, reporting every problem with its file, line and field.

Each file is parsed with ruamel.yaml's round-trip loader because it keeps the line of
every mapping key and sequence item; JSON Schema errors and the graph checks of
`validation` name a node by its path, which is mapped back to a line here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from pydantic import ValidationError as ModelError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from services.core.catalog.validation import (
    Finding,
    NodePath,
    RoleIndex,
    check_roles,
    check_sop,
    check_todos,
    check_unique_sops,
)
from services.core.engine.definition import Catalog, Role, SopDefinition
from services.core.errors import AlurError

# The schema describes the format this code understands, so it travels with the code
# (the repository's sop_catalog/schema), whichever catalog directory is loaded.
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "sop_catalog" / "schema"
ROLES_FILE = "roles.yaml"
DOCUMENT = "$"  # the field of a problem with the whole file (unreadable, bad YAML)

_Model = TypeVar("_Model")


@dataclass(frozen=True)
class CatalogProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class CatalogInvalid(AlurError):
    code = "catalog_invalid"
    status = 422
    title = "The SOP catalog is invalid"

    def __init__(self, problems: Sequence[CatalogProblem]) -> None:
        self.problems = tuple(problems)
        lines = [str(problem) for problem in self.problems]
        super().__init__(
            f"{len(lines)} problem(s) in the SOP catalog:\n" + "\n".join(lines),
            extra={"problems": lines},
        )


def load_catalog(path: Path) -> Catalog:
    """The catalog in directory `path`; raises `CatalogInvalid` listing every problem."""
    problems, catalog = _load(path)
    if problems or catalog is None:
        raise CatalogInvalid(problems)
    return catalog


def validate_catalog(path: Path) -> list[CatalogProblem]:
    return _load(path)[0]


def load_roles(path: Path) -> tuple[Role, ...]:
    """The roles of the catalog in directory `path` alone (the SOP files may be being
    written); raises `CatalogInvalid` listing the problems of roles.yaml."""
    doc = _read(path / ROLES_FILE)
    if doc.readable:
        doc.report(_schema_findings(_validator("roles"), doc.data))
        doc.report(check_roles(doc.data)[0])
    roles = _build(doc, lambda data: tuple(Role.model_validate(r) for r in data["roles"]))
    if doc.problems or roles is None:
        raise CatalogInvalid(doc.problems)
    return roles


@dataclass
class _Document:
    shown: str
    data: Any
    problems: list[CatalogProblem]
    # Nodes whose value is `TODO`: reported once as such, never for what they are not.
    todos: tuple[NodePath, ...] = ()

    @property
    def readable(self) -> bool:
        return not any(problem.field == DOCUMENT for problem in self.problems)

    def report_todos(self) -> None:
        findings = list(check_todos(self.data))
        self.todos = tuple(finding.path for finding in findings)
        for finding in findings:
            self.problems.append(self.problem(finding.path, finding.message))

    def report(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            if not any(finding.path[: len(todo)] == todo for todo in self.todos):
                self.problems.append(self.problem(finding.path, finding.message))

    def problem(self, path: NodePath, message: str) -> CatalogProblem:
        return CatalogProblem(self.shown, locate(self.data, path), field_name(path), message)


def _load(path: Path) -> tuple[list[CatalogProblem], Catalog | None]:
    roles_doc = _read(path / ROLES_FILE)
    sop_docs = [_read(file) for file in sorted(path.glob("*.yaml")) if file.name != ROLES_FILE]

    for doc in (roles_doc, *sop_docs):
        if doc.readable:
            doc.report_todos()
    roles_index: RoleIndex | None = None
    if roles_doc.readable:
        roles_doc.report(_schema_findings(_validator("roles"), roles_doc.data))
        role_findings, roles_index = check_roles(roles_doc.data)
        roles_doc.report(role_findings)
        # A broken roles.yaml still vouches for the ids it has; with none, every lane
        # would be "not a role", which says nothing the roles problems do not.
        if not roles_index.external:
            roles_index = None
    for doc in sop_docs:
        if doc.readable:
            _dates_as_text(doc.data)
            doc.report(_schema_findings(_validator("sop"), doc.data))
            doc.report(check_sop(doc.data, roles_index))
    for position, finding in check_unique_sops([(doc.shown, doc.data) for doc in sop_docs]):
        sop_docs[position].report([finding])

    documents = [roles_doc, *sop_docs]
    roles = _build(roles_doc, lambda data: tuple(Role.model_validate(r) for r in data["roles"]))
    sops = [_build(doc, SopDefinition.model_validate) for doc in sop_docs]
    problems = [
        problem
        for doc in documents
        for problem in sorted(dict.fromkeys(doc.problems), key=lambda problem: problem.line)
    ]
    if problems or roles is None:
        return problems, None
    return problems, Catalog(roles=roles, sops=tuple(sop for sop in sops if sop is not None))


def _read(file: Path) -> _Document:
    doc = _Document(_shown(file), None, [])
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        doc.problems.append(CatalogProblem(doc.shown, 1, DOCUMENT, "file not found"))
        return doc
    except (OSError, UnicodeDecodeError) as exc:
        doc.problems.append(CatalogProblem(doc.shown, 1, DOCUMENT, f"cannot read file: {exc}"))
        return doc
    try:
        doc.data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{reason} ({context})" if context else reason
        doc.problems.append(CatalogProblem(doc.shown, line, DOCUMENT, f"invalid YAML: {detail}"))
        return doc
    except ValueError as exc:
        # ruamel.yaml builds an unquoted `2025-02-30` as a date and fails outside YAMLError.
        line = _impossible_date_line(text)
        doc.problems.append(CatalogProblem(doc.shown, line, DOCUMENT, f"invalid date: {exc}"))
        return doc
    if doc.data is None:
        doc.problems.append(CatalogProblem(doc.shown, 1, DOCUMENT, "the file is empty"))
    return doc


# The fields that hold a date: YAML reads `2026-01-15` unquoted as a date, which is
# what the author meant, so it becomes the ISO text the schema asks for.
_DATE_FIELDS = ("effective_date",)


def _dates_as_text(data: Any) -> None:
    if not isinstance(data, CommentedMap):
        return
    for key in _DATE_FIELDS:
        value = data.get(key)
        if isinstance(value, date) and not isinstance(value, datetime):
            data[key] = value.isoformat()


_DATE_LIKE = re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w.-])")


def _impossible_date_line(text: str) -> int:
    """The first line with a date the calendar lacks (1 if none is found)."""
    for number, line in enumerate(text.splitlines(), 1):
        for match in _DATE_LIKE.finditer(line):
            try:
                date(*(int(part) for part in match.groups()))
            except ValueError:
                return number
    return 1


def _shown(file: Path) -> str:
    if file.is_absolute():
        try:
            return str(file.relative_to(Path.cwd()))
        except ValueError:
            pass
    return str(file)


def _build(doc: _Document, build: Callable[[Any], _Model]) -> _Model | None:
    """The model of a document the checks passed (None otherwise), as a last safety net."""
    if doc.problems:
        return None
    try:
        return build(_plain(doc.data))
    except ModelError as exc:
        for error in exc.errors():
            doc.problems.append(doc.problem(tuple(error["loc"]), error["msg"]))
        return None


def _plain(value: Any) -> Any:
    """The data without ruamel's comment-carrying subclasses, for the pydantic models."""
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def locate(root: Any, path: NodePath) -> int:
    """1-based line of the node at `path`, or of its nearest existing ancestor."""
    line = root.lc.line + 1 if isinstance(root, CommentedBase) else 1
    node = root
    for part in path:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
            else:
                break
        except (KeyError, TypeError):  # a merged (`<<`) key has no position of its own
            break
        node = node[part]
    return line


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def field_name(path: NodePath) -> str:
    """`steps[3].lane` for ("steps", 3, "lane"); `$` for the whole document."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or DOCUMENT


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def _schema_findings(validator: Draft202012Validator, data: Any) -> list[Finding]:
    return [finding for error in validator.iter_errors(data) for finding in _explain(error)]


_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _explain(error: ValidationError) -> list[Finding]:
    """Findings in the catalog's terms for one schema error (jsonschema's texts are terse)."""
    path: NodePath = tuple(error.absolute_path)
    # jsonschema types these loosely (they may be "unset"); here they are always set.
    value: Any = error.instance
    rule: Any = error.validator_value
    schema: Any = error.schema
    described = schema.get("description") if isinstance(schema, Mapping) else None
    if "propertyNames" in error.absolute_schema_path:
        # jsonschema points at the mapping; the offending node is the key itself.
        return [Finding((*path, value), f"key {value!r} is not {described or 'allowed'}")]
    if error.validator == "required":
        missing = [key for key in rule if isinstance(value, Mapping) and key not in value]
        return [Finding((*path, key), f"required field {key!r} is missing") for key in missing]
    if error.validator == "additionalProperties" and rule is False:
        allowed = list(schema.get("properties", {}))
        return [
            Finding((*path, key), f"unknown field {key!r}; {_suggest(str(key), allowed)}")
            for key in value
            if key not in allowed
        ]
    if error.validator == "not" and isinstance(rule, Mapping) and rule.get("required"):
        message = rule.get("description") or error.message
        return [Finding((*path, rule["required"][-1]), message)]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = best_match(error.context)
        return _explain(best) if best is not None else [Finding(path, error.message)]
    return [Finding(path, _message(error.validator, value, rule, described, error.message))]


def _message(validator: Any, value: Any, rule: Any, described: str | None, fallback: str) -> str:
    if validator == "type":
        types = [rule] if isinstance(rule, str) else list(rule)
        expected = " or ".join(_EXPECTED.get(kind, kind) for kind in types)
        return f"expected {expected}, got {_describe(value)}"
    if validator == "enum":
        return f"{_describe(value)} is not one of: {', '.join(str(item) for item in rule)}"
    if validator == "pattern":
        return f"{value!r} is not {described}" if described else f"{value!r} does not match {rule}"
    if validator == "minimum":
        return f"must be at least {rule}, got {_describe(value)}"
    if validator == "maximum":
        return f"must be at most {rule}, got {_describe(value)}"
    if validator in ("minItems", "minLength"):
        return "must not be empty" if rule == 1 else f"must have at least {rule} items"
    return fallback


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, date):
        return f"date {value} (quote it to make it text)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"allowed: {', '.join(allowed)}"

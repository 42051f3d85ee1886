"""Store URLs: the one parser for ``GRIDHOOK_STORE``, the CLI's ``--store`` and ``open_store``.

A malformed URL is refused here, when it is parsed (settings at start-up, a command
before it does anything), with the form it should have; never at the first query.

- ``sqlite:///relative/path.db`` — relative to the working directory, and
  ``sqlite:////absolute/path.db`` — absolute, as SQLAlchemy spells them (three slashes
  end the scheme and the empty host; whatever follows is the path).
- ``firestore://PROJECT[/DATABASE]`` — a Google Cloud project id and a Firestore
  database id (default ``(default)``).
- ``dynamodb://TABLE[?region=REGION&endpoint_url=URL]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = ["DynamoDBURL", "FirestoreURL", "SQLiteURL", "StoreURL", "parse_store_url"]

SQLITE_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"
FIRESTORE_FORM = "firestore://PROJECT[/DATABASE] (e.g. firestore://my-project/gridhook)"
DYNAMODB_FORM = "dynamodb://TABLE[?region=REGION&endpoint_url=URL]"
ACCEPTED = f"{SQLITE_FORMS}, {FIRESTORE_FORM} or {DYNAMODB_FORM}"

# Google Cloud project ids (6-30 of a-z 0-9 -, a letter first; older ones may carry a
# "domain:" prefix) and Firestore database ids (4-63 of a-z 0-9 -, or "(default)").
_PROJECT = re.compile(r"(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATABASE = re.compile(r"\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9]")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_DYNAMODB_OPTIONS = ("region", "endpoint_url")


@dataclass(frozen=True, slots=True)
class SQLiteURL:
    path: str  # relative to the working directory unless it starts with "/"

    def __str__(self) -> str:
        return f"sqlite:///{self.path}"


@dataclass(frozen=True, slots=True)
class FirestoreURL:
    project: str
    database: str = "(default)"

    def __str__(self) -> str:
        return f"firestore://{self.project}/{self.database}"


@dataclass(frozen=True, slots=True)
class DynamoDBURL:
    table: str
    region: str | None = None
    endpoint_url: str | None = None

    def __str__(self) -> str:
        return f"dynamodb://{self.table}"


StoreURL = SQLiteURL | FirestoreURL | DynamoDBURL


def parse_store_url(text: str) -> StoreURL:
    """The store a URL names; ValueError saying what is wrong and the accepted form."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"{text!r} is not a store URL: use {ACCEPTED}")
    if scheme == "sqlite":
        return _sqlite(text, rest)
    if scheme == "firestore":
        return _firestore(text, rest)
    if scheme == "dynamodb":
        return _dynamodb(rest)
    raise ValueError(f"unknown store scheme {scheme!r} in {text!r}: use {ACCEPTED}")


def _sqlite(text: str, rest: str) -> SQLiteURL:
    if not rest.startswith("/"):
        raise ValueError(
            f"{text!r} names a host; a SQLite store is a file: use {SQLITE_FORMS} "
            "(three slashes, then the path)"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ValueError(f"{text!r} names no file: use {SQLITE_FORMS}")
    if "?" in path:
        raise ValueError(f"{text!r}: a SQLite store URL takes no options: use {SQLITE_FORMS}")
    return SQLiteURL(path)


def _firestore(text: str, rest: str) -> FirestoreURL:
    if "?" in rest or "#" in rest:
        raise ValueError(f"{text!r}: a Firestore store URL takes no options: use {FIRESTORE_FORM}")
    parts = rest.split("/")
    if len(parts) > 2:
        raise ValueError(
            f"{text!r}: a Firestore store is a project and optionally a database, "
            f"not {rest!r}: use {FIRESTORE_FORM}"
        )
    project, database = parts[0], parts[1] if len(parts) == 2 else "(default)"
    if not _PROJECT.fullmatch(project):
        raise ValueError(
            f"{text!r}: {project!r} is not a Google Cloud project id (6-30 lowercase "
            f"letters, digits and hyphens, a letter first): use {FIRESTORE_FORM}"
        )
    if not _DATABASE.fullmatch(database):
        raise ValueError(
            f"{text!r}: {database!r} is not a Firestore database id (4-63 lowercase "
            f"letters, digits and hyphens, a letter first, or (default)): use {FIRESTORE_FORM}"
        )
    return FirestoreURL(project, database)


def _dynamodb(rest: str) -> DynamoDBURL:
    table, _, query = rest.partition("?")
    if not _TABLE.fullmatch(table):
        raise ValueError(
            f"dynamodb store URL needs a table name (3-255 of A-Z a-z 0-9 _ . -): {DYNAMODB_FORM}"
        )
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_DYNAMODB_OPTIONS))
    if unknown:
        raise ValueError(f"unknown dynamodb store URL option(s) {unknown}: {DYNAMODB_FORM}")
    return DynamoDBURL(
        table,
        region=options.get("region") or None,
        endpoint_url=options.get("endpoint_url") or None,
    )

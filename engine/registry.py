"""Deployed definitions: storing them immutably and compiling each version once.

A deployment stores the YAML source and its checksum under ``id@version``.
Deploying the same content again is a no-op; deploying different content under
an existing ``id@version`` is refused, because cases opened on that version must
keep running on exactly what they were opened with.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from engine.clock import Clock
from engine.definition import ProcessDefinition, check_definition, check_references, definition_files
from engine.errors import DefinitionConflict, DefinitionError, DefinitionNotFound, Diagnostic
from engine.machine import CompiledProcess
from engine.source import parse_source
from engine.store import Store, definitions_t


@dataclass(frozen=True, slots=True)
class Deployment:
    """The result of deploying one definition.

    Attributes:
        ref: ``id@version``.
        created: False if exactly this content was already deployed.
    """

    process_id: str
    version: int
    title: str
    checksum: str
    deployed_at: datetime
    deployed_by: str
    created: bool

    @property
    def ref(self) -> str:
        return f"{self.process_id}@{self.version}"


class Registry:
    """Deployed definitions, compiled once per version and cached for the process's lifetime.

    Args:
        store: Where deployments are kept.
        clock: Source of the deployment time.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._compiled: dict[tuple[str, int], CompiledProcess] = {}
        self._lock = threading.Lock()

    def get(self, process_id: str, version: int, conn: sa.Connection | None = None) -> CompiledProcess:
        """The compiled process ``id@version``.

        Args:
            conn: The caller's open connection, if it is inside a transaction. Reading on a second
                connection would wait for the caller's own write lock on SQLite.

        Raises:
            DefinitionNotFound: If that version is not deployed.
        """
        key = (process_id, version)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        with self._connection(conn) as conn:
            row = conn.execute(
                sa.select(definitions_t.c.source_text, definitions_t.c.source_file).where(
                    definitions_t.c.process_id == process_id, definitions_t.c.version == version
                )
            ).first()
        if row is None:
            raise DefinitionNotFound(process_id, version)
        definition, problems = check_definition(row.source_text, row.source_file or f"{process_id}@{version}")
        if definition is None:  # pragma: no cover - only valid definitions are ever stored
            raise DefinitionError(problems)
        with self._lock:
            return self._compiled.setdefault(key, CompiledProcess(definition))

    def latest_version(self, process_id: str, conn: sa.Connection | None = None) -> int:
        """The highest deployed version of a process.

        Raises:
            DefinitionNotFound: If no version is deployed.
        """
        with self._connection(conn) as conn:
            version = conn.execute(
                sa.select(sa.func.max(definitions_t.c.version)).where(definitions_t.c.process_id == process_id)
            ).scalar()
        if version is None:
            raise DefinitionNotFound(process_id)
        return int(version)

    def latest(self, process_id: str, conn: sa.Connection | None = None) -> CompiledProcess:
        return self.get(process_id, self.latest_version(process_id, conn), conn)

    @contextlib.contextmanager
    def _connection(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.store.read() as own:
                yield own

    def list(self) -> list[Deployment]:
        """Every deployed version, ordered by id and version."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    definitions_t.c.process_id,
                    definitions_t.c.version,
                    definitions_t.c.title,
                    definitions_t.c.checksum,
                    definitions_t.c.deployed_at,
                    definitions_t.c.deployed_by,
                ).order_by(definitions_t.c.process_id, definitions_t.c.version)
            ).all()
        return [Deployment(*row, created=False) for row in rows]

    def source(self, process_id: str, version: int) -> str:
        return self.get(process_id, version).definition.source_text

    def deploy_files(self, paths: Iterable[str | Path], *, actor: str) -> list[Deployment]:
        """Validate and deploy files (directories expanded); all or nothing.

        Raises:
            DefinitionError: If any file is invalid; nothing is deployed then.
            DefinitionConflict: If an ``id@version`` exists with other content.
        """
        texts = [(str(path), path.read_bytes()) for path in definition_files(paths)]
        return self.deploy_texts(texts, actor=actor)

    def deploy_texts(self, texts: Iterable[tuple[str, str | bytes]], *, actor: str) -> list[Deployment]:
        """Validate and deploy ``(file name, YAML text)`` pairs in one transaction."""
        definitions: list[ProcessDefinition] = []
        problems: list[Diagnostic] = []
        for name, text in texts:
            definition, found = check_definition(text, name)
            problems.extend(found)
            if definition is not None:
                definitions.append(definition)
        known = {}
        for deployment in self.list():
            known[deployment.process_id] = deployment.version
        deployed = {pid: self.get(pid, v).definition for pid, v in known.items()}
        problems.extend(check_references(definitions, deployed))
        if problems:
            raise DefinitionError(problems)
        results: list[Deployment] = []
        now = self.clock.now()
        with self.store.transaction() as conn:
            for d in definitions:
                existing = conn.execute(
                    sa.select(definitions_t.c.checksum, definitions_t.c.deployed_at, definitions_t.c.deployed_by).where(
                        definitions_t.c.process_id == d.id, definitions_t.c.version == d.version
                    )
                ).first()
                if existing is not None:
                    if existing.checksum != d.checksum:
                        parsed = parse_source(d.source_text, d.file)
                        raise DefinitionConflict(
                            [
                                parsed.diagnostic(
                                    ("version",),
                                    "version-exists",
                                    f"{d.ref} is already deployed with different content; a deployed version never "
                                    f"changes",
                                    hint=f"deploy the change as version {self._next_version(conn, d.id)}",
                                )
                            ]
                        )
                    results.append(
                        Deployment(
                            d.id,
                            d.version,
                            d.title,
                            d.checksum,
                            existing.deployed_at,
                            existing.deployed_by,
                            created=False,
                        )
                    )
                    continue
                conn.execute(
                    sa.insert(definitions_t).values(
                        process_id=d.id,
                        version=d.version,
                        title=d.title,
                        checksum=d.checksum,
                        source_text=d.source_text,
                        source_file=d.file,
                        deployed_at=now,
                        deployed_by=actor,
                    )
                )
                results.append(Deployment(d.id, d.version, d.title, d.checksum, now, actor, created=True))
        return results

    @staticmethod
    def _next_version(conn: sa.Connection, process_id: str) -> int:
        current = conn.execute(
            sa.select(sa.func.max(definitions_t.c.version)).where(definitions_t.c.process_id == process_id)
        ).scalar()
        return int(current or 0) + 1


__all__ = ["Deployment", "Registry"]

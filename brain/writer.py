"""The step writer: commits the engine's steps in order, several per transaction when they come
faster than one commit takes (group commit), and only then publishes what they changed.

The engine never waits for SQL unless ``max_pending`` steps are already waiting (back-pressure).
Every guarantee holds: a step's trades, state and events still commit together; the snapshot of
a step goes out only after its commit; a crash loses only uncommitted steps, which a restart
recomputes from the feed's history exactly as before (the engine is deterministic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from brain.ledger import Ledger, Step
from shared.outbox import TRANSIENT_ERRORS
from shared.store.base import SnapshotName

log = logging.getLogger(__name__)

Docs = Mapping[SnapshotName, Any]
OnCommitted = Callable[[Docs | None], None]


class WriterFailed(RuntimeError):
    """The writer hit an error retrying cannot cure; the brain must stop (and restart clean)."""


class StepWriter:
    def __init__(
        self,
        ledger: Ledger,
        on_committed: OnCommitted,
        *,
        max_pending: int,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._ledger = ledger
        self._on_committed = on_committed
        self._queue: asyncio.Queue[tuple[Step, Docs | None]] = asyncio.Queue(max_pending)
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self.commits = 0  # transactions, for benchmarks

    async def submit(self, step: Step, docs: Docs | None = None) -> None:
        """Queue a step (and the snapshots to publish once it is committed)."""
        self._raise_if_failed()
        await self._queue.put((step, docs))

    async def flush(self) -> None:
        """Wait until every submitted step is committed."""
        joined = asyncio.ensure_future(self._queue.join())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([joined, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            joined.cancel()
            failed.cancel()
        self._raise_if_failed()

    async def run(self) -> None:
        """Commit until cancelled. A transient failure (the database restarting, a lock held too
        long) is retried with back-off, the steps staying queued in order; anything else stops
        the writer and is raised to whoever submits or flushes next."""
        try:
            while True:
                batch = [await self._queue.get()]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._commit([step for step, _ in batch])
                docs = next((docs for _, docs in reversed(batch) if docs is not None), None)
                self._on_committed(docs)
                for _ in batch:
                    self._queue.task_done()
        except Exception as exc:
            self._failure = exc
            self._failed.set()
            raise

    async def _commit(self, steps: list[Step]) -> None:
        delay = self._retry_initial
        while True:
            try:
                await self._ledger.commit(steps)
                self.commits += 1
                return
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "committing %d steps failed (%s); retrying in %.2fs", len(steps), exc, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise WriterFailed(f"committing steps failed: {self._failure}") from self._failure

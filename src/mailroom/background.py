"""Loops a worker runs beside serving (the outbound queue, housekeeping, upload expiry,
postponed threads): one way to start, pace and stop them.

A subclass says what one pass does (:meth:`Periodic.step`) and how long to wait before the
next (:meth:`Periodic.delay`); the loop logs a failed pass and goes on. :meth:`stop` sets a
flag as well as cancelling: on Python 3.11 a cancellation that meets a finishing
``asyncio.wait_for`` inside a pass can be swallowed, and the loop would go on; it sees the
flag at the latest when it next waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class Periodic:
    """``step()`` at start, then again after ``delay()`` seconds or a :meth:`wake`, until stopped."""

    #: The asyncio task's name, and how failures are logged.
    name = "mailroom-task"
    #: The shortest wait between passes, whatever ``delay()`` says.
    min_delay = 0.0

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def step(self) -> None:
        raise NotImplementedError

    async def delay(self) -> float:
        """Seconds until the next pass; also the wait after a failed one."""
        raise NotImplementedError

    def start(self) -> None:
        if self.task is None:
            self._stopping = False
            self.task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def wake(self) -> None:
        """Run the next pass now (new work arrived)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.step()
                delay = await self.delay()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: a pass failed; trying again later", self.name)
                try:
                    delay = await self.delay()
                except Exception:
                    delay = 15.0
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, self.min_delay)):
                    await self._wake.wait()
            self._wake.clear()

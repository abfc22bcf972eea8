"""mailroom.background.Periodic: the loop under the queue, housekeeping, expiry and wake-ups."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mailroom.background import Periodic

pytestmark = pytest.mark.anyio


class Counting(Periodic):
    name = "test-periodic"

    def __init__(self, wait: float, fail_first: bool = False) -> None:
        super().__init__()
        self.wait = wait
        self.fail_first = fail_first
        self.passes = 0
        self.third_pass = asyncio.Event()

    async def step(self) -> None:
        self.passes += 1
        if self.passes == 3:
            self.third_pass.set()
        if self.fail_first and self.passes == 1:
            raise RuntimeError("boom")

    async def delay(self) -> float:
        return self.wait


async def test_a_pass_at_start_then_one_per_delay() -> None:
    loop = asyncio.get_running_loop()
    task = Counting(0.02)
    started = loop.time()
    task.start()
    await asyncio.wait_for(task.third_pass.wait(), 5)
    await task.stop()
    assert task.passes >= 3
    assert task.passes <= (loop.time() - started) / 0.02 + 2  # one pass per delay, not more
    assert not task.running
    assert task.task is None


async def test_wake_runs_the_next_pass_at_once() -> None:
    task = Counting(3600)
    task.start()
    await asyncio.sleep(0.02)
    assert task.passes == 1
    task.wake()
    await asyncio.sleep(0.02)
    assert task.passes == 2
    await task.stop()


async def test_a_failed_pass_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    task = Counting(0.01, fail_first=True)
    with caplog.at_level(logging.ERROR, logger="mailroom.background"):
        task.start()
        await asyncio.sleep(0.1)
        await task.stop()
    assert "test-periodic: a pass failed" in caplog.text
    assert task.passes >= 2


async def test_stop_returns_even_when_a_pass_swallows_its_cancellation() -> None:
    class Swallowing(Counting):
        async def step(self) -> None:
            self.passes += 1
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return  # as asyncio.wait_for can on Python 3.11

    task = Swallowing(3600)
    task.start()
    await asyncio.sleep(0.02)
    await asyncio.wait_for(task.stop(), 2)
    assert task.passes == 1


async def test_start_twice_runs_one_loop() -> None:
    task = Counting(3600)
    task.start()
    first = task.task
    task.start()
    assert task.task is first
    await task.stop()

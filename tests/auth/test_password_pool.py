"""Password checks run off the event loop, in the hasher's bounded thread pool (issue 15 §1):
one login's argon2id must not stall the other sessions of a worker, and a burst of logins
runs at most ``concurrency`` checks at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mailroom.auth.passwords import PasswordHasher, Verification

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


async def _largest_gap(task: asyncio.Future[object]) -> float:
    """The longest the loop went without running a 1 ms ticker while ``task`` ran."""
    gap = 0.0
    last = time.perf_counter()
    while not task.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gap = max(gap, now - last)
        last = now
    await task
    return gap


async def test_a_real_argon2id_check_leaves_the_loop_free() -> None:
    hasher = PasswordHasher()  # the default profile: 64 MiB, 3 passes, as logins pay it
    stored = hasher.hash(PASSWORD)
    began = time.perf_counter()
    assert hasher.verify(stored, PASSWORD).ok
    on_loop = time.perf_counter() - began  # what the loop would have waited before
    task = asyncio.ensure_future(hasher.verify_async(stored, PASSWORD))
    gap = await _largest_gap(task)
    assert task.result() == Verification(ok=True, needs_rehash=False)
    assert gap < on_loop / 2, (gap, on_loop)


async def test_wrong_password_and_dummy_check_off_the_loop() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    stored = await hasher.hash_async(PASSWORD)
    assert hasher.verify(stored, PASSWORD).ok
    assert not (await hasher.verify_async(stored, "wrong")).ok
    await hasher.dummy_verify_async(PASSWORD)


class _Counting(PasswordHasher):
    """Records how many checks run at the same time (each takes 50 ms of a thread)."""

    def __init__(self, concurrency: int) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1, concurrency=concurrency)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def verify(self, stored: str, password: str) -> Verification:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            return super().verify(stored, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_checks_are_bounded(concurrency: int) -> None:
    hasher = _Counting(concurrency)
    stored = hasher.hash(PASSWORD)
    results = await asyncio.gather(*(hasher.verify_async(stored, PASSWORD) for _ in range(8)))
    assert all(r.ok for r in results)
    assert hasher.most == concurrency

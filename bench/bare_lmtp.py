"""The baseline for bench/lmtp_ingest.py: a bare aiosmtpd LMTP sink that stores durably.

No parsing, no database: each message is written to a new file, the file and its folder are
fsync'd (in a worker thread, so the loop keeps serving), and only then is every recipient
answered ``250``, one reply each (RFC 2033). The same protocol library and event loop as
mailroom's listener (aiosmtpd on uvloop, one process) and one durable write per message, so
mailroom's figures can be read as a ratio of it on the same machine at the same moment:

    python bench/bare_lmtp.py FOLDER PORT
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.lmtp import LMTP

_names = itertools.count()


def _store(folder: Path, data: bytes) -> None:
    path = folder / f"{os.getpid()}-{next(_names)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Sink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(_store, self.folder, envelope.original_content or b"")
        return "\r\n".join(f"250 2.0.0 <{r}> delivered" for r in envelope.rcpt_tos)


async def serve(folder: Path, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = Sink(folder)
    server = await loop.create_server(
        lambda: LMTP(handler, enable_SMTPUTF8=True, hostname="bare.example", ident="bare LMTP"),
        host="127.0.0.1",
        port=port,
        reuse_address=True,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    uvloop.run(serve(Path(sys.argv[1]), int(sys.argv[2])))

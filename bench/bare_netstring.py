"""The floor for bench/socketmap.py: a netstring server on uvloop that answers every request
``NOTFOUND `` at once, with the same reader as mailroom's socketmap listener. No look-up, no
registry, no database: what the protocol and the event loop cost by themselves.

    python bench/bare_netstring.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mailroom.frontends.socketmap import NetstringReader, encode

REPLY = encode(b"NOTFOUND ")


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        self.reader = NetstringReader()

    def data_received(self, data: bytes) -> None:
        for _ in self.reader.feed(data):
            self.transport.write(REPLY)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1])))

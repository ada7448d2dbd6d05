"""A TCP proxy the tests control, between Sluice and PostgreSQL, to make the faults networks make.

- `cut()`: close both ends of every open connection (both sides see it at once);
- `drop_clients()`: close the client end only; the server end stays open and silent, as when a
  client host dies or a partition swallows the FIN (PostgreSQL keeps the session and its locks);
- `black_hole()`: stop forwarding on every open connection, close nothing (neither side hears a
  thing; keepalives are answered by the proxy's own sockets);
- `refuse()` / `accept()`: the database refuses new connections (the port is closed) after
  cutting every open one, then takes them again;
- `delay(seconds)`: every block forwarded waits that long.
New connections are forwarded normally after a cut, a drop or a black hole.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress
from dataclasses import dataclass, field

from streams.devbroker import free_port


@dataclass(eq=False)
class Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    frozen: bool = False  # forwards nothing and closes nothing any more
    parked: asyncio.Event = field(default_factory=asyncio.Event)  # never set: holds a frozen end


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.latency = 0.0
        self.faults: list[str] = []
        self._links: set[Link] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _close(self) -> int:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.parked.set()
            link.client.transport.abort()
            link.server.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        return 0

    # -- faults, called from the test's thread -----------------------------------------------

    def cut(self) -> int:
        """Close both ends of every connection open now; how many connections."""
        return self._call(self._cut())

    def drop_clients(self) -> int:
        """Close the client end of every open connection; the server end stays open, silent."""
        return self._call(self._drop_clients())

    def black_hole(self) -> int:
        """Stop forwarding on every open connection; nothing is closed."""
        return self._call(self._black_hole())

    def refuse(self) -> int:
        """Refuse new connections and cut the open ones, until `accept`."""
        return self._call(self._refuse())

    def accept(self) -> None:
        self._call(self._listen())

    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def _call(self, work: object) -> int:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)  # type: ignore[arg-type]
        result: int = future.result(10)
        return result

    async def _cut(self) -> int:
        return self._each("cut", close_client=True, close_server=True)

    async def _drop_clients(self) -> int:
        return self._each("drop_clients", freeze=True, close_client=True)

    async def _black_hole(self) -> int:
        return self._each("black_hole", freeze=True)

    def _each(
        self,
        fault: str,
        *,
        freeze: bool = False,
        close_client: bool = False,
        close_server: bool = False,
    ) -> int:
        """Do `fault` to every connection open now; how many there were."""
        links = list(self._links)
        for link in links:
            link.frozen = link.frozen or freeze
            if close_client:
                link.client.transport.abort()
            if close_server:
                link.server.transport.abort()
        self.faults.append(fault)
        return len(links)

    async def _refuse(self) -> int:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.faults.append("refuse")
        return await self._cut()

    # -- forwarding ------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> int:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._client, "127.0.0.1", self.port, reuse_address=True
            )
        return 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        link = Link(writer, up_writer)
        self._links.add(link)
        await asyncio.gather(
            self._pipe(link, reader, up_writer), self._pipe(link, up_reader, writer)
        )
        self._links.discard(link)

    async def _pipe(
        self, link: Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        with suppress(OSError, asyncio.IncompleteReadError):
            while not link.frozen and (data := await source.read(65536)):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if link.frozen:
                    break
                sink.write(data)
                await sink.drain()
        if link.frozen:
            await link.parked.wait()  # hold this end open, silent, for as long as the proxy runs
        sink.transport.abort()

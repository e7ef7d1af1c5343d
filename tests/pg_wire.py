"""What PostgreSQL receives, counted on the wire: a TCP proxy in front of the test server that
reads the frontend protocol (https://www.postgresql.org/docs/current/protocol-message-formats.html)
and notes every statement the server is asked to run — each Execute of the extended protocol
and each statement of a simple Query, so asyncpg's connection reset and BEGIN/COMMIT count like
any SELECT. Nothing in the application is replaced: the app's own database client connects
through the proxy instead of straight to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import replace

from tortoise.connection import get_connections

from divide_support.core.database import ConnectionParams, tortoise_config
from divide_support.core.db_backend import TimedAsyncpgDBClient

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def _cstring(data: bytes, start: int = 0) -> tuple[str, int]:
    end = data.index(b"\0", start)
    return data[start:end].decode("utf-8", "replace"), end + 1


class WireCounter:
    def __init__(self, upstream: ConnectionParams) -> None:
        self.upstream = upstream
        self.statements: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.upstream.host, self.upstream.port
        if host.startswith("/"):  # the embedded server listens on a socket folder
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            # Startup: refuse SSL/GSS so the rest of the conversation can be read.
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                body = await reader.readexactly(length - 8)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")
                    await writer.drain()
                    continue
                break
            up_reader, up_writer = await self._open_upstream()
            up_writer.write(head + body)
            back = asyncio.ensure_future(self._pipe(up_reader, writer))
            try:
                await self._forward(reader, up_writer)
            finally:
                back.cancel()
                up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prepared: dict[str, str] = {}
        portals: dict[str, str] = {}
        while True:
            kind = await reader.readexactly(1)
            length_bytes = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack("!i", length_bytes)[0] - 4)
            if kind == b"Q":  # simple query: one or more statements separated by ;
                text, _ = _cstring(body)
                self.statements.extend(s.strip() for s in text.split(";") if s.strip())
            elif kind == b"P":  # Parse: statement name, query
                name, at = _cstring(body)
                prepared[name], _ = _cstring(body, at)
            elif kind == b"B":  # Bind: portal name, statement name
                portal, at = _cstring(body)
                statement, _ = _cstring(body, at)
                portals[portal] = prepared.get(statement, "?")
            elif kind == b"E":  # Execute: the server runs a statement
                portal, _ = _cstring(body)
                self.statements.append(portals.get(portal, "?"))
            writer.write(kind + length_bytes + body)
            await writer.drain()
            if kind == b"X":
                return


@contextlib.asynccontextmanager
async def counting_statements(service: ConnectionParams) -> AsyncIterator[WireCounter]:
    """While the block runs (in this task), the application's `default` database client is a
    fresh one (one pooled connection, as the service makes them) that reaches PostgreSQL through
    a WireCounter."""
    counter = WireCounter(service)
    port = await counter.start()
    via_proxy = replace(service, host="127.0.0.1", port=port, dsn=None)
    credentials = tortoise_config(via_proxy)["connections"]["default"]["credentials"]
    client = TimedAsyncpgDBClient(connection_name="default",
                                  **{**credentials, "minsize": 1, "maxsize": 1})
    token = get_connections().set("default", client)
    try:
        yield counter
    finally:
        get_connections().reset(token)
        await client.close()
        await counter.close()

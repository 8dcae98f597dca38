"""The API's TLS listener, in front of waitress (which speaks no TLS).

With [api] tls_cert_file set the API runs as two parts in one process:
``TlsFront`` accepts TLS 1.2+ on bind_host:bind_port (asyncio, one thread)
and pipes each connection's plaintext to waitress, which then listens only on
an abstract unix socket of this process (nothing on the network reaches it
unencrypted). HTTP keep-alive, pipelining and bodies pass through as bytes;
waitress keeps its own limits and timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import ssl

from congress_ha.threads import Supervised

LOG = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish its TLS handshake
_CHUNK = 65536


def backend_socket() -> tuple[socket.socket, str]:
    """A listening abstract unix socket for waitress, private to this network namespace
    and named with a random part, so no other process guesses it by accident."""
    name = f"\0congress-ha-api-{os.getpid()}-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(name)
    sock.listen(1024)
    return sock, name


class TlsFront:
    """TLS on ``listen`` (a bound TCP socket), plaintext to the unix socket ``backend``."""

    def __init__(self, listen: socket.socket, context: ssl.SSLContext, backend: str,
                 connection_limit: int) -> None:
        self.listen = listen
        self.context = context
        self.backend = backend
        self.connection_limit = connection_limit
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        self.closing = False
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.thread = Supervised("api-tls", self._run, stopping=lambda: self.closing)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        slots = asyncio.Semaphore(self.connection_limit)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async with slots:  # past the limit new connections wait, as in waitress
                await self._relay(reader, writer)

        server = await asyncio.start_server(handle, sock=self.listen, ssl=self.context,
                                            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                                            limit=_CHUNK)
        if self.closing:
            self._stop.set()
        await self._stop.wait()
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                back_reader, back_writer = await asyncio.open_unix_connection(self.backend)
            except OSError as exc:
                LOG.error("API TLS: the HTTP server does not accept the connection: %s", exc)
                return
            self._writers.add(back_writer)
            try:
                await asyncio.gather(self._pipe(reader, back_writer),
                                     self._pipe(back_reader, writer))
            finally:
                self._writers.discard(back_writer)
                back_writer.close()
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the peer went away: the other direction ends too
        try:
            # The client finished sending: the server still answers (half close).
            # TLS has no half close, so the server's end closes the whole stream.
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, RuntimeError):
            pass

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # A client that fails its handshake (a scanner, a wrong CA, plain HTTP) is
        # the client's problem: one line, not asyncio's traceback.
        exc = context.get("exception")
        if isinstance(exc, (ssl.SSLError, OSError, asyncio.TimeoutError)):
            LOG.info("API TLS: connection refused: %s", exc)
            return
        LOG.error("API TLS: %s", context.get("message"), exc_info=exc)

    def stop(self) -> None:
        self.closing = True
        if self._stop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop ended already
        if self.thread.ident is not None:
            self.thread.join(timeout=5)

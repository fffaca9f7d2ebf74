"""A TLS client socket that records the size of every TLS record the peer
sends, for checking how pgwarden frames what it writes to clients.

TLS runs in an ssl.SSLObject over memory BIOs, so every byte from the
network passes through here before OpenSSL sees it and the record headers
(Byte1 content type, Byte2 version, Int16 length) can be read off the wire.
"""

from __future__ import annotations

import socket
import ssl
import struct

import harness

APPLICATION_DATA = 23   # TLS ContentType application_data (TLS 1.3 wraps everything after the handshake in it)


class RecordingTlsSocket:
    """Enough of a socket (sendall, recv, settimeout, close) for
    harness.RawClient, over TLS after an SSLRequest."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, server_hostname: str, timeout: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        answer = self.sock.recv(1)
        if answer != b"S":
            raise harness.HarnessError(f"SSLRequest answered {answer!r}")
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        self.records: list[tuple[int, int]] = []   # (content type, length) in arrival order
        self._pending = bytearray()                 # raw bytes not yet split into records
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._read_network()
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _read_network(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return
        self._pending += data
        while len(self._pending) >= 5:
            content_type, _version, length = struct.unpack("!BHH", self._pending[:5])
            if len(self._pending) < 5 + length:
                break
            self.records.append((content_type, length))
            del self._pending[:5 + length]
        self.incoming.write(data)

    def settimeout(self, seconds) -> None:
        self.sock.settimeout(seconds)

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def recv(self, n: int) -> bytes:
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                self._read_network()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close(self) -> None:
        self.sock.close()

    def application_record_sizes(self) -> list[int]:
        return [length for kind, length in self.records if kind == APPLICATION_DATA]

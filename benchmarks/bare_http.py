"""A bare HTTP/1.1 client for load generators: one keep-alive connection, the few calls the simulated players make
(`get`, `post` with a JSON body), and a reply with `status_code`, `headers.get` and `json()`, as httpx gives them.

It exists because the load generator shares the machine's cores with the server it measures: httpx spent 4-13 ms
of CPU per request in these benchmarks (benchmarks/RESULTS.md, "Several web processes ..."), this about a tenth of a
millisecond, so a run with it shows more of what the server can do. It speaks only what `arena serve` answers:
Content-Length or chunked bodies, no redirects, no TLS, no cookies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx


class BareHeaders(dict[str, str]):
    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class BareResponse:
    def __init__(self, status_code: int, headers: BareHeaders, body: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, body

    def json(self) -> Any:
        return json.loads(self.content)


class BareConnection:
    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> BareResponse:
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> BareResponse:
        return await self.request("POST", path, json_body=json, headers=headers)

    async def request(
        self, method: str, path: str, json_body: Any = None, headers: dict[str, str] | None = None
    ) -> BareResponse:
        if path.startswith("http"):  # an absolute URL the server handed out: same host, its path only
            path = httpx.URL(path).raw_path.decode()
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if json_body is not None:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        try:
            return await self._exchange(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()  # a fresh connection next time
            raise httpx.TransportError(f"{type(error).__name__}: {error}") from error

    async def _exchange(self, request: bytes) -> BareResponse:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = BareHeaders()
        for line in head[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return BareResponse(int(head[0].split()[1]), headers, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

"""Letting a room in: the address phones should open, whether a join link can leave this machine, and the secret
key a server reachable from the room signs its cookies with."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request

from app.config import PROJECT_ROOT

SECRET_KEY_FILE = PROJECT_ROOT / "var" / "secret_key"
# connect() on a UDP socket only picks the route and the local address for it; no packet is sent.
PRIVATE_PROBE = ("10.255.255.255", 1)


def is_loopback_host(host: str) -> bool:
    """True for addresses only this machine can open (127.0.0.0/8, ::1, localhost)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def lan_address() -> str | None:
    """This machine's address on its local network, the one phones in the room can open; None without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(PRIVATE_PROBE)
            address = str(probe.getsockname()[0])
    except OSError:
        address = ""
    if address and not is_loopback_host(address) and address != "0.0.0.0":
        return address
    try:
        named = socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
    return None if is_loopback_host(named) else named


def public_base(public_url: str, bind_host: str, port: int) -> str:
    """Where phones reach the server: ARENA_PUBLIC_URL when set (a proxy or tunnel), else this machine's LAN
    address when the server listens on every interface, else the address it listens on."""
    if public_url:
        return public_url.rstrip("/")
    host = bind_host
    if bind_host in ("0.0.0.0", "::"):
        host = lan_address() or "127.0.0.1"
    return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"


def kept_secret_key(path: Path | None = None) -> str:
    """A random secret key, made once and kept (readable by this user only) so that cookies survive a restart."""
    path = path or SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as kept:
        kept.write(key + "\n")
    return key


def join_link(request: Request, name: str, **params: str) -> str:
    """A link for the room's phones to the route ``name``: under ARENA_PUBLIC_URL when it is set, else on the
    address this request came in on."""
    public = request.app.state.settings.public_url
    if not public:
        return str(request.url_for(name, **params))
    return public.rstrip("/") + request.app.url_path_for(name, **params)

"""No network in the process that runs the user's script.

Installed by the bootstrap before the script starts and, through `_site/sitecustomize.py`
on PYTHONPATH, in every Python process the script starts. It blocks Python-level sockets:
`socket.connect`/`connect_ex`/`sendto` to any address that is not loopback or a Unix socket
raise OSError(ENETUNREACH), and `getaddrinfo` refuses names other than localhost. The
environment points every proxy variable at an address nothing listens on and puts the
Hugging Face libraries offline, so C-level HTTP clients that honour proxies fail too.
A C extension opening its own sockets without a proxy is not covered.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

DEAD_PROXY = "http://127.0.0.1:9"
"""The discard port on loopback: nothing listens there, so a proxied request fails at once."""

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "NO_PROXY": "",
    "no_proxy": "",
    **{
        name: DEAD_PROXY
        for name in (
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "FTP_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "ftp_proxy",
        )
    },
}

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


def _host_is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _allowed(sock: socket.socket, address: Any) -> bool:
    if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        return True
    if isinstance(address, tuple) and address:
        return _host_is_local(address[0])
    return False


def _refuse(address: Any) -> OSError:
    return OSError(
        errno.ENETUNREACH, f"evallint run blocks the network: connection to {address!r} refused"
    )


def install() -> None:
    """Block non-loopback sockets in this process (idempotent)."""
    if getattr(socket, "_evallint_blocked", False):
        return
    cls = socket.socket
    connect, connect_ex, sendto = cls.connect, cls.connect_ex, cls.sendto
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _allowed(self, address):
            raise _refuse(address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _allowed(self, address):
            return errno.ENETUNREACH
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *rest: Any) -> Any:
        if rest and not _allowed(self, rest[-1]):
            raise _refuse(rest[-1])
        return sendto(self, data, *rest)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _host_is_local(host):
            raise socket.gaierror(
                socket.EAI_NONAME, f"evallint run blocks the network: {host!r} not resolved"
            )
        return getaddrinfo(host, *args, **kwargs)

    cls.connect = guarded_connect  # type: ignore[method-assign,assignment]
    cls.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
    cls.sendto = guarded_sendto  # type: ignore[assignment]
    socket.getaddrinfo = guarded_getaddrinfo
    socket._evallint_blocked = True  # type: ignore[attr-defined]


def offline_environment(base: dict[str, str]) -> dict[str, str]:
    """`base` with every proxy pointing nowhere and the Hugging Face libraries offline."""
    return {**base, **OFFLINE_ENVIRONMENT}

"""Where a webhook may point: http(s) to a public address, checked when it is saved and again on
every connection, so a name that re-resolves to an internal address (DNS rebinding) reaches nothing.

Refused unless `WEBHOOK_ALLOW_PRIVATE` is on (a development or test setting): loopback, private,
link-local (cloud metadata), carrier-grade NAT, multicast, reserved and unspecified addresses,
IPv4-mapped IPv6 forms of them. Only the schemes http and https; no redirects are followed and
no proxy from the environment is used (bounty.webhooks). One message for every refusal at send
time, so the errors do not map which internal ports answer.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.parse
import urllib.request

from django.conf import settings

SCHEMES = ("http", "https")
NOT_PUBLIC = "the webhook's host {host!r} is not a public internet address"
BAD_SCHEME = "the webhook URL must be http:// or https://"


class WebhookTargetRefused(OSError):
    """The URL or the address it resolves to is not a place the platform posts to."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def _allowed(address: str) -> bool:
    return settings.WEBHOOK_ALLOW_PRIVATE or _public(address)


def resolve_allowed(host: str, port: int) -> list[tuple]:
    """getaddrinfo of host:port, only the addresses a webhook may reach; refused when none is left."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"the webhook's host {host!r} does not resolve ({exc})") from None
    allowed = [info for info in infos if _allowed(info[4][0])]
    if not allowed or len(allowed) != len(infos):  # a name with any internal address is refused whole
        raise WebhookTargetRefused(NOT_PUBLIC.format(host=host))
    return allowed


def check_webhook_url(url: str) -> None:
    """Raise WebhookTargetRefused unless `url` is http(s) and its host resolves to allowed addresses only."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise WebhookTargetRefused(BAD_SCHEME)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookTargetRefused(BAD_SCHEME) from None
    resolve_allowed(parts.hostname, port)


def _guarded_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **_kwargs):
    """socket.create_connection to an address checked at this moment (no second lookup in between)."""
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _name, sockaddr in resolve_allowed(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or WebhookTargetRefused(NOT_PUBLIC.format(host=host))


class _GuardedHTTP(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _GuardedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_GuardedHTTP, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_GuardedHTTPS, req, context=self._context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is the receiver's answer, logged as such: the signed POST is not replayed


def guarded_opener() -> urllib.request.OpenerDirector:
    """An opener that speaks http(s) only, to allowed addresses only, with no proxy and no redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler({}), urllib.request.UnknownHandler(), _HTTPHandler(),
                    _HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(), _NoRedirect(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener

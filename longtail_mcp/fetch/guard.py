"""The address policy of http-fetch: parse a URL strictly, resolve it once, refuse internal addresses."""

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import idna

from longtail_mcp.errors import InvalidInput, PolicyDenied, Unavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

SCHEMES = {"http": 80, "https": 443}
MAX_URL = 8192
_HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
# One part of a legacy IPv4 spelling as inet_aton reads it: hex, octal (leading 0) or decimal.
_NUMBER = re.compile(r"^(0[x][0-9a-f]*|[0-9]+)$")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")

_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_METADATA = ipaddress.ip_address("169.254.169.254")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_COMPAT = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class Target:
    """A checked-syntax URL: scheme, normalised host (ASCII name or IP text), port and request target."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, never empty
    ip: IPAddress | None  # set when the host is an IP literal (in any spelling)

    @property
    def authority(self) -> str:
        """The Host header value: the host as normalised, with the port unless it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def parse_url(url: str) -> Target:
    """Parse an absolute http(s) URL, normalising its host (IDNA, case, trailing dot, legacy IPv4 spellings).

    Raises:
        InvalidInput: another scheme, userinfo, an empty or malformed host, a bad port.
    """
    if len(url) > MAX_URL:
        raise InvalidInput(f"URL longer than {MAX_URL} characters")
    if _SPACE_OR_CONTROL.search(url) or "\\" in url:
        raise InvalidInput("URL contains spaces, control characters or backslashes; percent-encode them")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidInput(f"only http and https URLs are fetched, not {scheme or 'a relative URL'!r}")
    if "@" in parts.netloc:
        raise InvalidInput("URLs with user info (user:password@host) are refused; send credentials in headers")
    if port == 0:
        raise InvalidInput("port 0 is not a port")
    raw_host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    host, ip = normalise_host(raw_host)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(scheme, host, port or SCHEMES[scheme], target, ip)


def normalise_host(raw: str) -> tuple[str, IPAddress | None]:
    """The canonical host and, when it is an IP literal in any spelling, its address.

    Raises:
        InvalidInput: an empty host, a malformed name or a numeric host no IPv4 reading accepts.
    """
    if raw.startswith("["):
        if not raw.endswith("]") or "%" in raw:
            raise InvalidInput(f"malformed IPv6 host {raw!r} (zone ids are not accepted)")
        try:
            v6 = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise InvalidInput(f"malformed IPv6 host {raw!r}") from None
        return str(v6), v6
    host = raw.lower()
    if not host.isascii():
        try:  # UTS 46 maps look-alikes first: fullwidth digits and dots become an IPv4 literal
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidInput(f"host {raw!r} is not a valid international name: {exc}") from None
    host = host.removesuffix(".")
    if not host or not _HOST_CHARS.match(host) or any(not label for label in host.split(".")):
        raise InvalidInput(f"malformed host {raw!r}")
    v4 = legacy_ipv4(host)
    if v4 is not None:
        return str(v4), v4
    return host, None


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host names as inet_aton reads it (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`).

    A host whose last label is a number must be an address (as WHATWG URL parsing decides); None for
    a name. Raises InvalidInput for a numeric host that is no valid address (`1.2.3.4.5`, `09.1.1.1`).
    """
    labels = host.split(".")
    if not _NUMBER.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.match(label) for label in labels):
        raise InvalidInput(f"host {host!r} looks numeric but is not an IPv4 address")
    try:
        values = [_number(label) for label in labels]
    except ValueError:
        raise InvalidInput(f"host {host!r} looks numeric but is not an IPv4 address") from None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise InvalidInput(f"host {host!r} is out of the IPv4 range")
    number = last
    for i, v in enumerate(head):
        number |= v << (24 - 8 * i)
    return ipaddress.IPv4Address(number)


def _number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label)


def classify(address: IPAddress) -> str | None:
    """Why `address` is internal ("a loopback address", ...), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, how = embedded
            reason = classify(inner)
            return f"{how} {inner}, {reason}" if reason else None
        if address in _COMPAT and int(address) > 1:
            return "a deprecated IPv4-compatible address"
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if address.teredo is not None:
            for part in address.teredo:
                if classify(part) is not None:
                    return f"a Teredo address embedding {part}, {classify(part)}"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address == _METADATA:
        return "the cloud metadata address (link-local)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address):
        if address == ipaddress.IPv4Address("255.255.255.255"):
            return "the broadcast address"
        if address in _CGNAT:
            return "a shared (carrier-grade NAT) address"
        if address in _THIS_NETWORK:
            return "a 'this network' (0.0.0.0/8) address"
        if any(address in net for net in _RFC1918):
            return "a private address"
    else:
        if address.is_site_local:
            return "a site-local address"
        if address in _ULA:
            return "a unique local (private) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a special-purpose (non-global) address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries and reaches (mapped, compatible, NAT64, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "an IPv4-mapped address of"
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPAT and int(address) > 1:
        reason = classify(low)
        return (low, "an IPv4-compatible address of") if reason else None
    if address in _NAT64:
        return low, "a NAT64 address of"
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        reason = classify(address.sixtofour)
        return (address.sixtofour, "a 6to4 address of") if reason else None
    return None


class AllowList:
    """`settings.http_allow`: exact host names (any case, trailing dot ignored) and networks (CIDR or one IP)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            text = entry.strip()
            try:
                self.networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                self.names.add(normalise_host(text)[0])

    def allows_name(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, address: IPAddress) -> bool:
        inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        candidates = [address] if inner is None else [address, inner[0]]
        return any(a in net for a in candidates for net in self.networks)


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (TCP), in its order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


async def check(target: Target, allow: AllowList, *, resolve: Resolver = system_resolve,
                approved: bool = False) -> list[IPAddress]:
    """The addresses to connect to for `target`, resolved once: the caller pins its connection to them.

    Every address must be public, inside an allowed network, or the host name must be allowed by name.
    `approved=True` (an approver allowed this exact call) skips the address policy, not the resolution.

    Raises:
        PolicyDenied: (rule "internal_address") the host is or resolves to an internal address.
        Unavailable: the name does not resolve.
    """
    by_name = target.ip is None and allow.allows_name(target.host)
    if target.ip is None and _is_localhost(target.host) and not (by_name or approved):
        raise PolicyDenied(f"{target.host} names this machine (localhost); add it to LONGTAIL_HTTP_ALLOW "
                           "to allow it", rule="internal_address", data={"host": target.host})
    if target.ip is not None:
        addresses: list[IPAddress] = [target.ip]
    else:
        try:
            addresses = await resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise Unavailable(f"could not resolve {target.host}: {exc}") from None
        if not addresses:
            raise Unavailable(f"could not resolve {target.host}: no addresses")
    if by_name or approved:
        return addresses
    for address in addresses:
        reason = classify(address)
        if reason is not None and not allow.allows_address(address):
            subject = target.host if target.ip is not None else f"{target.host} resolves to {address}, which"
            raise PolicyDenied(f"{subject} is {reason}; add it to LONGTAIL_HTTP_ALLOW to allow it",
                               rule="internal_address", data={"host": target.host, "address": str(address)})
    return addresses

"""Which IP addresses count as public: the one judgement behind every outbound connection a tenant can aim.

Upload fetches (`safe_fetch.py`) and tenant webhook deliveries (`delivery/subscription_delivery.py`)
both refuse loopback, private, link-local (169.254.169.254), multicast, reserved and deprecated
ranges, and judge the IPv4 address carried inside IPv6 forms (NAT64, 6to4, Teredo, mapped,
translated, compatible), since traffic to those reaches the IPv4 host.
"""
from __future__ import annotations

import ipaddress


class AddressNotPublic(Exception):
    """The message is the reason, prefixed `ssrf_blocked:`."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Deprecated ranges that `ipaddress` still calls global: site-local (RFC 3879), the 6bone
# (RFC 3701) and the 6to4 relay anycast prefix (RFC 7526).
_DEPRECATED = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("3ffe::/16"),
               ipaddress.ip_network("192.88.99.0/24"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries, and the form's name; traffic to it reaches that host."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return low32, "NAT64"
    if ip in _NAT64_LOCAL:
        value = int(ip)
        if (value >> 32) & (1 << 48) - 1 == 0:  # the /96 layout: the address in the last 32 bits
            return low32, "NAT64"
        # RFC 6052's layout for a /48 prefix: two octets, the reserved u octet, then two more.
        return ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | ((value >> 40) & 0xFFFF)), "NAT64"
    if ip in _IPV4_TRANSLATED:
        return low32, "IPv4-translated"
    if ip in _IPV4_COMPATIBLE and not (ip.is_loopback or ip.is_unspecified):
        return low32, "IPv4-compatible"
    if ip.sixtofour:
        return ip.sixtofour, "6to4"
    if ip.teredo:
        return ip.teredo[1], "Teredo"
    return None


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)
            and not any(ip in net for net in _DEPRECATED if net.version == ip.version))


def check_public(address: str, allowed: tuple = ()) -> None:
    """Refuse an address that is not public (unless an allowed range holds it), judging the IPv4
    address inside NAT64, 6to4, Teredo, IPv4-compatible, -mapped and -translated forms."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in net for net in allowed if net.version == ip.version):
        return
    embedded = _embedded_ipv4(ip) if ip.version == 6 else None
    if embedded and not _is_public(embedded[0]):
        raise AddressNotPublic(f"ssrf_blocked: {address} embeds {embedded[0]} ({embedded[1]}), not a public address")
    # NAT64 and IPv4-mapped addresses reach the IPv4 host itself; the other forms' own ranges
    # (reserved, deprecated, private) are judged too.
    if embedded and embedded[1] in ("NAT64", "IPv4-mapped"):
        return
    if not _is_public(ip):
        raise AddressNotPublic(f"ssrf_blocked: {address} is not a public address")

"""Attacks on the http-fetch guard: every one refused before the request reaches the local site.

Connections only ever go to 127.0.0.1 / ::1: an attack that got past the guard would show up as a hit
on the local site. Addresses outside loopback are tested by classification only, never by connecting.
"""

import ipaddress

import anyio
import pytest

from longtail_mcp.errors import InvalidInput, PolicyDenied, Unavailable
from longtail_mcp.fetch.client import fetch
from longtail_mcp.fetch.guard import AllowList, check, classify, parse_url
from tests.servers.test_http_fetch_core import LOCAL_NAMES, Site, policy, site, table

pytestmark = pytest.mark.anyio
__all__ = ["site"]

# Each URL names the local site (`{p}`: its 127.0.0.1 port, `{p6}`: its ::1 port) in another disguise.
REFUSED = {
    "ipv4_literal": "http://127.0.0.1:{p}/secret",
    "localhost": "http://localhost:{p}/secret",
    "localhost_upper_trailing_dot": "http://LOCALHOST.:{p}/secret",
    "subdomain_of_localhost": "http://foo.localhost:{p}/secret",
    "decimal_integer": "http://2130706433:{p}/secret",
    "hex_integer": "http://0x7f000001:{p}/secret",
    "octal_dotted": "http://0177.0.0.1:{p}/secret",
    "short_form": "http://127.1:{p}/secret",
    "hex_short_form": "http://0x7f.1:{p}/secret",
    "mixed_hex_octal_decimal": "http://0x7F.00.0.01:{p}/secret",
    "zero_padded": "http://127.000.000.001:{p}/secret",
    "fullwidth_digits": "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11:{p}/secret",
    "ipv6_loopback": "http://[::1]:{p6}/secret",
    "ipv4_mapped_dotted": "http://[::ffff:127.0.0.1]:{p}/secret",
    "ipv4_mapped_hex": "http://[::ffff:7f00:1]:{p}/secret",
    "ipv4_mapped_expanded": "http://[0:0:0:0:0:FFFF:7F00:0001]:{p}/secret",
    "unspecified": "http://0.0.0.0:{p}/secret",
    "unspecified_as_zero": "http://0:{p}/secret",
    "https_scheme_same_address": "https://127.0.0.1:{p}/secret",
    "name_resolving_to_loopback": "http://evil.test:{p}/secret",
    "name_resolving_to_public_and_loopback": "http://mixed.test:{p}/secret",
}
MALFORMED = {
    "userinfo_before_internal_host": "http://allowed.test@127.0.0.1:{p}/secret",
    "userinfo_with_password": "http://user:pass@127.0.0.1:{p}/secret",
    "internal_host_hidden_as_userinfo": "http://127.0.0.1:{p}@allowed.test/secret",
    "backslash_confusion": "http://allowed.test\\@127.0.0.1:{p}/secret",
    "file_scheme": "file:///etc/passwd",
    "gopher_scheme": "gopher://127.0.0.1:{p}/_secret",
    "ipv6_zone_id": "http://[fe80::1%25lo]:{p}/secret",
    "out_of_range_number": "http://4294967296:{p}/secret",
    "five_part_address": "http://127.0.0.0.1:{p}/secret",
    "percent_encoded_host": "http://%31%32%37.0.0.1:{p}/secret",
    "empty_host": "http://:{p}/secret",
}


def _fill(site: Site, url: str) -> str:
    return url.format(p=site.port, p6=site.port6 or site.port)


@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED.keys())
async def test_internal_addresses_are_refused_before_any_request(site: Site, url: str) -> None:
    with anyio.fail_after(5), pytest.raises(PolicyDenied) as refused:  # refused before connecting: ::1 need not listen
        await fetch(policy(), "GET", _fill(site, url))
    assert refused.value.rule == "internal_address"
    assert "LONGTAIL_HTTP_ALLOW" in refused.value.message
    assert site.hits == []


@pytest.mark.parametrize("url", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_and_deceptive_urls_are_invalid_even_when_approved(site: Site, url: str) -> None:
    with anyio.fail_after(5), pytest.raises(InvalidInput):
        await fetch(policy("127.0.0.0/8", "allowed.test"), "GET", _fill(site, url), approved=True)
    assert site.hits == []


async def test_a_refusal_names_the_host_the_address_and_the_reason() -> None:
    with anyio.fail_after(5):
        with pytest.raises(PolicyDenied, match=r"^127\.0\.0\.1 is a loopback address; add it to LONGTAIL_HTTP_ALLOW"):
            await check(parse_url("http://2130706433/"), AllowList([]))
        with pytest.raises(PolicyDenied, match=r"^evil\.test resolves to 127\.0\.0\.1, which is a loopback address"):
            await check(parse_url("http://evil.test/"), AllowList([]), resolve=table(LOCAL_NAMES))
        with pytest.raises(PolicyDenied, match=r"^localhost names this machine"):
            await check(parse_url("http://LocalHost./"), AllowList([]))


@pytest.mark.parametrize("to", [
    "http://127.0.0.1:{p}/secret", "http://localhost:{p}/secret", "http://0x7f000001:{p}/secret",
    "http://[::ffff:127.0.0.1]:{p}/secret", "http://evil.test:{p}/secret",
], ids=["literal", "localhost", "hex", "mapped", "rebinding_name"])
async def test_a_redirect_from_an_allowed_host_into_loopback_is_refused_at_the_second_hop(site: Site, to: str) -> None:
    start = f"http://allowed.test:{site.port}/redirect?to={_fill(site, to)}"
    with anyio.fail_after(5), pytest.raises(PolicyDenied):
        await fetch(policy("allowed.test"), "GET", start)
    assert site.paths == ["/redirect"], "the secret route is never hit"


@pytest.mark.parametrize("to", ["file:///etc/passwd", "gopher://127.0.0.1:{p}/_secret", "ftp://allowed.test/x",
                                "http://user:pw@allowed.test:{p}/secret"])
async def test_a_redirect_to_another_scheme_or_to_userinfo_is_refused(site: Site, to: str) -> None:
    with anyio.fail_after(5), pytest.raises(InvalidInput, match="redirected to a URL that is not fetched"):
        await fetch(policy("127.0.0.1", "allowed.test"), "GET", site.url(f"/redirect?to={_fill(site, to)}"))
    assert site.paths == ["/redirect"]


async def test_more_than_five_redirects_are_refused(site: Site) -> None:
    with anyio.fail_after(5), pytest.raises(InvalidInput, match="more than 5 redirects"):
        await fetch(policy("127.0.0.1"), "GET", site.url("/loop"))
    assert site.paths == ["/loop"] * 6, "the first request and five redirects, then it stops"


async def test_an_oversized_body_is_cut_at_max_bytes(site: Site) -> None:
    with anyio.fail_after(10):
        got = await fetch(policy("127.0.0.1", max_bytes=4096), "GET", site.url("/big?n=3000000"))
    assert got.truncated and len(got.body) == 4096


async def test_a_slow_response_times_out(site: Site) -> None:
    with anyio.fail_after(5), pytest.raises(Unavailable, match=r"did not answer within 0\.2 s"):
        await fetch(policy("127.0.0.1", timeout=0.2), "GET", site.url("/slow"))


@pytest.mark.parametrize(("allow", "url"), [
    (["127.0.0.1"], "http://127.0.0.1:{p}/json"),
    (["127.0.0.0/8"], "http://127.0.0.1:{p}/json"),
    (["127.0.0.0/8"], "http://2130706433:{p}/json"),
    (["127.0.0.0/8"], "http://[::ffff:127.0.0.1]:{p}/json"),
    (["allowed.test"], "http://allowed.test:{p}/json"),
    (["ALLOWED.TEST."], "http://Allowed.Test:{p}/json"),
    (["localhost"], "http://LOCALHOST.:{p}/json"),
    (["::1"], "http://[::1]:{p6}/json"),
], ids=["ip", "cidr", "cidr_decimal_spelling", "cidr_mapped", "hostname", "hostname_any_case", "localhost", "ipv6"])
async def test_the_allow_list_lets_the_local_site_through(site: Site, allow: list[str], url: str) -> None:
    if "{p6}" in url and site.port6 is None:  # no ::1 here: past the guard, the connection itself is refused
        with anyio.fail_after(5), pytest.raises(Unavailable):
            await fetch(policy(*allow), "GET", _fill(site, url))
        return
    with anyio.fail_after(5):
        got = await fetch(policy(*allow), "GET", _fill(site, url))
    assert got.status == 200 and got.body == b'{"hello": "world", "n": 1}'
    assert site.paths == ["/json"]


async def test_an_allowed_network_does_not_open_other_internal_addresses(site: Site) -> None:
    for url in (site.url("/secret"), f"http://evil.test:{site.port}/secret"):
        with anyio.fail_after(5), pytest.raises(PolicyDenied):
            await fetch(policy("10.0.0.0/8", "192.168.0.0/16", "allowed.test"), "GET", url)
    assert site.hits == []


async def test_an_approval_lets_exactly_the_refused_call_through(site: Site) -> None:
    with anyio.fail_after(5):
        with pytest.raises(PolicyDenied):
            await fetch(policy(), "GET", site.url("/json"))
        got = await fetch(policy(), "GET", site.url("/json"), approved=True)
        assert got.status == 200 and site.paths == ["/json"]
        same_origin = await fetch(policy(), "GET", site.url("/redirect?to=/json"), approved=True)
        assert same_origin.status == 200
        with pytest.raises(PolicyDenied, match="localhost"):
            await fetch(policy(), "GET", site.url(f"/redirect?to=http://localhost:{site.port}/secret"), approved=True)
    assert "/secret" not in site.paths, "an approval covers its own origin, not where a redirect leads"


async def test_any_internal_address_among_a_names_addresses_refuses_it() -> None:
    # Check level only: no connection is opened, so the public address is never contacted.
    with anyio.fail_after(5):
        await _check_mixed_names()


async def _check_mixed_names() -> None:
    resolve = table({"both.test": ["8.8.8.8", "127.0.0.1"], "v6.test": ["2606:4700::1111", "::1"],
                     "meta.test": ["169.254.169.254"], "public.test": ["8.8.8.8", "2606:4700::1111"]})
    for name, address in [("both.test", "127.0.0.1"), ("v6.test", "::1"), ("meta.test", "169.254.169.254")]:
        with pytest.raises(PolicyDenied, match=f"resolves to {address}"):
            await check(parse_url(f"http://{name}/"), AllowList([]), resolve=resolve)
    addresses = await check(parse_url("http://public.test/"), AllowList([]), resolve=resolve)
    assert [str(a) for a in addresses] == ["8.8.8.8", "2606:4700::1111"]
    assert [str(a) for a in await check(parse_url("http://both.test/"), AllowList([]), resolve=resolve,
                                        approved=True)] == ["8.8.8.8", "127.0.0.1"]


INTERNAL = {
    "10.0.0.1": "a private address", "172.16.0.1": "a private address", "192.168.1.1": "a private address",
    "100.64.0.1": "carrier-grade NAT", "169.254.169.254": "cloud metadata", "169.254.1.1": "link-local",
    "fe80::1": "link-local", "fc00::1": "unique local", "fd12::1": "unique local", "fec0::1": "site-local",
    "224.0.0.1": "multicast", "ff02::1": "multicast", "0.0.0.0": "unspecified", "::": "unspecified",
    "0.1.2.3": "this network", "127.8.9.10": "loopback", "::1": "loopback", "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved", "192.0.2.1": "non-global", "2001:db8::1": "non-global", "198.18.0.1": "non-global",
    "::ffff:10.0.0.1": "IPv4-mapped address of 10.0.0.1, a private",
    "::ffff:169.254.169.254": "IPv4-mapped address of 169.254.169.254, the cloud metadata",
    "::ffff:127.0.0.1": "IPv4-mapped address of 127.0.0.1, a loopback", "::127.0.0.1": "IPv4-compatible",
    "::8.8.8.8": "deprecated IPv4-compatible", "64:ff9b::a9fe:a9fe": "NAT64 address of 169.254.169.254",
    "64:ff9b:1::1": "local-use NAT64", "2002:7f00:1::1": "6to4 address of 127.0.0.1",
    "2002:c0a8:101::1": "6to4 address of 192.168.1.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "reason"), INTERNAL.items(), ids=INTERNAL.keys())
def test_internal_addresses_are_classified_with_their_reason(address: str, reason: str) -> None:
    found = classify(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("url", "host"), [
    ("http://2130706433/", "127.0.0.1"), ("http://0x7f000001/", "127.0.0.1"), ("http://0177.0.0.1/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"), ("http://0x7f.1/", "127.0.0.1"), ("http://10.1/", "10.0.0.1"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"), ("http://2852039166/", "169.254.169.254"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"), ("http://[0:0::1]/", "::1"), ("http://LOCALHOST./", "localhost"),
    ("http://Example.COM./a", "example.com"), ("http://b\u00fccher.example/", "xn--bcher-kva.example"),
    ("http://\u2460\u2461\u2466.0.0.1/", "127.0.0.1"),
])
def test_hosts_are_normalised_in_every_spelling(url: str, host: str) -> None:
    assert parse_url(url).host == host


async def test_the_ipv6_loopback_is_refused_at_check_level_too() -> None:
    with anyio.fail_after(5), pytest.raises(PolicyDenied, match="loopback"):
        await check(parse_url("http://[::1]:8080/"), AllowList([]))

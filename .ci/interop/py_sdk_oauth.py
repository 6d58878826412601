"""The MCP authorization flow with the official Python SDK (`mcp` on PyPI) against the test
identity provider (oidc-provider, nessus-mcp/tests/idp) and a nessus-mcp in OAuth mode.

connect (401 -> protected-resource metadata -> provider metadata -> authorization code +
PKCE with the resource indicator -> token) -> tools/list (what the granted scopes allow) ->
list_pools -> run_untrusted_scan -> get_scan_status -> run_authenticated_scan (403
insufficient_scope -> the SDK signs in again with the wider scope -> the call succeeds).
The provider's sign-in step approves at once; `Browser` follows its redirects the way a
browser would and hands the SDK the code from the redirect to the client.
Exits non-zero on the first failure, with one `FAIL:` line saying what broke.

    python py_sdk_oauth.py --url URL --issuer ISSUER --targets "a, b"
"""

import argparse
import asyncio
import os
import sys
import time
import urllib.parse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://localhost:3030/callback"  # registered for the public client `app`
AUTHENTICATED = "nessus:scan:authenticated"


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)  # not sys.exit: inside the SDK's task groups that prints an exception group


class Memory(TokenStorage):
    """The pre-registered public client `app` and the tokens the SDK obtains."""

    def __init__(self, issuer: str) -> None:
        self.tokens: OAuthToken | None = None
        self.client = OAuthClientInformationFull(
            client_id="app",
            redirect_uris=[REDIRECT],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            issuer=issuer,
        )

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Follows an authorization URL to the redirect back to the client."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None
        self.scopes: list[str] = []

    async def redirect(self, url: str) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        self.scopes.append(query.get("scope", [""])[0])
        if query.get("code_challenge_method") != ["S256"]:
            fail(f"the SDK did not use PKCE S256: {url}")
        if not query.get("resource"):
            fail(f"the SDK sent no resource indicator: {url}")
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            for _ in range(10):
                r = await http.get(url)
                location = r.headers.get("location")
                if not location:
                    fail(f"the provider answered {r.status_code} without a redirect at {url}")
                url = urllib.parse.urljoin(url, location)
                if url.startswith(REDIRECT):
                    q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
                    if "code" not in q:
                        fail(f"the provider refused: {url}")
                    self.result = AuthorizationCodeResult(
                        code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0]
                    )
                    return
        fail("too many redirects at the provider")

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            fail("no authorization code came back")
        result, self.result = self.result, None
        return result


def structured(name: str, result) -> dict:
    if result.is_error or not isinstance(result.structured_content, dict):
        fail(f"{name}: {result.content}")
    if "error" in result.structured_content:
        fail(f"{name}: business error: {result.structured_content}")
    return result.structured_content


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--targets", required=True)
    args = p.parse_args()
    target = args.targets.split(",")[0].strip()
    browser = Browser()
    auth = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="nessus-mcp interop",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=Memory(args.issuer),
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    http = httpx2.AsyncClient(auth=auth, timeout=30)
    async with http, Client(streamable_http_client(args.url, http_client=http)) as client:
        print(f"connected with an OAuth token, protocol {client.protocol_version}; asked for {browser.scopes}")
        first = set(browser.scopes[0].split()) if browser.scopes else set()
        if not {"nessus:read", "nessus:scan"} <= first or AUTHENTICATED in first:
            fail(f"first sign-in asked for {browser.scopes}, not the scopes of the 401 challenge")
        tools = {t.name for t in (await client.list_tools()).tools}
        if "run_untrusted_scan" not in tools or "run_authenticated_scan" in tools:
            fail(f"tools/list does not follow the scopes: {sorted(tools)}")
        print(f"{len(tools)} tools for nessus:read nessus:scan")
        pools = structured("list_pools", await client.call_tool("list_pools", {}))
        print(f"pools: {pools['pools']}")
        sub = structured("run_untrusted_scan", await client.call_tool(
            "run_untrusted_scan", {"targets": target, "name": "oauth flow", "idempotency_key": f"oauth-{time.time()}"}
        ))
        st = structured("get_scan_status", await client.call_tool("get_scan_status", {"task_id": sub["task_id"]}))
        print(f"submitted {sub['task_id']}: {st['status']}")
        # Step-up: the server answers 403 insufficient_scope; the SDK signs in again.
        auth_sub = structured("run_authenticated_scan", await client.call_tool(
            "run_authenticated_scan",
            {"targets": target, "name": "oauth step-up", "scan_type": "authenticated",
             "ssh_username": "scanner", "ssh_password": "interop-only"},
        ))
        if len(browser.scopes) != 2 or AUTHENTICATED not in browser.scopes[1].split():
            fail(f"no step-up sign-in for {AUTHENTICATED}: {browser.scopes}")
        print(f"step-up to {browser.scopes[1]!r}; authenticated scan {auth_sub['task_id']}")
    print("PASS")


if __name__ == "__main__":
    asyncio.run(main())

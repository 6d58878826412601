//! Issue 16: the OAuth resource server against a real identity provider: oidc-provider
//! (`tests/idp/idp.mjs`, started on loopback by each test), tokens from real grants
//! (client credentials; authorization code with PKCE) over HTTP.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use base64::Engine;
use nessus_mcp::OAuthVerifier;
use nessus_queue::testkit::{ChildGuard, free_port};
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::{Harness, TARGET, TOKEN, call_ok, wait_status};

/// Every client's secret at the test provider.
const CLIENT_SECRET: &str = "test-client-secret-0123456789";
/// The shortest time between two key fetches in these tests.
const REFRESH: Duration = Duration::from_secs(3);
/// How old cached keys may grow in these tests.
const MAX_KEY_AGE: Duration = Duration::from_secs(8);
const READ: &str = "nessus:read";
const SCAN: &str = "nessus:scan";
const AUTHENTICATED: &str = "nessus:scan:authenticated";
const ADMIN: &str = "nessus:admin";

/// The test identity provider, killed on drop.
struct Idp {
    process: ChildGuard,
    url: String,
    http: reqwest::Client,
}

impl Idp {
    async fn start(audience: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test identity provider is not installed: run `npm ci --prefix nessus-mcp/tests/idp` \
             (Node.js 20 or later; .ci/run does it)"
        );
        let mut child = Command::new("node")
            .arg("idp.mjs")
            .arg(audience)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (Node.js 20 or later) must be on PATH for the OAuth tests");
        let stdout = child.child_stdout();
        let mut process = ChildGuard::new(child);
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            lines.find_map(|l| l.ok()?.strip_prefix("IDP_URL ").map(str::to_owned))
        });
        let url = tokio::time::timeout(Duration::from_secs(30), url)
            .await
            .expect("the identity provider started within 30 s")
            .expect("reader")
            .unwrap_or_else(|| {
                process.kill();
                panic!("the identity provider exited before listening")
            });
        Self {
            process,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// A client-credentials token for `resource`.
    async fn token(&self, client: &str, scope: &str, resource: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(client, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .expect("token request");
        let body: Value = resp.json().await.expect("token answer");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned()
    }

    /// The authorization code grant with PKCE (S256), signed in as `login_hint`.
    async fn code_flow(&self, login_hint: &str, scope: &str, resource: &str) -> String {
        const REDIRECT: &str = "http://127.0.0.1:9/callback";
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::custom(|a| {
                if a.url().as_str().starts_with(REDIRECT) {
                    a.stop()
                } else if a.previous().len() > 10 {
                    a.error("too many redirects")
                } else {
                    a.follow()
                }
            }))
            .build()
            .expect("browser");
        let resp = browser
            .get(format!("{}/auth", self.url))
            .query(&[
                ("client_id", "app"),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", scope),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", resource),
                ("state", "state-1"),
                ("login_hint", login_hint),
            ])
            .send()
            .await
            .expect("authorization request");
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no redirect to the client: {}", resp.status()))
            .to_owned();
        let code = reqwest::Url::parse(&location)
            .expect("redirect URL")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"));
        let body: Value = self
            .http
            .post(format!("{}/token", self.url))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "app"),
                ("code_verifier", &verifier),
                ("resource", resource),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token answer");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned()
    }

    /// A token the provider's test route forged (`kind` as in idp.mjs).
    async fn forge(&self, kind: &str, query: &[(&str, &str)]) -> String {
        self.http
            .get(format!("{}/__test/forge/{kind}", self.url))
            .query(query)
            .send()
            .await
            .expect("forge")
            .text()
            .await
            .expect("forged token")
    }

    async fn rotate(&self) {
        let r = self
            .http
            .post(format!("{}/__test/rotate", self.url))
            .send()
            .await
            .expect("rotate");
        assert!(r.status().is_success());
    }

    async fn jwks_fetches(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/__test/stats", self.url))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats body");
        v["jwks_fetches"].as_u64().expect("count")
    }
}

trait ChildStdout {
    fn child_stdout(&mut self) -> std::process::ChildStdout;
}

impl ChildStdout for std::process::Child {
    fn child_stdout(&mut self) -> std::process::ChildStdout {
        self.stdout.take().expect("piped stdout")
    }
}

/// A server accepting the static test tokens and the provider's tokens for `audience`.
struct Setup {
    idp: Idp,
    h: Harness,
    audience: String,
    base: String,
}

impl Setup {
    async fn start(workers: usize) -> Self {
        Self::start_with(workers, "").await
    }

    /// `oauth_extra`: more `auth.oauth` lines, each indented by four spaces.
    async fn start_with(workers: usize, oauth_extra: &str) -> Self {
        let port = free_port().expect("free port");
        let base = format!("http://127.0.0.1:{port}");
        let audience = format!("{base}/mcp");
        let idp = Idp::start(&audience).await;
        let auth = format!(
            "auth:\n  oauth:\n    issuer: \"{}\"\n    audience: \"{audience}\"\n    introspection:\n      \
             client_id: resource-server\n      client_secret: {CLIENT_SECRET}\n{oauth_extra}",
            idp.url
        );
        let h = Harness::start_custom(
            workers,
            Duration::from_millis(300),
            None,
            "",
            &auth,
            |config, opts| {
                opts.bind = format!("127.0.0.1:{port}").parse().expect("addr");
                let settings = config.auth().oauth().expect("oauth configured").clone();
                opts.oauth = Some(Arc::new(
                    OAuthVerifier::new(settings)
                        .with_refresh_interval(REFRESH)
                        .with_max_key_age(MAX_KEY_AGE),
                ));
            },
        )
        .await;
        Self {
            idp,
            h,
            audience,
            base,
        }
    }

    /// `tools/call` over plain HTTP: the status, the `WWW-Authenticate` value and the body.
    async fn call_raw(
        &self,
        token: Option<&str>,
        tool: &str,
        args: Value,
    ) -> (u16, String, String) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": args}});
        self.post(token, body).await
    }

    async fn post(&self, token: Option<&str>, body: Value) -> (u16, String, String) {
        let mut req = reqwest::Client::new()
            .post(&self.audience)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, challenge, resp.text().await.unwrap_or_default())
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }
}

/// The tool names `tools/list` shows a token.
async fn tool_names(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_full_session_with_tokens_from_real_grants() {
    let s = Setup::start(1).await;
    // Client credentials: the principal is the client (its `sub`).
    let token = s
        .idp
        .token("scanner", &format!("{READ} {SCAN}"), &s.audience)
        .await;
    let client = s.h.client(&token).await;
    let names = tool_names(&client).await;
    assert!(
        names.contains(&"run_untrusted_scan".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"run_authenticated_scan".to_owned()),
        "{names:?}"
    );
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "oauth-scan"}),
    )
    .await;
    let task_id = sub["task_id"].as_str().expect("task_id").to_owned();
    let done = wait_status(&client, &task_id, &["completed"]).await;
    assert_eq!(done["status"], "completed");
    let results = crate::support::call(
        &client,
        "get_scan_results",
        json!({"task_id": task_id, "schema_profile": "minimal"}),
    )
    .await;
    assert_ne!(
        results.is_error,
        Some(true),
        "results: {:?}",
        results.content
    );
    let listed = call_ok(&client, "list_tasks", json!({})).await;
    assert_eq!(listed["tasks"][0]["task_id"], task_id.as_str(), "{listed}");

    // Authorization code + PKCE: the principal is the signed-in user.
    let user_token = s
        .idp
        .code_flow("carol", &format!("openid {READ} {SCAN}"), &s.audience)
        .await;
    let carol = s.h.client(&user_token).await;
    let mine = call_ok(
        &carol,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "carol-scan", "idempotency_key": "k1"}),
    )
    .await;
    let listed = call_ok(&carol, "list_tasks", json!({})).await;
    let tasks = listed["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "carol sees only her own task: {listed}");
    assert_eq!(tasks[0]["task_id"], mine["task_id"]);
    // Idempotency is scoped by that principal: the same key from another one is a new task.
    let again = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "carol-scan", "idempotency_key": "k1"}),
    )
    .await;
    assert_ne!(again["task_id"], mine["task_id"]);

    // Static tokens keep working beside OAuth.
    let alice = s.h.client(TOKEN).await;
    // The read+scan token misses run_authenticated_scan and the admin-only review_scan.
    assert!(!names.contains(&"review_scan".to_owned()), "{names:?}");
    assert_eq!(tool_names(&alice).await.len(), names.len() + 2);
    call_ok(&alice, "list_pools", json!({})).await;
    s.h.stop().await;
}

/// What one scope set may call: `None` = allowed, `Some(scope)` = 403 naming it.
#[tokio::test]
async fn scopes_decide_each_tool() {
    let s = Setup::start(0).await;
    let untrusted = json!({"targets": TARGET, "name": "n"});
    let authenticated = json!({"targets": TARGET, "name": "n", "scan_type": "authenticated",
                               "ssh_username": "u", "ssh_password": "p"});
    let task = json!({"task_id": "ness_un_20260101_000000_00000000000000000000000000000000"});
    let import = json!({"content": "<NessusClientData_v2/>"});
    let granted_by = |scopes: &[&str]| scopes.join(" ");
    let cases: Vec<(&[&str], &str, Value, Option<&str>)> = vec![
        (&[READ], "list_pools", json!({}), None),
        (&[READ], "list_scanners", json!({}), None),
        (&[READ], "get_pool_status", json!({}), None),
        (&[READ], "get_queue_status", json!({}), None),
        (&[READ], "list_tasks", json!({}), None),
        (&[READ], "get_scan_status", task.clone(), None),
        (&[READ], "run_untrusted_scan", untrusted.clone(), Some(SCAN)),
        (
            &[READ],
            "run_authenticated_scan",
            authenticated.clone(),
            Some(AUTHENTICATED),
        ),
        (&[READ], "cancel_scan", task.clone(), Some(SCAN)),
        (&[READ], "import_scan", import.clone(), Some(SCAN)),
        (&[SCAN], "run_untrusted_scan", untrusted.clone(), None),
        (&[SCAN], "list_tasks", json!({}), Some(READ)),
        (&[SCAN], "get_scan_results", task.clone(), Some(READ)),
        (&[SCAN], "list_pools", json!({}), Some(READ)),
        (
            &[SCAN],
            "run_authenticated_scan",
            authenticated.clone(),
            Some(AUTHENTICATED),
        ),
        (
            &[AUTHENTICATED],
            "run_authenticated_scan",
            authenticated.clone(),
            None,
        ),
        (
            &[AUTHENTICATED],
            "run_untrusted_scan",
            untrusted.clone(),
            Some(SCAN),
        ),
        (&[AUTHENTICATED], "cancel_scan", task.clone(), None),
        (&[ADMIN], "list_tasks", json!({}), Some(READ)),
        (&[READ, ADMIN], "list_tasks", json!({}), None),
        (
            &[READ],
            "triage_finding",
            json!({"fingerprint": "0".repeat(64), "mark": "clear"}),
            Some(SCAN),
        ),
        (
            &[SCAN],
            "findings_changes",
            json!({"targets": ["10.0.0.0/8"], "since": "2026-01-01"}),
            Some(READ),
        ),
        (
            &[READ],
            "findings_changes",
            json!({"targets": ["10.0.0.0/8"], "since": "2026-01-01"}),
            None,
        ),
    ];
    for (scopes, tool, args, refused) in cases {
        // Tokens signed by the provider's real key with exactly these scopes.
        let token = s
            .idp
            .forge("signed", &[("scope", &granted_by(scopes)), ("sub", "dave")])
            .await;
        let (status, challenge, body) = s.call_raw(Some(&token), tool, args).await;
        let case = format!("{scopes:?} {tool}: {status} {challenge} {body}");
        match refused {
            None => {
                assert_eq!(status, 200, "{case}");
                assert!(!body.contains("insufficient_scope"), "{case}");
            }
            Some(needed) => {
                assert_eq!(status, 403, "{case}");
                let mut want: Vec<&str> = scopes.to_vec();
                want.push(needed);
                let order = [READ, SCAN, AUTHENTICATED, ADMIN];
                want.sort_by_key(|w| order.iter().position(|o| o == w));
                want.dedup();
                assert!(
                    challenge.starts_with("Bearer error=\"insufficient_scope\""),
                    "{case}"
                );
                assert!(
                    challenge.contains(&format!("scope=\"{}\"", want.join(" "))),
                    "{case}"
                );
                assert!(
                    challenge.contains(&format!("resource_metadata=\"{}\"", s.metadata_url())),
                    "{case}"
                );
                assert!(body.contains("insufficient_scope"), "{case}");
            }
        }
    }

    // Every path, not only tools: a task resource needs read too.
    let scan_only = s.idp.forge("signed", &[("scope", SCAN)]).await;
    let read_task = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read",
        "params": {"uri": "nessus://tasks/ness_un_20260101_000000_00000000000000000000000000000000"}});
    let (status, challenge, body) = s.post(Some(&scan_only), read_task).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.contains(&format!("scope=\"{READ} {SCAN}\"")),
        "{challenge}"
    );

    // The tool list hides what a token cannot call.
    for (scopes, hidden, shown) in [
        (
            &[READ][..],
            &[
                "run_untrusted_scan",
                "run_authenticated_scan",
                "cancel_scan",
                "import_scan",
            ][..],
            &["list_tasks", "get_scan_results"][..],
        ),
        (
            &[SCAN],
            &["list_tasks", "run_authenticated_scan"],
            &["run_untrusted_scan", "cancel_scan", "import_scan"],
        ),
    ] {
        let token = s.idp.forge("signed", &[("scope", &scopes.join(" "))]).await;
        let names = tool_names(&s.h.client(&token).await).await;
        for h in hidden {
            assert!(!names.iter().any(|n| n == h), "{scopes:?} sees {h}");
        }
        for w in shown {
            assert!(names.iter().any(|n| n == w), "{scopes:?} misses {w}");
        }
    }

    // Only the admin scope makes an admin: it sees everyone's tasks.
    let dave = s
        .idp
        .forge("signed", &[("scope", SCAN), ("sub", "dave")])
        .await;
    let (status, _, body) = s
        .call_raw(Some(&dave), "run_untrusted_scan", untrusted)
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON-RPC answer");
    let daves = answer["result"]["structuredContent"]["task_id"].clone();
    assert!(daves.is_string(), "{answer}");
    let admin = s
        .idp
        .token("admin", &format!("{READ} {ADMIN}"), &s.audience)
        .await;
    let listed = call_ok(&s.h.client(&admin).await, "list_tasks", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["task_id"] == daves)),
        "{listed}"
    );
    let reader = s.idp.token("reader", READ, &s.audience).await;
    let listed = call_ok(&s.h.client(&reader).await, "list_tasks", json!({})).await;
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    s.h.stop().await;
}

#[tokio::test]
async fn refused_tokens_get_a_401_challenge_and_the_metadata_document() {
    let s = Setup::start(0).await;
    let metadata = s.metadata_url();
    let (status, challenge, _) = s.call_raw(None, "list_pools", json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata}\", scope=\"{READ} {SCAN}\"")
    );

    let other_audience = s
        .idp
        .token("scanner", READ, "http://127.0.0.1:1/other/mcp")
        .await;
    let opaque = s.idp.token("opaque", READ, &s.audience).await;
    let opaque_other = s
        .idp
        .token("opaque", READ, "http://127.0.0.1:1/other/mcp")
        .await;
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "garbage",
            "not-a-token-at-all".to_owned(),
            Some("the access token is not"),
        ),
        ("wrong audience", other_audience, Some("another audience")),
        (
            "wrong issuer",
            s.idp.forge("wrong-iss", &[]).await,
            Some("another issuer"),
        ),
        (
            "expired",
            s.idp.forge("expired", &[]).await,
            Some("expired"),
        ),
        (
            "within the leeway",
            s.idp.forge("in-leeway", &[]).await,
            None,
        ),
        (
            "not yet valid",
            s.idp.forge("not-yet", &[]).await,
            Some("not valid yet"),
        ),
        (
            "alg none",
            s.idp.forge("none", &[]).await,
            Some("header is not valid"),
        ),
        (
            "HS256 keyed with the public key",
            s.idp.forge("hs256", &[]).await,
            Some("algorithm is not accepted"),
        ),
        (
            "a key the provider does not publish",
            s.idp.forge("unknown-kid", &[]).await,
            Some("does not publish"),
        ),
        (
            "for another audience",
            s.idp
                .forge("signed", &[("aud", "http://127.0.0.1:1/mcp")])
                .await,
            Some("another audience"),
        ),
        ("opaque, introspected", opaque, None),
        (
            "opaque, another audience",
            opaque_other,
            Some("another audience"),
        ),
    ];
    for (what, token, refused) in cases {
        let (status, challenge, body) = s.call_raw(Some(&token), "list_pools", json!({})).await;
        assert!(
            !body.contains(&token) && !challenge.contains(&token),
            "{what}: the token echoed"
        );
        match refused {
            None => assert_eq!(status, 200, "{what}: {challenge} {body}"),
            Some(why) => {
                assert_eq!(status, 401, "{what}: {body}");
                assert!(
                    challenge.starts_with("Bearer error=\"invalid_token\""),
                    "{what}: {challenge}"
                );
                assert!(challenge.contains(why), "{what}: {challenge}");
                assert!(
                    challenge.contains(&format!("resource_metadata=\"{metadata}\"")),
                    "{what}"
                );
            }
        }
    }

    // RFC 9728: at the path-suffixed address and at the root, without a token.
    for url in [
        metadata.clone(),
        format!("{}/.well-known/oauth-protected-resource", s.base),
    ] {
        let doc: Value = reqwest::get(&url)
            .await
            .expect("metadata")
            .json()
            .await
            .expect("json");
        assert_eq!(doc["resource"], s.audience.as_str(), "{url}");
        assert_eq!(doc["authorization_servers"], json!([s.idp.url]), "{url}");
        assert_eq!(
            doc["scopes_supported"],
            json!([READ, SCAN, AUTHENTICATED, ADMIN]),
            "{url}"
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{url}");
    }
    s.h.stop().await;
}

/// The status of a `list_pools` call with `token`.
async fn status_of(s: &Setup, token: &str) -> u16 {
    s.call_raw(Some(token), "list_pools", json!({})).await.0
}

#[tokio::test]
async fn key_rotation_and_an_unreachable_provider() {
    let mut s = Setup::start(0).await;
    let t1 = s.idp.token("reader", READ, &s.audience).await;
    assert_eq!(status_of(&s, &t1).await, 200, "RS256, first key");

    // A second key signs; the first is still published.
    s.idp.rotate().await;
    tokio::time::sleep(REFRESH).await;
    let t2 = s.idp.token("reader", READ, &s.audience).await;
    assert_eq!(
        status_of(&s, &t2).await,
        200,
        "ES256, second key (unknown kid: keys refreshed)"
    );
    assert_eq!(
        status_of(&s, &t1).await,
        200,
        "the first key still verifies"
    );

    // The first key is dropped; an EdDSA key signs.
    s.idp.rotate().await;
    tokio::time::sleep(REFRESH).await;
    let t3 = s.idp.token("reader", READ, &s.audience).await;
    assert_eq!(status_of(&s, &t3).await, 200, "EdDSA, third key");
    assert_eq!(
        status_of(&s, &t1).await,
        401,
        "the dropped key no longer verifies"
    );
    assert_eq!(status_of(&s, &t2).await, 200);

    // Unknown kids refresh at most once per interval.
    tokio::time::sleep(REFRESH).await;
    let mut strangers = Vec::new();
    for _ in 0..5 {
        strangers.push(s.idp.forge("unknown-kid", &[]).await);
    }
    let before = s.idp.jwks_fetches().await;
    let statuses = futures::future::join_all(strangers.iter().map(|t| status_of(&s, t))).await;
    assert_eq!(statuses, [401; 5]);
    let fetched = s.idp.jwks_fetches().await - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 5 unknown kids");

    // Old keys are refetched without a new kid: once they age past MAX_KEY_AGE the next
    // token refetches them (one fetch) and still verifies.
    let before = s.idp.jwks_fetches().await;
    tokio::time::sleep(MAX_KEY_AGE).await;
    assert_eq!(status_of(&s, &t3).await, 200, "aged keys, refetched");
    assert_eq!(
        s.idp.jwks_fetches().await - before,
        1,
        "one refetch of aged keys"
    );

    // The provider goes away: cached keys keep working (also once they age), a new kid
    // fails closed.
    let stranger = s.idp.forge("unknown-kid", &[]).await;
    s.idp.process.kill();
    tokio::time::sleep(MAX_KEY_AGE).await;
    assert_eq!(status_of(&s, &t3).await, 200, "cached key, provider down");
    // That refetch failed; after the bound, a new kid makes another attempt, which fails too.
    tokio::time::sleep(REFRESH).await;
    let (status, challenge, _) = s.call_raw(Some(&stranger), "list_pools", json!({})).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("could not be fetched"), "{challenge}");
    assert_eq!(status_of(&s, &t2).await, 200);
    s.h.stop().await;
}

/// No access token, signature or client secret reaches a log line of the real binary at
/// `RUST_LOG=trace`: accepted JWT and opaque tokens, a refused one, and the introspection
/// client's secret.
#[tokio::test]
async fn no_token_or_client_secret_in_any_log_line_at_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().expect("port");
    let audience = format!("http://127.0.0.1:{port}/mcp");
    let idp = Idp::start(&audience).await;
    let config = crate::support::write_config(dir.path(), "http://127.0.0.1:9");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "auth:\n  oauth:\n    issuer: \"{}\"\n    audience: \"{audience}\"\n    introspection:\n      \
         client_id: resource-server\n      client_secret: {CLIENT_SECRET}\n",
        idp.url
    ));
    std::fs::write(&config, text).expect("config");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut server = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_nessus-mcp"))
            .arg("--config")
            .arg(&config)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--workers", "0"])
            .env("RUST_LOG", "trace")
            .env_remove("NESSUS_MCP_TOKENS")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn nessus-mcp"),
    );
    crate::logs::wait_listening(port).await;
    let jwt = idp
        .token("scanner", &format!("{READ} {SCAN}"), &audience)
        .await;
    let opaque = idp.token("opaque", READ, &audience).await;
    let refused = idp
        .token("scanner", READ, "http://127.0.0.1:1/other/mcp")
        .await;
    let cfg =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            audience.clone(),
        )
        .auth_header(jwt.clone());
    let client = rmcp::ServiceExt::serve(
        (),
        rmcp::transport::StreamableHttpClientTransport::from_config(cfg),
    )
    .await
    .expect("client connects");
    call_ok(&client, "list_pools", json!({})).await;
    call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "canary"}),
    )
    .await;
    let _ = client.cancel().await;
    let http = reqwest::Client::new();
    for (token, want) in [(&opaque, 200), (&refused, 401)] {
        let status = http
            .post(&audience)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_pools","arguments":{}}}"#)
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(status.as_u16(), want);
    }
    server.kill();
    let text = std::fs::read_to_string(&log_path).expect("read log");
    assert!(
        text.contains("fetched the OAuth signing keys")
            && text.contains("refused an OAuth access token"),
        "the log lacks the OAuth lines: {} lines",
        text.lines().count()
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    let canaries = [
        jwt.clone(),
        signature(&jwt),
        opaque.clone(),
        refused.clone(),
        signature(&refused),
        CLIENT_SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("resource-server:{CLIENT_SECRET}")),
    ];
    let leaks: Vec<String> = canaries
        .iter()
        .enumerate()
        .filter(|(_, c)| text.contains(c.as_str()))
        .map(|(i, _)| format!("canary #{i}"))
        .collect();
    assert!(leaks.is_empty(), "secrets in the log: {leaks:?}");
}

/// The principal is the configured claim: two tokens with other subjects but the same
/// `email` are one principal (they see the same tasks); a token without it is refused.
#[tokio::test]
async fn the_principal_is_the_configured_claim() {
    let s = Setup::start_with(0, "    principal_claim: email\n").await;
    let scopes = format!("{READ} {SCAN}");
    let erin = |sub: &'static str| {
        let s = &s;
        let scopes = scopes.clone();
        async move {
            s.idp
                .forge(
                    "signed",
                    &[
                        ("scope", &scopes),
                        ("sub", sub),
                        ("email", "erin@example.test"),
                    ],
                )
                .await
        }
    };
    let first = s.h.client(&erin("u-1").await).await;
    let sub = call_ok(
        &first,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "erin"}),
    )
    .await;
    let second = s.h.client(&erin("u-2").await).await;
    let listed = call_ok(&second, "list_tasks", json!({})).await;
    assert_eq!(listed["tasks"][0]["task_id"], sub["task_id"], "{listed}");
    let other = s
        .idp
        .forge(
            "signed",
            &[
                ("scope", &scopes),
                ("sub", "u-3"),
                ("email", "frank@example.test"),
            ],
        )
        .await;
    let listed = call_ok(&s.h.client(&other).await, "list_tasks", json!({})).await;
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let no_email = s
        .idp
        .forge("signed", &[("scope", &scopes), ("sub", "u-4")])
        .await;
    let (status, challenge, _) = s.call_raw(Some(&no_email), "list_pools", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("lacks the claim that names the principal"),
        "{challenge}"
    );
    s.h.stop().await;
}

//! `scanners.yaml` loading: the predecessor's files, the extensions, errors with
//! locations, interpolation, and secret masking.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use nessus_core::{
    AuthMode, BackendConfig, Config, EscalationMethod, InstanceAuth, ProfileAuth, SecretOrigin,
};
use secrecy::ExposeSecret;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).join(name)
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Environment variables as pairs.
type Env<'a> = &'a [(&'a str, &'a str)];

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses `yaml` with `env` and expects an error at `line:column` whose message
/// contains `needle`.
fn check_error(yaml: &str, env: &[(&str, &str)], line: u64, column: u64, needle: &str) {
    let err = Config::from_yaml_with_env(yaml, &env_of(env)).expect_err("config should be refused");
    match &err {
        nessus_core::Error::Config {
            line: l,
            column: c,
            message,
            ..
        } => {
            assert_eq!(
                (*l, *c),
                (Some(line), Some(column)),
                "location of {message:?}"
            );
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("<config>:{line}:{column}: ")),
        "{shown}"
    );
}

#[test]
fn predecessor_example_loads_unchanged() {
    let config = Config::load_with_env(testdata("predecessor-scanners.yaml"), &no_env).unwrap();
    assert_eq!(config.pool_names(), vec!["nessus"]);
    let pool = config.pool("nessus").unwrap();
    assert_eq!(pool.scanner_type(), "nessus");
    assert_eq!(pool.capacity(), 4);
    let ids: Vec<&str> = pool.instances().iter().map(|i| i.instance_id()).collect();
    assert_eq!(ids, ["scanner1", "scanner2"]);

    let s1 = config.instance("nessus", "scanner1").unwrap();
    assert_eq!(s1.key(), "nessus:scanner1");
    assert_eq!(s1.name(), "Nessus Scanner 1");
    assert_eq!(s1.url(), "https://172.30.0.3:8834");
    assert_eq!(s1.display_url(), "${NESSUS_URL:-https://172.30.0.3:8834}");
    assert_eq!(s1.max_concurrent_scans(), 2);
    assert_eq!(s1.timeout(), Duration::from_secs(30));
    assert!(!s1.tls().insecure, "TLS verification is on by default");
    match s1.auth() {
        InstanceAuth::Session {
            mode,
            username,
            password,
        } => {
            assert_eq!(*mode, AuthMode::Password);
            assert_eq!(username, "nessus");
            assert_eq!(password.secret().expose_secret(), "nessus");
            assert_eq!(
                password.origin(),
                &SecretOrigin::Literal,
                "the default in the file"
            );
        }
        other => panic!("unexpected auth {other:?}"),
    }
    // No policy in the old format: the pool refuses every target, and says so.
    assert!(pool.policy().denies_everything());
    assert!(pool.check_targets("10.0.0.1").is_err());
    let warnings = config.warnings().join("\n");
    assert!(
        warnings.contains("every scan target is refused"),
        "{warnings}"
    );
    assert!(
        warnings.contains("password uses the default written in the file because NESSUS_PASSWORD"),
        "{warnings}"
    );
    assert_eq!(config.server().default_pool(), "nessus");
    assert!(matches!(
        config.queue().backend(),
        BackendConfig::Sqlite { .. }
    ));
}

#[test]
fn predecessor_example_takes_env_values() {
    let env = env_of(&[
        ("NESSUS_URL", "https://nessus-a.lab:8834/"),
        ("NESSUS_USERNAME", "scan-user"),
        ("NESSUS_PASSWORD", "p@ss$word"),
    ]);
    let config = Config::load_with_env(testdata("predecessor-scanners.yaml"), &env).unwrap();
    let s1 = config.instance("nessus", "scanner1").unwrap();
    assert_eq!(
        s1.url(),
        "https://nessus-a.lab:8834",
        "trailing slash stripped"
    );
    assert_eq!(s1.display_url(), "${NESSUS_URL:-https://172.30.0.3:8834}");
    let InstanceAuth::Session {
        username, password, ..
    } = s1.auth()
    else {
        panic!()
    };
    assert_eq!(username, "scan-user");
    assert_eq!(password.secret().expose_secret(), "p@ss$word");
    assert_eq!(
        password.origin(),
        &SecretOrigin::Env(vec!["NESSUS_PASSWORD".into()])
    );
    assert_eq!(
        config.instance("nessus", "scanner2").unwrap().url(),
        "https://172.30.0.4:8834"
    );
}

#[test]
fn planning_example_with_unset_variables_loads_with_warnings() {
    let config = Config::load_with_env(testdata("predecessor-planning.yaml"), &no_env).unwrap();
    let prod = config.instance("nessus", "prod").unwrap();
    assert_eq!(prod.max_concurrent_scans(), 10);
    let w = config.warnings().join("\n");
    assert!(w.contains("${NESSUS_USERNAME_1}, which is not set"), "{w}");
    assert!(w.contains("${NESSUS_PASSWORD_1}, which is not set"), "{w}");
}

#[test]
fn full_example_loads_every_extension() {
    let env = env_of(&[
        ("MCP_TOKEN", "mcp-token-from-env-0123456789"),
        ("LAB_SSH_PASSWORD", "CANARY-ssh-password"),
        ("LAB_SUDO_PASSWORD", "CANARY-sudo-password"),
        ("NESSUS_ACCESS_KEY", "CANARY-access-key"),
        ("NESSUS_SECRET_KEY", "CANARY-secret-key"),
        ("DMZ_PASSWORD", "CANARY-dmz"),
    ]);
    let config = Config::load_with_env(testdata("full-scanners.yaml"), &env).unwrap();
    assert_eq!(config.pool_names(), vec!["nessus", "nessus_dmz"]);

    let server = config.server();
    assert_eq!(
        server.data_dir(),
        std::path::Path::new("/var/lib/nessus-mcp")
    );
    assert_eq!(
        server.results_dir(),
        std::path::Path::new("/var/lib/nessus-mcp/results")
    );
    assert_eq!(server.default_scan_timeout(), Duration::from_secs(7200));
    assert_eq!(server.mcp_tokens().len(), 2);
    assert_eq!(
        server.mcp_tokens()[1].secret().expose_secret(),
        "mcp-token-from-file-0123456789"
    );

    let BackendConfig::Redis { url } = config.queue().backend() else {
        panic!("redis backend")
    };
    assert_eq!(
        url.secret().expose_secret(),
        "redis://:queue-pass@127.0.0.1:6390/0"
    );
    assert_eq!(config.queue().lease(), Duration::from_secs(30));
    assert_eq!(
        config.queue().completed_ttl(),
        Duration::from_secs(3 * 86_400)
    );
    assert_eq!(config.queue().max_queued_per_principal(), Some(250));

    let manager = config.instance("nessus", "manager").unwrap();
    assert_eq!(manager.auth().mode(), AuthMode::ApiKeys);
    assert_eq!(manager.url(), "https://nessus-manager.example.com:8834");
    assert!(
        manager
            .tls()
            .ca_file
            .as_ref()
            .unwrap()
            .ends_with("secrets/nessus-ca.pem")
    );
    assert!(manager.tls().accept_invalid_hostnames);
    assert_eq!(manager.timeout(), Duration::from_secs(60));
    let essentials = config.instance("nessus", "essentials").unwrap();
    assert_eq!(essentials.auth().mode(), AuthMode::WebToken);
    assert!(essentials.tls().insecure);
    assert!(config.instance("nessus", "spare").is_none());
    assert_eq!(
        config.pool("nessus").unwrap().disabled_instances(),
        ["spare"]
    );

    let lab = config.credential("lab-ssh").unwrap();
    assert_eq!(lab.escalation(), EscalationMethod::Sudo);
    assert_eq!(lab.escalation_account(), Some("root"));
    assert!(matches!(lab.auth(), ProfileAuth::Password(_)));
    let creds = lab.to_ssh_credentials();
    assert_eq!(creds.username(), "scanner");
    let key = config.credential("lab-key").unwrap();
    let ProfileAuth::PrivateKey { key, .. } = key.auth() else {
        panic!("key auth")
    };
    assert!(key.secret().expose_secret().contains("FAKEKEYCANARY"));

    let policy = config.pool("nessus").unwrap().policy();
    assert_eq!(policy.max_hosts(), 1024);
    let pool = config.pool("nessus").unwrap();
    assert!(
        pool.check_targets("10.20.1.0/24, host.lab.example.com\n192.0.2.10-20")
            .is_ok()
    );
    assert!(pool.check_targets("10.20.99.7").is_err(), "deny wins");
    assert!(
        pool.check_targets("db.prod.lab.example.com").is_err(),
        "deny pattern wins"
    );
    assert!(
        pool.check_targets("10.20.0.5").is_err(),
        "a scanner's own address is denied"
    );
    assert!(
        pool.check_targets("10.20.0.0/20").is_err(),
        "over max_hosts"
    );
}

#[test]
fn secrets_never_show_in_describe_debug_or_warnings() {
    let canaries = [
        "CANARY-ssh-password",
        "CANARY-sudo-password",
        "CANARY-access-key",
        "CANARY-secret-key",
        "CANARY-dmz",
        "mcp-token-from-env",
        "mcp-token-from-file",
        "FAKEKEYCANARY",
        "queue-pass",
        "changeme",
    ];
    let env = env_of(&[
        ("MCP_TOKEN", "mcp-token-from-env-0123456789"),
        ("LAB_SSH_PASSWORD", "CANARY-ssh-password"),
        ("LAB_SUDO_PASSWORD", "CANARY-sudo-password"),
        ("NESSUS_ACCESS_KEY", "CANARY-access-key"),
        ("NESSUS_SECRET_KEY", "CANARY-secret-key"),
        ("DMZ_PASSWORD", "CANARY-dmz"),
    ]);
    let config = Config::load_with_env(testdata("full-scanners.yaml"), &env).unwrap();
    let rendered = [
        config.describe(),
        format!("{config:?}"),
        format!(
            "{:#?}",
            config.credential("lab-ssh").unwrap().to_ssh_credentials()
        ),
        config.warnings().join("\n"),
    ];
    for text in &rendered {
        for canary in canaries {
            assert!(!text.contains(canary), "{canary} leaked into:\n{text}");
        }
    }
    let describe = &rendered[0];
    assert!(describe.contains("nessus:manager"), "{describe}");
    assert!(
        describe.contains("******** (from env NESSUS_ACCESS_KEY)"),
        "{describe}"
    );
    assert!(
        describe.contains("redis redis://***@127.0.0.1:6390/0"),
        "{describe}"
    );
    assert!(describe.contains("INSECURE"), "{describe}");
}

#[test]
fn literal_userinfo_in_urls_is_masked() {
    let yaml = "nessus:\n  - instance_id: a\n    url: https://admin:hunter2@nessus.lab:8834\n    access_key: k\n    secret_key: s\n";
    let config = Config::from_yaml_with_env(yaml, &no_env).unwrap();
    let inst = config.instance("nessus", "a").unwrap();
    assert_eq!(inst.display_url(), "https://***@nessus.lab:8834");
    assert!(!config.describe().contains("hunter2"));
}

#[test]
fn broken_yaml_reports_line_and_column() {
    // Wrong type.
    check_error(
        "nessus:\n  - instance_id: a\n    url: https://x:8834\n    max_concurrent_scans: many\n",
        &[],
        4,
        27,
        "invalid u32",
    );
    // Syntax error: unclosed flow sequence.
    let err = Config::from_yaml_with_env("nessus: [\n  - a\n", &no_env).unwrap_err();
    let nessus_core::Error::Config { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(line.is_some() && column.is_some(), "{err}");
    // Duplicate pool.
    check_error("nessus: []\nnessus: []\n", &[], 2, 1, "");
    // Unknown key in a new-style section.
    check_error("server:\n  data_dri: /tmp\n", &[], 2, 3, "data_dri");
}

#[test]
fn invalid_settings_point_at_the_culprit() {
    let inst = |extra: &str| {
        format!(
            "nessus:\n  - instance_id: a\n    url: https://x.lab:8834\n    username: u\n    password: p\n{extra}"
        )
    };
    check_error(&inst("    auth: kerberos\n"), &[], 6, 11, "kerberos");
    check_error(
        &inst("    tls:\n      accept_invalid_hostnames: true\n"),
        &[],
        7,
        7,
        "only allowed together with ca_file",
    );
    check_error(
        &inst("    tls:\n      ca_file: /nonexistent/ca.pem\n"),
        &[],
        7,
        16,
        "does not exist",
    );
    check_error(
        "nessus:\n  target_policy:\n    allow: [10.0.0.0/8, 0177.0.0.1]\n",
        &[],
        3,
        25,
        "dotted decimal",
    );
    check_error(
        "nessus:\n  target_policy:\n    allow: [\"*\"]\n",
        &[],
        3,
        13,
        "'*'",
    );
    check_error(
        "credentials:\n  x:\n    username: u\n    password: p\n    elevate_privileges_with: doas\n",
        &[],
        5,
        30,
        "invalid escalation method",
    );
    check_error(
        "credentials:\n  x:\n    username: u\n    password: { env: MISSING_VAR }\n",
        &[],
        4,
        15,
        "MISSING_VAR, which is not set",
    );
    check_error(
        "nessus:\n  - instance_id: a\n    username: u\n",
        &[],
        2,
        5,
        "`url` is required",
    );
    check_error("queue:\n  backend: postgres\n", &[], 2, 12, "postgres");
    check_error(
        "server:\n  tool_output: strict\n",
        &[],
        2,
        16,
        "is not compatible or typed",
    );
}

#[test]
fn tool_output_defaults_to_compatible() {
    for (yaml, want) in [
        ("", nessus_core::ToolOutput::Compatible),
        (
            "server:\n  tool_output: compatible\n",
            nessus_core::ToolOutput::Compatible,
        ),
        (
            "server:\n  tool_output: typed\n",
            nessus_core::ToolOutput::Typed,
        ),
    ] {
        let config = Config::from_yaml_with_env(yaml, &no_env).unwrap();
        assert_eq!(config.server().tool_output(), want, "{yaml:?}");
    }
}

#[test]
fn env_interpolation_forms() {
    // (template, env, expected url)
    let cases: &[(&str, Env<'_>, &str)] = &[
        ("${U}", &[("U", "https://a:1")], "https://a:1"),
        ("${U:-https://d:1}", &[], "https://d:1"),
        ("${U:-https://d:1}", &[("U", "")], "https://d:1"),
        (
            "${U-https://d:1}",
            &[("U", "https://set:1")],
            "https://set:1",
        ),
        (
            "https://${HOST}:8834",
            &[("HOST", "h.lab")],
            "https://h.lab:8834",
        ),
        ("\"${U}\"", &[("U", "https://quoted:1")], "https://quoted:1"),
    ];
    for (template, env, want) in cases {
        let yaml = format!(
            "nessus:\n  - instance_id: a\n    url: {template}\n    access_key: k\n    secret_key: s\n"
        );
        let config = Config::from_yaml_with_env(&yaml, &env_of(env)).unwrap();
        assert_eq!(
            config.instance("nessus", "a").unwrap().url(),
            *want,
            "{template}"
        );
    }
    // An unset variable without default leaves an empty URL, which is refused.
    check_error(
        "nessus:\n  - instance_id: a\n    url: ${NOPE}\n    access_key: k\n    secret_key: s\n",
        &[],
        3,
        10,
        "url is empty",
    );
}

#[test]
fn legacy_quirks_are_tolerated() {
    let yaml = "\
nessus:
  - name: no id, skipped
    url: https://x:1
  - instance_id: 7
    url: https://x.lab:8834
    username: u
    password: p
    scanner_type: nessus
nessus_dmz:
openvas:
  - instance_id: o1
";
    let config = Config::from_yaml_with_env(yaml, &no_env).unwrap();
    assert_eq!(config.pool_names(), vec!["nessus", "nessus_dmz", "openvas"]);
    assert!(
        config.instance("nessus", "7").is_some(),
        "numeric ids are text"
    );
    assert!(config.pool("openvas").unwrap().instances().is_empty());
    let w = config.warnings().join("\n");
    assert!(w.contains("without instance_id"), "{w}");
    assert!(w.contains("unknown field \"scanner_type\" ignored"), "{w}");
    assert!(w.contains("unknown scanner type"), "{w}");
}

#[test]
fn empty_and_comment_only_files_load_as_no_pools() {
    for yaml in ["", "# only comments\n"] {
        let config = Config::from_yaml_with_env(yaml, &no_env).unwrap();
        assert!(config.pools().is_empty());
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Config::load("/nonexistent/scanners.yaml").unwrap_err();
    assert!(
        matches!(err, nessus_core::Error::ConfigRead { .. }),
        "{err:?}"
    );
}

#[test]
fn results_url_defaults_and_refusals() {
    // Absent: local disk, the cache settings at their defaults.
    let yaml = "server:\n  data_dir: /srv/n\n";
    let config = Config::from_yaml_with_env(yaml, &no_env).unwrap();
    let s = config.server();
    assert_eq!(s.results_url(), None);
    assert_eq!(
        s.results_cache_dir(),
        std::path::Path::new("/srv/n/results-cache")
    );
    assert_eq!(s.results_cache_max_bytes(), 2 << 30);
    assert!(
        config
            .describe()
            .contains("results_url: none (results on local disk)")
    );

    let yaml = "server:\n  data_dir: /srv/n\n  results_url: s3://${BUCKET}/scans\n  results_cache_dir: /cache\n  results_cache_max_bytes: 1048576\n";
    let config = Config::from_yaml_with_env(yaml, &env_of(&[("BUCKET", "b1")])).unwrap();
    let s = config.server();
    assert_eq!(s.results_url(), Some("s3://b1/scans"));
    assert_eq!(s.results_cache_dir(), std::path::Path::new("/cache"));
    assert_eq!(s.results_cache_max_bytes(), 1 << 20);
    let shown = config.describe();
    assert!(shown.contains("results_url: s3://b1/scans"), "{shown}");
    assert!(
        shown.contains("results_cache_dir: /cache (max 1048576 bytes)"),
        "{shown}"
    );

    check_error(
        "server:\n  results_url: http://x/y\n",
        &[],
        2,
        16,
        "is not s3://bucket/prefix",
    );
    check_error(
        "server:\n  results_url: s3://AKIA:secret@bucket/p\n",
        &[],
        2,
        16,
        "must not carry credentials",
    );
}

/// Issue 16: `auth.oauth` with its defaults, overrides and refusals.
#[test]
fn oauth_section_defaults_overrides_and_refusals() {
    let base = "auth:\n  oauth:\n    issuer: https://idp.example.com/realms/sec\n    audience: https://mcp.example.com/mcp\n";
    let config = Config::from_yaml_with_env(base, &no_env).unwrap();
    let o = config.auth().oauth().expect("oauth is on");
    assert_eq!(o.issuer(), "https://idp.example.com/realms/sec");
    assert_eq!(o.audience(), "https://mcp.example.com/mcp");
    assert_eq!(o.jwks_uri(), None);
    assert_eq!(o.principal_claim(), "sub");
    assert_eq!(o.leeway().as_secs(), 60);
    assert_eq!(
        o.scopes().all(),
        [
            "nessus:read",
            "nessus:scan",
            "nessus:scan:authenticated",
            "nessus:admin"
        ]
    );
    assert!(o.introspection().is_none());
    assert!(
        Config::from_yaml_with_env("", &no_env)
            .unwrap()
            .auth()
            .oauth()
            .is_none()
    );

    let full = format!(
        "{base}    jwks_uri: http://127.0.0.1:9/jwks\n    principal_claim: email\n    leeway_secs: 5\n    \
         scopes: {{ read: r, admin: a }}\n    introspection:\n      client_id: rs\n      client_secret: {{ env: RS_SECRET }}\n"
    );
    let config =
        Config::from_yaml_with_env(&full, &env_of(&[("RS_SECRET", "s3cr3t-canary")])).unwrap();
    let o = config.auth().oauth().unwrap();
    assert_eq!(o.jwks_uri(), Some("http://127.0.0.1:9/jwks"));
    assert_eq!(o.principal_claim(), "email");
    assert_eq!(o.leeway().as_secs(), 5);
    assert_eq!(
        o.scopes().all(),
        ["r", "nessus:scan", "nessus:scan:authenticated", "a"]
    );
    assert_eq!(o.introspection().unwrap().client_id(), "rs");
    let shown = format!("{config}{config:?}");
    assert!(!shown.contains("s3cr3t-canary"), "{shown}");
    assert!(shown.contains("introspection: client \"rs\""), "{shown}");

    check_error(
        "auth:\n  oauth:\n    issuer: http://idp.example.com\n    audience: x\n",
        &[],
        3,
        13,
        "must use https",
    );
    check_error(
        &format!("{base}    scopes: {{ read: same, scan: same }}\n"),
        &[],
        5,
        13,
        "each capability needs its own scope",
    );
    check_error(
        &format!("{base}    scopes: {{ read: \"two words\" }}\n"),
        &[],
        5,
        21,
        "one scope token",
    );
    check_error(
        &format!("{base}    algorithms: [HS256]\n"),
        &[],
        5,
        5,
        "unknown field",
    );
}

/// Each Redis topology parses from its keys; the URLs stay secrets.
#[test]
fn each_redis_topology_parses() {
    let env = env_of(&[("SENTINEL_PASS", "CANARY-sentinel-pass")]);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "standalone",
            "queue:\n  backend: redis\n  redis_url: rediss://:CANARY-url-pass@r.lab:6390/0\n",
            &["rediss://:CANARY-url-pass@r.lab:6390/0"],
        ),
        (
            "sentinel",
            "queue:\n  backend: redis\n  redis_sentinels:\n    - redis://:${SENTINEL_PASS}@s1.lab:26379\n    - rediss://s2.lab:26379\n  redis_sentinel_master: queue-master\n  redis_sentinel_master_password: CANARY-master-pass\n",
            &[
                "redis://:CANARY-sentinel-pass@s1.lab:26379",
                "rediss://s2.lab:26379",
            ],
        ),
        (
            "cluster",
            "queue:\n  backend: redis\n  redis_cluster: [\"redis://:CANARY-cluster-pass@c1.lab:7000\", \"redis://c2.lab:7001\", \"redis://c3.lab:7002\"]\n",
            &[
                "redis://:CANARY-cluster-pass@c1.lab:7000",
                "redis://c2.lab:7001",
                "redis://c3.lab:7002",
            ],
        ),
    ];
    for (name, yaml, urls) in cases {
        let config =
            Config::from_yaml_with_env(yaml, &env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<String> = match config.queue().backend() {
            BackendConfig::Redis { url } => vec![url.secret().expose_secret().to_owned()],
            BackendConfig::RedisSentinel {
                sentinels,
                master,
                master_password,
            } => {
                assert_eq!(master, "queue-master", "{name}");
                assert_eq!(
                    master_password.as_ref().map(|p| p.secret().expose_secret()),
                    Some("CANARY-master-pass"),
                    "{name}"
                );
                sentinels
                    .iter()
                    .map(|s| s.secret().expose_secret().to_owned())
                    .collect()
            }
            BackendConfig::RedisCluster { nodes } => nodes
                .iter()
                .map(|s| s.secret().expose_secret().to_owned())
                .collect(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(got, *urls, "{name}");
        // No URL, password or canary in Debug, describe or warnings.
        let rendered = [
            format!("{config:?}"),
            format!("{:?}", config.queue().backend()),
            config.describe(),
            config.warnings().join("\n"),
        ];
        for text in &rendered {
            assert!(
                !text.contains("CANARY"),
                "{name}: secret leaked into:\n{text}"
            );
        }
        assert!(config.describe().contains("backend: redis"), "{name}");
    }
}

/// Two topologies, none, or a stray sentinel key: an error naming the keys, at the line.
#[test]
fn redis_topologies_are_exclusive() {
    let cases: &[(&str, u64, u64, &str)] = &[
        ("queue:\n  backend: redis\n", 2, 12, "none is set"),
        (
            "queue:\n  backend: redis\n  redis_url: redis://a:1\n  redis_cluster: [redis://b:2]\n",
            2,
            12,
            "found queue.redis_url and queue.redis_cluster",
        ),
        (
            "queue:\n  backend: redis\n  redis_sentinels: [redis://a:1]\n  redis_cluster: [redis://b:2]\n  redis_sentinel_master: m\n",
            2,
            12,
            "found queue.redis_sentinels and queue.redis_cluster",
        ),
        (
            "queue:\n  backend: redis\n  redis_sentinels: [redis://a:1]\n",
            3,
            20,
            "needs queue.redis_sentinel_master",
        ),
        (
            "queue:\n  backend: redis\n  redis_url: redis://a:1\n  redis_sentinel_master: m\n",
            4,
            26,
            "only for queue.redis_sentinels",
        ),
        (
            "queue:\n  backend: redis\n  redis_cluster: []\n",
            3,
            18,
            "lists no URL",
        ),
    ];
    for (yaml, line, column, needle) in cases {
        check_error(yaml, &[], *line, *column, needle);
    }
}

#[test]
fn webhooks_section_resolves_and_refuses_bad_entries() {
    let yaml = "nessus:\n  - url: https://10.0.0.5:8834\n    username: u\n    password: p\nwebhooks:\n  - url: https://hooks.example/nessus\n    secret: ${HOOK_SECRET}\n    events: [task_completed, approval_needed]\n    pool: nessus\n  - url: http://127.0.0.1:9000/h\n    secret: literal-dev\n    events: [task_failed]\n    principal: alice\n";
    let c = Config::from_yaml_with_env(yaml, &env_of(&[("HOOK_SECRET", "s3cr3t-value")])).unwrap();
    let w = c.webhooks();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].url, "https://hooks.example/nessus");
    assert_eq!(w[0].secret.secret().expose_secret(), "s3cr3t-value");
    assert_eq!(w[0].events, ["task_completed", "approval_needed"]);
    assert_eq!(w[0].pool.as_deref(), Some("nessus"));
    assert_eq!(w[1].principal.as_deref(), Some("alice"));
    assert!(
        !format!("{c:?}").contains("s3cr3t-value"),
        "secret never in Debug"
    );
    let base =
        "nessus:\n  - url: https://10.0.0.5:8834\n    username: u\n    password: p\nwebhooks:\n";
    for (entry, needle) in [
        (
            "  - url: http://hooks.example/x\n    secret: s\n    events: [task_failed]\n",
            "https",
        ),
        (
            "  - url: https://h/x\n    secret: s\n    events: [scan_exploded]\n",
            "is not one of",
        ),
        (
            "  - url: https://h/x\n    secret: s\n    events: [task_failed]\n    pool: nope\n",
            "not a pool",
        ),
        (
            "  - url: https://h/x\n    secret: s\n    events: []\n",
            "at least one",
        ),
    ] {
        let err = Config::from_yaml_with_env(&format!("{base}{entry}"), &no_env).unwrap_err();
        assert!(err.to_string().contains(needle), "{entry}: {err}");
    }
}

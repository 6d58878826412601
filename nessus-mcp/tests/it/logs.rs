//! No secret reaches a log line, whatever `RUST_LOG` says (issue 12, "No secret at any
//! log level"). The real binary runs with `RUST_LOG=trace`, an authenticated scan with
//! canary passwords goes through submit, the embedded worker and the simulator to
//! `completed`, and then every line the process wrote must be free of the canaries.
//! At `trace`, rmcp logs each JSON-RPC message it receives (tool arguments included)
//! and the HTTP stacks log what they parse, so this fails without the clamp in
//! `telemetry.rs`.

use std::{
    fs::File,
    process::Stdio,
    time::{Duration, Instant},
};

use nessus_queue::testkit::{ChildGuard, free_port};
use rmcp::{
    RoleClient, ServiceExt,
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

use crate::support::{TARGET, call_ok, wait_status, write_config};

const SSH_CANARY: &str = "canary-ssh-pw-7f3a91c4";
const ESCALATION_CANARY: &str = "canary-escalation-pw-0b6e22d8";
const TOKEN_CANARY: &str = "canary-bearer-token-5d1c0a9e";

#[derive(Debug, Clone, Copy)]
enum Transport {
    Http,
    Stdio,
}

struct Case {
    transport: Transport,
    log_format: &'static str,
}

const CASES: &[Case] = &[
    Case {
        transport: Transport::Http,
        log_format: "json",
    },
    Case {
        transport: Transport::Http,
        log_format: "text",
    },
    Case {
        transport: Transport::Stdio,
        log_format: "json",
    },
];

#[tokio::test]
async fn no_password_or_token_in_any_log_line_at_trace() {
    let mut leaks = Vec::new();
    for case in CASES {
        leaks.extend(check(case).await);
    }
    assert!(leaks.is_empty(), "secrets in log lines: {leaks:#?}");
}

/// Runs one case and returns its leaks as `case: canary at target LEVEL`.
async fn check(case: &Case) -> Vec<String> {
    let label = format!("{:?}/{}", case.transport, case.log_format);
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = nessus_core::sim::Simulator::builder()
        .scan_duration(Duration::from_millis(300))
        .start("127.0.0.1:0")
        .await
        .expect("simulator");
    let config = write_config(dir.path(), sim.base_url());
    let log_path = dir.path().join("server.log");
    let log = File::create(&log_path).expect("log file");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_nessus-mcp"));
    cmd.arg("--config")
        .arg(&config)
        .args(["--log-format", case.log_format])
        .env("RUST_LOG", "trace")
        .env_remove("NESSUS_MCP_TOKENS");

    let (client, guard) = match case.transport {
        Transport::Stdio => {
            cmd.arg("--stdio");
            let child = TokioChildProcess::builder(cmd)
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn")
                .0;
            (().serve(child).await.expect("initialize"), None)
        }
        Transport::Http => {
            let port = free_port().expect("port");
            let std_cmd = cmd
                .args(["--bind", &format!("127.0.0.1:{port}")])
                .arg("--tokens")
                .arg(format!("alice={TOKEN_CANARY}"))
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log));
            let guard = ChildGuard::new(std_cmd.as_std_mut().spawn().expect("spawn"));
            wait_listening(port).await;
            let cfg = StreamableHttpClientTransportConfig::with_uri(format!(
                "http://127.0.0.1:{port}/mcp"
            ))
            .auth_header(TOKEN_CANARY);
            let client =
                ().serve(StreamableHttpClientTransport::from_config(cfg))
                    .await
                    .expect("client connects");
            (client, Some(guard))
        }
    };

    run_authenticated_scan(&client).await;
    assert_eq!(
        sim.secret_seen_count(SSH_CANARY),
        1,
        "{label}: ssh password reached Nessus"
    );
    assert_eq!(
        sim.secret_seen_count(ESCALATION_CANARY),
        1,
        "{label}: escalation password reached Nessus"
    );
    let _ = client.cancel().await;
    drop(guard);
    sim.shutdown().await;

    let text = std::fs::read_to_string(&log_path).expect("read log");
    let lines = text.lines().count();
    // Our own debug lines show that `trace` took effect; without them the test
    // would prove nothing.
    assert!(
        text.contains("Nessus call") && text.contains("polled"),
        "{label}: no debug lines in {lines} log lines"
    );
    let mut leaks = Vec::new();
    // A log file is no terminal: no colour codes in it.
    if text.contains('\x1b') {
        leaks.push(format!("{label}: ANSI escape codes in a log file"));
    }
    // `k-secret` is the instance's API secret key in the test config.
    for canary in [SSH_CANARY, ESCALATION_CANARY, TOKEN_CANARY, "k-secret"] {
        for line in text.lines().filter(|l| l.contains(canary)) {
            leaks.push(format!("{label}: {canary} at {}", target_and_level(line)));
        }
    }
    leaks.sort();
    leaks.dedup();
    leaks
}

/// `target LEVEL` of a JSON or text log line, to name the leaking crate.
fn target_and_level(line: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return format!("{} {}", v["target"], v["level"]);
    }
    // Text: `TIMESTAMP LEVEL spans: target: message`.
    let mut words = line.split_whitespace().skip(1);
    let level = words.next().unwrap_or_default().to_owned();
    let target = words
        .find(|w| w.ends_with(':') && w.contains("::") && !w.contains(['{', '(', '"']))
        .unwrap_or("?");
    format!("{target} {level}")
}

/// Submits the scan with both canary passwords and waits until it completed.
async fn run_authenticated_scan(client: &RunningService<RoleClient, ()>) {
    let sub = call_ok(
        client,
        "run_authenticated_scan",
        json!({
            "targets": TARGET,
            "name": "canary",
            "scan_type": "authenticated_privileged",
            "ssh_username": "scanner",
            "ssh_password": SSH_CANARY,
            "elevate_privileges_with": "sudo",
            "escalation_account": "root",
            "escalation_password": ESCALATION_CANARY,
        }),
    )
    .await;
    let id = sub["task_id"].as_str().expect("task id").to_owned();
    let st = wait_status(
        client,
        &id,
        &["completed", "failed", "timeout", "cancelled"],
    )
    .await;
    assert_eq!(st["status"], "completed", "{st}");
}

pub(crate) async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the server did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! `nessus-cli sim`: starts, answers the Nessus API, and reports bad arguments.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use super::*;

/// Kills the simulator even when an assertion fails.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn simulator_serves_the_nessus_api() {
    let child = Command::new(assert_cmd::cargo::cargo_bin!("nessus-cli"))
        .args(["sim", "--listen", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nessus-cli sim starts");
    let mut sim = Running(child);
    let mut line = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url: serde_json::Value = serde_json::from_str(&line).expect("a JSON line with the URL");
    let url = url["url"].as_str().unwrap();
    let authority = url.strip_prefix("http://").expect("plain HTTP by default");

    let mut stream = TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET /server/status HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\""), "{response}");
}

#[test]
fn simulator_argument_errors() {
    check(&["sim", "--scan-duration", "-1"], USAGE);
    check(&["sim", "--tls"], USAGE);
    let out = check(
        &["sim", "--listen", "127.0.0.1:0", "--corpus", "/nonexistent"],
        INPUT,
    );
    assert!(stderr(&out).contains("/nonexistent"));
    let out = check(&["sim", "--listen", "not an address"], 1);
    assert!(
        stderr(&out).contains("cannot start the simulator"),
        "{}",
        stderr(&out)
    );
}

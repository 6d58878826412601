//! An S3-compatible server of the test's own: `moto_server` (PyPI `moto[server]`) on a
//! free loopback port, with one bucket created, and the settings a client or a child
//! process needs to reach it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::SecretString;

use super::process::{ChildGuard, free_port, wait_listening};

/// The `moto[server]` version the tests and `.ci/run` install.
pub const MOTO_PIN: &str = "5.2.6";

/// How to get the server, in every error that means it is missing.
fn install_hint() -> String {
    format!(
        "The object-storage tests start their own S3 server: install it with \
         `python3 -m venv /work/venv-moto && /work/venv-moto/bin/pip install \
         'moto[server]=={MOTO_PIN}'` and put /work/venv-moto/bin on PATH (.ci/run installs \
         it into a cached venv and puts moto_server on PATH)"
    )
}

/// How long moto may take to start (it imports a lot of Python).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `moto_server` on 127.0.0.1 with one bucket; killed on drop.
#[derive(Debug)]
pub struct S3Server {
    process: ChildGuard,
    port: u16,
    bucket: String,
    access_key: String,
    secret_key: String,
}

impl S3Server {
    /// A server on a free port with the bucket `nessus-results`. Fails with a message
    /// saying how to install `moto_server` when it is not on `PATH`.
    pub fn start() -> io::Result<Self> {
        let port = free_port()?;
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::NotFound {
                    format!("moto_server is not on PATH. {}", install_hint())
                } else {
                    "moto_server could not be started".to_owned()
                };
                io::Error::new(e.kind(), format!("{hint}: {e}"))
            })?;
        let mut process = ChildGuard::new(child);
        // A shim (pyenv, asdf) without the package behind it exits at once.
        wait_listening(
            &mut process,
            port,
            "moto_server",
            START_TIMEOUT,
            &format!(". {}", install_hint()),
        )?;
        let server = Self {
            process,
            port,
            bucket: "nessus-results".to_owned(),
            access_key: "AKIANESSUSTEST".to_owned(),
            // Random per server, so a test can look for it in logs and error texts.
            secret_key: format!("moto-secret-{}", uuid::Uuid::new_v4().simple()),
        };
        server.create_bucket()?;
        Ok(server)
    }

    /// `PUT /{bucket}`: moto's server mode accepts unsigned requests.
    fn create_bucket(&self) -> io::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.bucket, self.port
        )?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "moto_server refused to create the bucket: {}",
                answer.lines().next().unwrap_or("")
            )))
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://{bucket}/{prefix}`: a `server.results_url`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// The secret access key (a test looks for it where it must never appear).
    pub fn secret_access_key(&self) -> &str {
        &self.secret_key
    }

    /// The environment a child process (`nessus-mcp`, `nessus-cli worker`) needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT".to_owned(), self.endpoint()),
            ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
        ]
    }

    /// The same settings for `OpenOptions::results_options` / `ResultsStore::open`,
    /// so an in-process test never changes the process environment.
    pub fn options(&self) -> Vec<(String, SecretString)> {
        self.env()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect()
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        self.process.kill();
    }
}

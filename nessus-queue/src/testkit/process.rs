//! Child processes a test owns: killed when the test lets go of them, pass or fail.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped on drop, so a failing test leaves
/// no stray worker or server behind.
#[derive(Debug)]
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Takes ownership of a spawned child.
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    /// Kills the child now with SIGKILL (as a crash would) and waits for it.
    /// Killing an already finished child is not an error.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// The child, e.g. for its id.
    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nothing listens on right now (bound, then released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `redis-server` of the test's own on 127.0.0.1 (never the default 6379, so a
/// developer's Redis is never touched), with `noeviction` as production requires.
/// Killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    process: ChildGuard,
    port: u16,
    url: String,
}

/// How long a starting server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisServer {
    /// A throw-away server on a free port: no snapshots, no append-only file.
    pub fn start() -> io::Result<Self> {
        Self::start_with(free_port()?, &["--save", "", "--appendonly", "no"])
    }

    /// A server on `port` whose fsync-always append-only file lives in `dir`, so
    /// acknowledged writes survive [`RedisServer::kill9`] and a restart on the same
    /// port and directory finds them (the documented production setting).
    pub fn start_durable(port: u16, dir: &Path) -> io::Result<Self> {
        let dir = dir.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the Redis data directory {} is not UTF-8", dir.display()),
            )
        })?;
        let args = [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir,
        ];
        Self::start_with(port, &args)
    }

    /// A throw-away server of another Redis-compatible binary (e.g.
    /// `valkey-server`) on a free port.
    pub fn start_with_binary(binary: &str) -> io::Result<Self> {
        let port = free_port()?;
        let args = ["--save", "", "--appendonly", "no"].map(str::to_owned);
        let process = spawn_server(binary, port, &base_args(port, &args))?;
        Ok(Self {
            process,
            port,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }

    fn start_with(port: u16, extra: &[&str]) -> io::Result<Self> {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let process = spawn_server("redis-server", port, &base_args(port, &extra))?;
        Ok(Self {
            process,
            port,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        self.process.kill();
    }
}

/// `--port P --bind 127.0.0.1 --maxmemory-policy noeviction` and `extra`.
pub(crate) fn base_args(port: u16, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--maxmemory-policy",
        "noeviction",
    ]
    .map(str::to_owned)
    .to_vec();
    v.extend(extra.iter().cloned());
    v
}

/// Whether `binary` can be found on `PATH`.
pub fn binary_on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(binary).is_file()))
}

/// Starts `binary args…` and waits until `port` accepts connections.
pub(crate) fn spawn_server(binary: &str, port: u16, args: &[String]) -> io::Result<ChildGuard> {
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{binary} is not installed (apt-get install redis-server, or the Valkey \
                     package for valkey-server); the Redis tests and benchmarks start their \
                     own on a free loopback port"
                )
            } else {
                format!("{binary} could not be started")
            };
            io::Error::new(e.kind(), format!("{hint}: {e}"))
        })?;
    let mut process = ChildGuard::new(child);
    wait_listening(&mut process, port, binary, START_TIMEOUT, "")?;
    Ok(process)
}

/// Waits until `port` accepts connections on loopback, failing early when `process`
/// exits first (`what` names it; `hint` is appended to either error).
pub(crate) fn wait_listening(
    process: &mut ChildGuard,
    port: u16,
    what: &str,
    timeout: Duration,
    hint: &str,
) -> io::Result<()> {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = process.child().try_wait()? {
            return Err(io::Error::other(format!(
                "{what} exited ({status}) before accepting connections on port {port}{hint}"
            )));
        }
        if started.elapsed() > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{what} did not accept connections on port {port} within {} s{hint}",
                    timeout.as_secs()
                ),
            ));
        }
        // Blocking is fine here: nothing else in a test waits on the server yet.
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

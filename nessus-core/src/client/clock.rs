//! The server's clock, from the HTTP `Date` header: a scanner whose clock is far off
//! mislabels scan times and history, so `nessus-cli scanners check` reports the skew.

use std::time::{Duration, SystemTime};

use reqwest::header::DATE;

use super::{NessusClient, request::Call};
use crate::error::{Error, Result};

/// The server's clock as its `Date` header showed it, next to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerClock {
    /// The server's time, from `Date` (whole seconds, as HTTP dates have).
    pub server_time: SystemTime,
    /// Our time half-way through the request: the moment the header most likely
    /// describes.
    pub local_time: SystemTime,
}

impl ServerClock {
    /// Server minus local time in whole seconds: positive when the server is ahead.
    /// `Date` is truncated to the second, so half a second is added back before
    /// rounding; a result of ±1 is within the header's resolution.
    pub fn skew_seconds(&self) -> i64 {
        let server = self.server_time + Duration::from_millis(500);
        let secs = match server.duration_since(self.local_time) {
            Ok(ahead) => ahead.as_secs_f64(),
            Err(behind) => -behind.duration().as_secs_f64(),
        };
        secs.round() as i64
    }
}

impl NessusClient {
    /// Reads the server's clock from the `Date` header of `GET /server/status` (no
    /// authentication needed). Fails with [`Error::ServerClock`] when the header is
    /// missing or is not an HTTP date.
    pub async fn server_clock(&self) -> Result<ServerClock> {
        let call = Call::get("/server/status");
        let endpoint = call.endpoint();
        let before = SystemTime::now();
        let resp = self.send(&call).await?;
        let after = SystemTime::now();
        let date = resp.headers().get(DATE).cloned();
        // Drain the body so the connection can be reused; its content is not needed.
        let _ = resp.bytes().await;
        let server_time = parse_date(date.as_ref().map(|v| v.as_bytes()), &endpoint)?;
        let half = after.duration_since(before).unwrap_or_default() / 2;
        Ok(ServerClock {
            server_time,
            local_time: before + half,
        })
    }
}

fn parse_date(value: Option<&[u8]>, endpoint: &str) -> Result<SystemTime> {
    let bad = |reason: String| Error::ServerClock {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let value = value.ok_or_else(|| bad("the response has no Date header".to_owned()))?;
    let text =
        std::str::from_utf8(value).map_err(|_| bad("the Date header is not text".to_owned()))?;
    httpdate::parse_http_date(text)
        .map_err(|_| bad(format!("the Date header {text:?} is not an HTTP date")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn skew_rounds_around_the_header_resolution() {
        let check = |server: SystemTime, local: SystemTime, want: i64| {
            let clock = ServerClock {
                server_time: server,
                local_time: local,
            };
            assert_eq!(clock.skew_seconds(), want, "{server:?} vs {local:?}");
        };
        check(at(1_000, 0), at(1_000, 400), 0);
        check(at(1_000, 0), at(1_000, 900), 0);
        check(at(4_600, 0), at(1_000, 300), 3600);
        check(at(1_000, 0), at(4_600, 700), -3600);
        check(at(1_000, 0), at(1_090, 500), -90);
    }

    #[test]
    fn date_values() {
        let ok = parse_date(Some(b"Sun, 06 Nov 1994 08:49:37 GMT"), "GET /server/status");
        assert_eq!(ok.unwrap(), at(784_111_777, 0));
        for (value, reason) in [
            (None, "no Date header"),
            (Some(&b"yesterday"[..]), "\"yesterday\" is not an HTTP date"),
            (Some(&b"\xff\xfe"[..]), "not text"),
        ] {
            let err = parse_date(value, "GET /server/status").unwrap_err();
            assert!(matches!(err, Error::ServerClock { .. }), "{err:?}");
            assert!(err.to_string().contains(reason), "{err}");
        }
    }
}

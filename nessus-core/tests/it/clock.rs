//! The server clock: the simulator's `Date` header on every response, its skew fault,
//! and `NessusClient::server_clock` on good, missing and unreadable headers.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use nessus_core::{Credentials, Error, NessusClient, sim::Faults};

use crate::support::{client, sim};

#[tokio::test]
async fn every_simulator_response_has_a_date() {
    let sim = sim().await;
    sim.set_faults(Faults {
        fail_next: 1,
        only: Some("GET /scans".into()),
        ..Default::default()
    });
    let http = reqwest::Client::new();
    for (path, status) in [
        ("/scans", 503),         // injected by the guard
        ("/scans", 401),         // no credentials
        ("/server/status", 200), // public
        ("/no/such/route", 401), // the guard answers before the fallback
        ("/_sim/counters", 200), // admin
    ] {
        let resp = http
            .get(format!("{}{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let date = resp.headers().get("date").expect("a Date header");
        httpdate::parse_http_date(date.to_str().unwrap()).expect("an HTTP date");
    }
}

#[tokio::test]
async fn server_clock_follows_the_skew_fault() {
    let sim = sim().await;
    let c = client(&sim);
    for skew in [0_i64, 3600, -90, -86_400] {
        sim.update_faults(|f| f.clock_skew_secs = skew);
        let measured = c.server_clock().await.unwrap().skew_seconds();
        assert!(
            (measured - skew).abs() <= 1,
            "fault {skew} s, measured {measured} s"
        );
    }
}

/// A one-shot HTTP server on a free loopback port that answers every request with
/// `head` (status line and headers) and an empty JSON body.
fn raw_server(head: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "{head}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
        }
    });
    url
}

#[tokio::test]
async fn server_clock_errors_name_the_header_problem() {
    for (head, reason) in [
        ("HTTP/1.1 200 OK", "no Date header"),
        (
            "HTTP/1.1 200 OK\r\nDate: yesterday",
            "\"yesterday\" is not an HTTP date",
        ),
    ] {
        let c = NessusClient::builder()
            .base_url(raw_server(head))
            .credentials(Credentials::api_keys("a", "b"))
            .build()
            .unwrap();
        let err = c.server_clock().await.unwrap_err();
        assert!(matches!(err, Error::ServerClock { .. }), "{err:?}");
        assert!(err.to_string().contains(reason), "{err}");
        assert!(err.to_string().contains("GET /server/status"), "{err}");
    }
}

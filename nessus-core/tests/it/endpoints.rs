//! Every endpoint group against the simulator.

use std::time::Duration;

use nessus_core::{Chapter, Error, ExportFormat, ExportOptions, ScanId, ScanSpec, ScanStatus};

use crate::support::{client, sim};

#[tokio::test]
async fn server_session_and_catalog() {
    let sim = sim().await;
    let c = client(&sim);
    assert!(c.server_status().await.unwrap().is_ready());
    let p = c.server_properties().await.unwrap();
    assert_eq!(p.scan_api(), Some(true));
    assert_eq!(p.server_version.as_deref(), Some("10.8.3"));
    assert_eq!(c.session().await.unwrap().permissions, Some(128));
    assert_eq!(
        c.template_uuid("advanced").await.unwrap(),
        "ad629e16-03b6-8c1d-cef6-ef8c9dd3c658d24bd260ef5f9e66"
    );
    match c.template_uuid("no-such-template").await.unwrap_err() {
        Error::NotFound {
            kind, available, ..
        } => {
            assert_eq!(kind, "scan template");
            assert!(available.iter().any(|n| n == "basic"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.folder_id(None).await.unwrap(), 3);
    assert!(matches!(
        c.folder_id(Some("mcp")).await,
        Err(Error::NotFound { kind: "folder", .. })
    ));
    let mcp = c.create_folder("mcp").await.unwrap();
    assert_eq!(c.folder_id(Some("mcp")).await.unwrap(), mcp);
    let id = c
        .create_scan(&ScanSpec::new("in-folder", ["192.0.2.1"]).folder("mcp"))
        .await
        .unwrap();
    assert_eq!(id.tag_id, Some(mcp));
    assert_eq!(c.policies().await.unwrap().len(), 1);
    let scanners = c.scanners().await.unwrap();
    assert_eq!(scanners[0].kind.as_deref(), Some("local"));
    assert_eq!(c.folders().await.unwrap().len(), 3);
}

#[tokio::test]
async fn scan_lifecycle_endpoints() {
    // Long enough that the pause below always lands while the scan runs, even on a busy
    // machine; pause/resume transitions take a tenth of it.
    let sim = crate::support::sim_builder()
        .scan_duration(Duration::from_secs(1))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let c = client(&sim);
    assert!(
        c.list_scans(None).await.unwrap().scans.is_empty(),
        "scans: null decodes as empty"
    );
    let created = c
        .create_scan(&ScanSpec::new("ep-1", ["192.0.2.1"]).template("basic"))
        .await
        .unwrap();
    let id = ScanId(created.id);
    assert_eq!(created.tag_id, Some(3));
    let d = c.scan_details(id, None).await.unwrap();
    assert_eq!(d.info.status, ScanStatus::Empty);
    assert!(d.history.is_empty(), "history: null decodes as empty");

    let run = c.launch_scan(id).await.unwrap();
    // Launching a running scan is a conflict.
    assert!(matches!(
        c.launch_scan(id).await,
        Err(Error::Api { status: 409, .. })
    ));
    c.pause_scan(id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        c.scan_details(id, None).await.unwrap().info.status,
        ScanStatus::Paused
    );
    c.resume_scan(id).await.unwrap();
    // Export of an active scan is refused like Nessus does.
    assert!(matches!(
        c.export_request(id, &ExportOptions::new(ExportFormat::Nessus))
            .await,
        Err(Error::Api { status: 409, .. })
    ));
    let d = loop {
        let d = c.scan_details(id, None).await.unwrap();
        if d.info.status.is_terminal() {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    assert_eq!(d.info.status, ScanStatus::Completed);
    assert_eq!(d.info.uuid.as_deref(), Some(run.as_str()));
    assert_eq!(d.history[0].uuid.as_deref(), Some(run.as_str()));
    assert_eq!(d.hosts[0].hostname, "192.0.2.1");
    assert_eq!(d.progress(), 100);
    let history_id = d.history[0].history_id;
    assert_eq!(
        c.scan_details(id, history_id).await.unwrap().info.status,
        ScanStatus::Completed
    );

    let list = c.list_scans(Some(3)).await.unwrap();
    assert_eq!(list.scans.len(), 1);
    assert_eq!(list.scans[0].uuid.as_deref(), Some(run.as_str()));

    // Stop / pause when not active: 409 "Scan is not active".
    assert!(matches!(
        c.stop_scan(id).await,
        Err(Error::Api { status: 409, .. })
    ));
    c.delete_scan(id).await.unwrap();
    assert!(matches!(
        c.scan_details(id, None).await,
        Err(Error::Api { status: 404, .. })
    ));
}

#[tokio::test]
async fn exports_in_every_format() {
    let sim = sim().await;
    let c = client(&sim);
    let id = ScanId(
        c.create_scan(&ScanSpec::new("ep-export", ["192.0.2.9", "web.example"]))
            .await
            .unwrap()
            .id,
    );
    c.launch_scan(id).await.unwrap();
    while !c
        .scan_details(id, None)
        .await
        .unwrap()
        .info
        .status
        .is_terminal()
    {
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    for (format, needle) in [
        (ExportFormat::Nessus, "<ReportHost name=\"web.example\""),
        (ExportFormat::Csv, "Plugin ID,CVE,CVSS,Risk,Host,"),
        (ExportFormat::Html, "<h2>192.0.2.9</h2>"),
    ] {
        let path = dir.path().join(format!("out.{format}"));
        let opts = ExportOptions::new(format);
        if format == ExportFormat::Html {
            assert_eq!(opts.chapters, Chapter::ALL.to_vec());
        }
        let n = c.export_to_file(id, &opts, &path, 64 << 20).await.unwrap();
        let body = std::fs::read_to_string(&path).unwrap();
        assert_eq!(n as usize, body.len());
        assert!(
            body.contains(needle),
            "{format}: {}",
            &body[..200.min(body.len())]
        );
    }
    // Streaming into any writer.
    let e = c
        .export_request(id, &ExportOptions::new(ExportFormat::Nessus))
        .await
        .unwrap();
    c.wait_for_export(id, &e.file).await.unwrap();
    let mut buf = Vec::new();
    let n = c
        .export_download(id, &e.file, &mut buf, u64::MAX)
        .await
        .unwrap();
    assert_eq!(n as usize, buf.len());
    assert_eq!(sim.counters().downloads, 4);
}

/// `GET /server/properties` over real HTTP: without credentials the public view (what a
/// login page shows, as real Nessus serves it), with valid ones the full body, with wrong
/// or expired ones a 401 (a client's re-login depends on it).
#[tokio::test]
async fn server_properties_public_view_without_credentials_full_body_with_them() {
    let sim = crate::support::sim_builder()
        .require_api_keys("ak", "sk")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/server/properties", sim.base_url());
    const PUBLIC: &[&str] = &[
        "nessus_type",
        "server_version",
        "server_build",
        "nessus_ui_version",
        "nessus_ui_build",
        "login_banner",
    ];
    const PRIVATE: &[&str] = &[
        "license",
        "server_uuid",
        "features",
        "plugin_set",
        "loaded_plugin_set",
        "users_count",
        "used_ip_count",
        "idle_timeout",
        "platform",
    ];
    // (headers, expected status, full body?)
    type Case = (&'static [(&'static str, &'static str)], u16, bool);
    let cases: &[Case] = &[
        (&[], 200, false),
        (&[("X-ApiKeys", "accessKey=ak; secretKey=sk")], 200, true),
        (
            &[("X-ApiKeys", "accessKey=ak; secretKey=wrong")],
            401,
            false,
        ),
        (&[("X-Cookie", "token=expired-or-forged")], 401, false),
    ];
    for (headers, status, full) in cases {
        let mut rb = http.get(&url);
        for (k, v) in *headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{headers:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        if *status != 200 {
            assert!(body["error"].is_string(), "{headers:?}: {body}");
            continue;
        }
        let obj = body.as_object().unwrap();
        assert_eq!(body["nessus_type"], "Nessus Manager", "{headers:?}");
        for k in PUBLIC {
            assert!(obj.contains_key(*k), "{headers:?}: {k} missing in {body}");
        }
        for k in PRIVATE {
            assert_eq!(obj.contains_key(*k), *full, "{headers:?}: {k} in {body}");
        }
        if !full {
            assert_eq!(obj.len(), PUBLIC.len(), "only the public keys: {body}");
        }
    }
    // The library client always authenticates, so it keeps reading the licence.
    let c = crate::support::client_with(&sim, nessus_core::Credentials::api_keys("ak", "sk"));
    assert_eq!(c.server_properties().await.unwrap().scan_api(), Some(true));
}

/// The findings of one simulated scan of `targets` over real HTTP: `(host, plugin id,
/// port, severity)` of every `<ReportItem>` of the `.nessus` export, read with a naive
/// scan of the XML (not the simulator's own parser), in file order.
async fn findings_of(c: &nessus_core::NessusClient, targets: &[&str]) -> Vec<String> {
    let id = ScanId(
        c.create_scan(&ScanSpec::new("stable", targets.iter().copied()))
            .await
            .unwrap()
            .id,
    );
    c.launch_scan(id).await.unwrap();
    while !c
        .scan_details(id, None)
        .await
        .unwrap()
        .info
        .status
        .is_terminal()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = c
        .export_request(id, &ExportOptions::new(ExportFormat::Nessus))
        .await
        .unwrap();
    c.wait_for_export(id, &e.file).await.unwrap();
    let mut buf = Vec::new();
    c.export_download(id, &e.file, &mut buf, u64::MAX)
        .await
        .unwrap();
    let xml = String::from_utf8(buf).unwrap();
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        tag.find(&key)
            .map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for host_block in xml.split("<ReportHost ").skip(1) {
        let host = attr(&format!(" {host_block}"), "name");
        for item in host_block.split("<ReportItem ").skip(1) {
            let tag = format!(" {}", &item[..item.find('>').unwrap_or(item.len())]);
            out.push(format!(
                "{host} {} {} {}",
                attr(&tag, "pluginID"),
                attr(&tag, "port"),
                attr(&tag, "severity")
            ));
        }
    }
    out
}

/// The simulator picks a scan's results from a stable hash of its targets, not from the
/// scan id: the same target shows the same findings on every scan (with other scans in
/// between) and after a restart, in any order or case of the target list; different targets
/// still see different corpus files. Runs over the whole corpus directory.
#[tokio::test]
async fn same_targets_same_findings_on_every_scan_and_restart() {
    let start = || async {
        nessus_core::sim::Simulator::builder()
            .scan_duration(Duration::from_millis(50))
            .export_delay(Duration::from_millis(5))
            .corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus"))
            .start("127.0.0.1:0")
            .await
            .unwrap()
    };
    let sim = start().await;
    let c = client(&sim);
    let first = findings_of(&c, &["192.0.2.10"]).await;
    // A demo target always has something to triage: files with info findings only are
    // passed over while the corpus has others.
    assert!(
        first.iter().any(|f| !f.ends_with(" 0")),
        "a corpus file with findings above info was chosen: {first:?}"
    );
    let pair = findings_of(&c, &["192.0.2.20", "web.example"]).await;
    // Other targets: under the old round-robin consecutive scans drew consecutive files.
    let mut distinct = std::collections::BTreeSet::new();
    for last in 1..=8 {
        let t = format!("192.0.2.{last}");
        distinct.insert(findings_of(&c, &[t.as_str()]).await.join("\n"));
    }
    assert!(
        distinct.len() >= 2,
        "8 different targets all drew the same findings: the hash does not spread"
    );
    assert_eq!(findings_of(&c, &["192.0.2.10"]).await, first);
    // Reordered or re-cased targets: the same corpus file (the host names follow the
    // targets as given, so compare without them).
    let without_host = |v: Vec<String>| {
        let mut v: Vec<String> = v
            .into_iter()
            .map(|f| f.split_once(' ').map(|x| x.1.to_owned()).unwrap_or(f))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        without_host(findings_of(&c, &["WEB.example", "192.0.2.20"]).await),
        without_host(pair),
        "order and case of the targets do not choose another file"
    );
    drop(c);
    sim.shutdown().await;
    let sim = start().await;
    let c = client(&sim);
    assert_eq!(
        findings_of(&c, &["192.0.2.10"]).await,
        first,
        "the same after a restart"
    );
}

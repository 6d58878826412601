//! The client decodes the real recorded bodies in `corpus/api/` (served by wiremock), and
//! the recorded error bodies map to typed errors.

use nessus_core::{Credentials, Error, ExportStatus, NessusClient, ScanId, ScanStatus};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::support::{API_DIR, fast};

fn recording(name: &str) -> String {
    std::fs::read_to_string(format!("{API_DIR}/{name}"))
        .unwrap_or_else(|e| panic!("reading recording {name}: {e}"))
}

/// A wiremock server answering `verb route` with the recording `file` and `status`.
async fn serve(verb: &str, route: &str, status: u16, file: &str) -> (MockServer, NessusClient) {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(recording(file), "application/json"),
        )
        .mount(&server)
        .await;
    let client = fast(NessusClient::builder())
        .base_url(server.uri())
        .credentials(Credentials::api_keys("a", "b"))
        .retry(nessus_core::RetryPolicy::none())
        .build()
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn scan_lists_decode() {
    let (_s, c) = serve("GET", "/scans", 200, "vulnwhisperer-tests__GET_scans.json").await;
    let list = c.list_scans(None).await.unwrap();
    assert_eq!(list.folders.iter().find(|f| f.is_trash()).unwrap().id, 136);
    assert_eq!(list.folders.iter().find(|f| f.is_main()).unwrap().id, 137);
    assert!(list.scans.iter().all(|s| s.status == ScanStatus::Completed));

    for file in [
        "pytenable-tio__GET_scans.json",
        "vulnwhisperer-tests__tio_GET_scans.json",
    ] {
        let (_s, c) = serve("GET", "/scans", 200, file).await;
        let list = c.list_scans(None).await.unwrap();
        assert!(!list.scans.is_empty(), "{file}");
    }
}

#[tokio::test]
async fn scan_details_decode_with_progress() {
    let (_s, c) = serve(
        "GET",
        "/scans/164",
        200,
        "vulnwhisperer-tests__GET_scans_164.json",
    )
    .await;
    let d = c.scan_details(ScanId(164), None).await.unwrap();
    assert_eq!(d.info.status, ScanStatus::Completed);
    assert_eq!(d.hosts[0].scanprogresscurrent, Some(100));
    assert_eq!(d.progress(), 100);
    assert!(!d.vulnerabilities.is_empty());
    assert_eq!(d.history.len(), 1);

    for (route, file) in [
        ("/scans/175", "pytenable-tio__GET_scans_175.json"),
        ("/scans/419", "pytenable-tio__GET_scans_419_history_id.json"),
        ("/scans/68", "vulnwhisperer-tests__tio_GET_scans_68.json"),
    ] {
        let (_s, c) = serve("GET", route, 200, file).await;
        let id = route.trim_start_matches("/scans/").parse().unwrap();
        let d = c.scan_details(ScanId(id), None).await.unwrap();
        assert!(!d.info.name.is_empty(), "{file}");
    }
}

#[tokio::test]
async fn export_file_ids_are_opaque_strings() {
    // On-prem: an integer file id with a token.
    let (_s, c) = serve(
        "POST",
        "/scans/164/export",
        200,
        "vulnwhisperer-tests__POST_scans_164_export_history_id_2.json",
    )
    .await;
    let e = c
        .export_request(
            ScanId(164),
            &nessus_core::ExportOptions::new(Default::default()),
        )
        .await
        .unwrap();
    assert_eq!(e.file.as_str(), "2");
    assert_eq!(e.token.as_deref(), Some("164"));
    // Tenable.io: a string id.
    for file in [
        "vulnwhisperer-tests__tio_POST_scans_68_export_history_id_1.json",
        "pytenable-tio__POST_scans_175_export.json",
    ] {
        let (_s, c) = serve("POST", "/scans/1/export", 200, file).await;
        let e = c
            .export_request(
                ScanId(1),
                &nessus_core::ExportOptions::new(Default::default()),
            )
            .await
            .unwrap();
        assert!(e.file.as_str().starts_with("SSE-"), "{file}");
    }
    let (_s, c) = serve(
        "GET",
        "/scans/164/export/2/status",
        200,
        "vulnwhisperer-tests__GET_scans_164_export_2_status.json",
    )
    .await;
    let status = c
        .export_status(ScanId(164), &nessus_core::FileId::new("2"))
        .await
        .unwrap();
    assert_eq!(status, ExportStatus::Ready);
}

#[tokio::test]
async fn catalog_and_server_decode() {
    let (_s, c) = serve(
        "GET",
        "/editor/scan/templates",
        200,
        "pytenable-tio__GET_editor_scan_templates.json",
    )
    .await;
    assert_eq!(
        c.template_uuid("advanced").await.unwrap(),
        "ad629e16-03b6-8c1d-cef6-ef8c9dd3c658d24bd260ef5f9e66"
    );
    assert_eq!(
        c.template_uuid("basic").await.unwrap(),
        "731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65"
    );
    let (_s, c) = serve("GET", "/folders", 200, "pytenable-tio__GET_folders.json").await;
    assert_eq!(c.folder_id(None).await.unwrap(), 11);
    let (_s, c) = serve("GET", "/policies", 200, "pytenable-tio__GET_policies.json").await;
    assert!(c.policies().await.unwrap().len() > 10);
    let (_s, c) = serve(
        "GET",
        "/server/status",
        200,
        "pytenable-tio__GET_server_status.json",
    )
    .await;
    assert!(c.server_status().await.unwrap().is_ready());
    let (_s, c) = serve(
        "GET",
        "/server/properties",
        200,
        "pytenable-tio__GET_server_properties.json",
    )
    .await;
    let p = c.server_properties().await.unwrap();
    assert_eq!(p.nessus_type.as_deref(), Some("Nessus Cloud"));
    assert_eq!(
        p.scan_api(),
        None,
        "the cloud recording has no scan_api switch"
    );
    let (_s, c) = serve("GET", "/session", 200, "pytenable-tio__GET_session.json").await;
    assert_eq!(
        c.session().await.unwrap().username,
        "test_admin@pytenable.io"
    );
}

#[tokio::test]
async fn session_login_uses_recorded_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/session"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            recording("vulnwhisperer-tests__POST_session.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scans"))
        .and(wiremock::matchers::header("X-Cookie", "token=1337"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            recording("vulnwhisperer-tests__GET_scans.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let c = fast(NessusClient::builder())
        .base_url(server.uri())
        .credentials(Credentials::session("admin", "pw"))
        .build()
        .unwrap();
    assert_eq!(c.list_scans(None).await.unwrap().scans.len(), 2);
    assert_eq!(c.list_scans(None).await.unwrap().scans.len(), 2);
}

/// Data-driven: a recorded (or documented) error body with its status maps to a typed
/// error with Nessus's own message.
async fn check_error(status: u16, body: &str, expect: impl Fn(&Error) -> bool) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scans"))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json"),
        )
        .mount(&server)
        .await;
    let c = fast(NessusClient::builder())
        .base_url(server.uri())
        .credentials(Credentials::api_keys("a", "b"))
        .retry(nessus_core::RetryPolicy::none())
        .build()
        .unwrap();
    let err = c.list_scans(None).await.unwrap_err();
    assert!(expect(&err), "{status} {body}: got {err:?}");
}

#[tokio::test]
async fn recorded_error_bodies_map_to_typed_errors() {
    let msg = |status: u16, text: &'static str| move |e: &Error| matches!(e, Error::Api { status: s, message, .. } if *s == status && message == text);
    check_error(
        400,
        &recording("pytenable-tio__ERR400_GET_scans_1_attachments_1.json"),
        msg(400, "Invalid 'key' field: invalid key format"),
    )
    .await;
    check_error(
        403,
        &recording("pytenable-tio__ERR403_GET_scanners_131712_scans.json"),
        msg(403, "Insufficient scope"),
    )
    .await;
    check_error(
        404,
        &recording("pytenable-tio__ERR404_GET_scans_583_not_found.json"),
        msg(404, "Scan not found"),
    )
    .await;
    // Bodies quoted in nessus-api.md §3 (recorded in issue threads).
    check_error(
        409,
        r#"{"error":"Can not export running scans"}"#,
        msg(409, "Can not export running scans"),
    )
    .await;
    check_error(
        405,
        r#"{"error":"The requested method is not allowed for this URL"}"#,
        msg(405, "The requested method is not allowed for this URL"),
    )
    .await;
    check_error(412, r#"{"error":"API is not available"}"#, |e| {
        matches!(e, Error::ScanApiDisabled { .. })
            && e.to_string()
                .contains("the scan API is disabled on this Nessus license")
    })
    .await;
    check_error(
        401,
        r#"{"error":"Invalid Credentials"}"#,
        |e| matches!(e, Error::Unauthorized { message, .. } if message == "Invalid Credentials"),
    )
    .await;
    check_error(503, "", |e| e.is_retryable() && e.status() == Some(503)).await;
}

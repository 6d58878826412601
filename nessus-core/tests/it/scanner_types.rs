//! The `Scanner` trait is object safe and its value types behave.

use std::sync::Arc;

use nessus_core::{ExportFormat, ScanSpec, Scanner, SshCredentials};

#[test]
fn scanner_is_object_safe_and_spec_builds() {
    fn takes(_: Option<Arc<dyn Scanner>>) {}
    takes(None);
    let spec = ScanSpec::new("mcp-1", ["192.0.2.1", "192.0.2.2"])
        .template("basic")
        .credentials(SshCredentials::password("root", "pw"));
    assert_eq!(spec.targets.len(), 2);
    assert_eq!(spec.template, "basic");
    assert_eq!(ExportFormat::default().as_str(), "nessus");
}

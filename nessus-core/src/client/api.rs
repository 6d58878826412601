//! Endpoints: server, session, editor, policies, folders, scanners and scans.

use serde_json::{Value, json};

use super::{NessusClient, request::Call};
use crate::{
    error::{Error, Result},
    models::{
        CreatedScan, CreatedScanEnvelope, Folder, FolderList, LaunchResponse, Policy, PolicyList,
        ScanDetails, ScanList, ScannerInfo, ScannerList, ServerProperties, ServerStatus,
        SessionInfo, Template, TemplateList,
    },
    scanner::{ScanId, ScanSpec},
};

impl NessusClient {
    /// `GET /server/status` (no authentication needed).
    pub async fn server_status(&self) -> Result<ServerStatus> {
        self.json(Call::get("/server/status")).await
    }

    /// `GET /server/properties`: version, licence and `scan_api`.
    pub async fn server_properties(&self) -> Result<ServerProperties> {
        self.json(Call::get("/server/properties")).await
    }

    /// Checks up front that this client may control scans: fails with
    /// [`Error::ScanApiDisabled`] when the licence has `scan_api: false` and the client is
    /// not in web-UI token mode, instead of letting the first create fail with a 412.
    /// Unknown (`scan_api` absent, e.g. Tenable.io) counts as allowed.
    pub async fn ensure_scan_control(&self) -> Result<()> {
        let props = self.server_properties().await?;
        if props.scan_api() == Some(false) && !self.inner.auth.is_web_ui() {
            return Err(Error::ScanApiDisabled {
                endpoint: "GET /server/properties (license.features.scan_api = false)".into(),
            });
        }
        Ok(())
    }

    /// `GET /session`: the user behind the credentials.
    pub async fn session(&self) -> Result<SessionInfo> {
        self.json(Call::get("/session")).await
    }

    /// `DELETE /session` (session modes only); the next call logs in again.
    pub async fn logout(&self) -> Result<()> {
        if self.inner.auth.uses_session() && self.inner.auth.session().is_some() {
            self.bytes(Call::delete("/session")).await?;
            self.inner.auth.clear_session();
        }
        Ok(())
    }

    /// `GET /editor/scan/templates`.
    pub async fn scan_templates(&self) -> Result<Vec<Template>> {
        Ok(self
            .json::<TemplateList>(Call::get("/editor/scan/templates"))
            .await?
            .templates)
    }

    /// The UUID of the scan template named `name` (`basic`, `advanced`, …), looked up
    /// once and cached.
    pub async fn template_uuid(&self, name: &str) -> Result<String> {
        if let Some(uuid) = self.discovered().templates.get(name) {
            return Ok(uuid.clone());
        }
        let templates = self.scan_templates().await?;
        let found = templates
            .iter()
            .find(|t| t.name == name)
            .or_else(|| templates.iter().find(|t| t.title.as_deref() == Some(name)))
            .map(|t| t.uuid.clone());
        let mut d = self.discovered();
        for t in &templates {
            d.templates.insert(t.name.clone(), t.uuid.clone());
        }
        found.ok_or_else(|| Error::NotFound {
            kind: "scan template",
            name: name.to_owned(),
            available: templates.iter().map(|t| t.name.clone()).collect(),
        })
    }

    /// `GET /policies`.
    pub async fn policies(&self) -> Result<Vec<Policy>> {
        Ok(self
            .json::<PolicyList>(Call::get("/policies"))
            .await?
            .policies)
    }

    /// `GET /folders`.
    pub async fn folders(&self) -> Result<Vec<Folder>> {
        Ok(self
            .json::<FolderList>(Call::get("/folders"))
            .await?
            .folders)
    }

    /// `GET /scanners` (admin only on some versions).
    pub async fn scanners(&self) -> Result<Vec<ScannerInfo>> {
        Ok(self
            .json::<ScannerList>(Call::get("/scanners"))
            .await?
            .scanners)
    }

    /// The id of the folder named `name`, or of the main folder ("My Scans") for `None`.
    pub async fn folder_id(&self, name: Option<&str>) -> Result<u64> {
        {
            let d = self.discovered();
            let cached = match name {
                None => d.main_folder,
                Some(n) => d.folders.get(n).copied(),
            };
            if let Some(id) = cached {
                return Ok(id);
            }
        }
        let folders = self.folders().await?;
        let found = match name {
            None => folders.iter().find(|f| f.is_main()),
            Some(n) => folders.iter().find(|f| f.name == n && !f.is_trash()),
        }
        .map(|f| f.id);
        let mut d = self.discovered();
        d.main_folder = folders.iter().find(|f| f.is_main()).map(|f| f.id);
        for f in &folders {
            d.folders.insert(f.name.clone(), f.id);
        }
        found.ok_or_else(|| Error::NotFound {
            kind: "folder",
            name: name.unwrap_or("(main folder)").to_owned(),
            available: folders.iter().map(|f| f.name.clone()).collect(),
        })
    }

    /// The local scanner's id; `None` when `/scanners` is not readable (non-admin users),
    /// in which case Nessus picks its default scanner.
    async fn local_scanner_id(&self) -> Option<u64> {
        if let Some(id) = self.discovered().scanner_id {
            return id;
        }
        let id = match self.scanners().await {
            Ok(list) => list
                .iter()
                .find(|s| s.kind.as_deref() == Some("local"))
                .or(list.first())
                .and_then(|s| s.id),
            Err(e) => {
                tracing::debug!(error = %e, "could not list scanners; letting Nessus choose");
                None
            }
        };
        self.discovered().scanner_id = Some(id);
        id
    }

    /// `GET /scans`, optionally limited to one folder.
    pub async fn list_scans(&self, folder_id: Option<u64>) -> Result<ScanList> {
        let mut call = Call::get("/scans");
        if let Some(f) = folder_id {
            call = call.query("folder_id", f);
        }
        self.json(call).await
    }

    /// `GET /scans/{id}`, optionally of one run.
    pub async fn scan_details(&self, id: ScanId, history_id: Option<u64>) -> Result<ScanDetails> {
        let mut call = Call::get(format!("/scans/{id}"));
        if let Some(h) = history_id {
            call = call.query("history_id", h);
        }
        self.json(call).await
    }

    /// `POST /scans`: creates (never launches) a scan. The template, folder and scanner
    /// are discovered by name. Not retried: on an error whose outcome is unknown, look the
    /// scan up by name.
    pub async fn create_scan(&self, spec: &ScanSpec) -> Result<CreatedScan> {
        if let Some(c) = &spec.credentials {
            c.validate()?;
        }
        if spec.targets.iter().all(|t| t.trim().is_empty()) {
            return Err(Error::client_config(format!(
                "scan {:?} has no targets",
                spec.name
            )));
        }
        let template = self.template_uuid(&spec.template).await?;
        let folder_id = self.folder_id(spec.folder.as_deref()).await?;
        let scanner_id = self.local_scanner_id().await;
        let mut settings = json!({
            "name": spec.name,
            "description": spec.description.as_deref().unwrap_or(&spec.name),
            "text_targets": spec.targets.join("\n"),
            "folder_id": folder_id,
            "enabled": false,
            "launch_now": false,
            "launch": "ON_DEMAND",
        });
        if let Some(s) = scanner_id {
            settings["scanner_id"] = json!(s);
        }
        let mut body = json!({"uuid": template, "settings": settings});
        if let Some(c) = &spec.credentials {
            body["credentials"] = c.to_nessus_json();
        }
        let env: CreatedScanEnvelope = self.json(Call::post("/scans", body)).await?;
        Ok(env.scan)
    }

    /// `POST /scans/{id}/launch`; returns the run UUID. Not retried.
    pub async fn launch_scan(&self, id: ScanId) -> Result<String> {
        let path = format!("/scans/{id}/launch");
        let endpoint = format!("POST {path}");
        let r: LaunchResponse = self.json(Call::post(path, json!({}))).await?;
        r.scan_uuid
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::decode(&endpoint, "no scan_uuid in the launch response"))
    }

    /// `POST /scans/{id}/stop`.
    pub async fn stop_scan(&self, id: ScanId) -> Result<()> {
        self.control(id, "stop").await
    }

    /// `POST /scans/{id}/pause`.
    pub async fn pause_scan(&self, id: ScanId) -> Result<()> {
        self.control(id, "pause").await
    }

    /// `POST /scans/{id}/resume`.
    pub async fn resume_scan(&self, id: ScanId) -> Result<()> {
        self.control(id, "resume").await
    }

    async fn control(&self, id: ScanId, action: &str) -> Result<()> {
        // The answer body is empty or trivial depending on the version; never required.
        self.bytes(Call::post(
            format!("/scans/{id}/{action}"),
            Value::Object(Default::default()),
        ))
        .await
        .map(drop)
    }

    /// `DELETE /scans/{id}`.
    pub async fn delete_scan(&self, id: ScanId) -> Result<()> {
        self.bytes(Call::delete(format!("/scans/{id}")))
            .await
            .map(drop)
    }

    fn discovered(&self) -> std::sync::MutexGuard<'_, super::Discovered> {
        self.inner
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

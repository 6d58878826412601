//! The simulator's in-memory Nessus: scans, runs, exports, sessions and counters.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};

use super::{
    corpus::{Corpus, CorpusFile},
    faults::{Counters, Faults},
};

/// Lifecycle control requested on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    None,
    Stop(Instant),
    Pause(Instant),
    Paused,
    Resume(Instant),
    Aborted,
}

#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) uuid: String,
    pub(crate) history_id: u64,
    pub(crate) start_epoch: i64,
    pub(crate) end_epoch: Option<i64>,
    /// Scan time accumulated before the current running stretch.
    accumulated: Duration,
    running_since: Option<Instant>,
    control: Control,
    final_status: Option<&'static str>,
    pub(crate) alt_targets: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) text_targets: String,
    pub(crate) targets: Vec<String>,
    pub(crate) folder_id: u64,
    pub(crate) policy_title: String,
    pub(crate) created: i64,
    pub(crate) modified: i64,
    pub(crate) runs: Vec<Run>,
    pub(crate) results: Arc<CorpusFile>,
    /// First accepted stop, epoch milliseconds (what `ScanRecord` reports).
    pub(crate) stop_requested_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Export {
    pub(crate) scan_id: u64,
    pub(crate) token: String,
    pub(crate) report: ExportReport,
    pub(crate) ready_at: Instant,
    pub(crate) failed: bool,
}

/// What an export renders when it is downloaded. Rendering at download rather than at
/// request keeps no report bytes between the two: kept bytes (about 1 MB a report)
/// made a long `--demo` run grow by that much per completed scan.
#[derive(Debug, Clone)]
pub(crate) struct ExportReport {
    pub(crate) results: Arc<CorpusFile>,
    pub(crate) format: String,
    pub(crate) chapters: String,
    pub(crate) name: String,
    pub(crate) text_targets: String,
    pub(crate) targets: Vec<String>,
}

impl ExportReport {
    pub(crate) fn render(&self) -> Vec<u8> {
        match self.format.as_str() {
            "csv" => self.results.render_csv(&self.targets),
            "html" | "pdf" => self
                .results
                .render_html(&self.name, &self.targets, &self.chapters),
            _ => self
                .results
                .render_nessus(&self.name, &self.targets, &self.text_targets),
        }
    }
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct SimSettings {
    pub(crate) scan_duration: Duration,
    pub(crate) api_keys: Option<(String, String)>,
    pub(crate) login: Option<(String, String)>,
    pub(crate) ui_token: String,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) export_delay: Duration,
    pub(crate) corpus_source: std::path::PathBuf,
}

pub(crate) struct Session {
    pub(crate) username: String,
    pub(crate) last_used: Instant,
}

pub(crate) struct SimState {
    pub(crate) settings: SimSettings,
    pub(crate) faults: Faults,
    pub(crate) counters: Counters,
    pub(crate) scans: BTreeMap<u64, Scan>,
    pub(crate) exports: HashMap<u64, Export>,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) folders: Vec<(u64, String, &'static str)>,
    pub(crate) next_scan_id: u64,
    pub(crate) next_history_id: u64,
    /// SHA-256 of every secret received in scan credentials, with a count. Secrets are
    /// never stored or logged in clear.
    pub(crate) secret_digests: HashMap<[u8; 32], u64>,
    corpus: Option<Arc<Corpus>>,
}

pub(crate) const TRASH_FOLDER: u64 = 2;
pub(crate) const MAIN_FOLDER: u64 = 3;

pub(crate) fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl SimState {
    pub(crate) fn new(settings: SimSettings, faults: Faults) -> Self {
        Self {
            settings,
            faults,
            counters: Counters::default(),
            scans: BTreeMap::new(),
            exports: HashMap::new(),
            sessions: HashMap::new(),
            folders: vec![
                (TRASH_FOLDER, "Trash".into(), "trash"),
                (MAIN_FOLDER, "My Scans".into(), "main"),
            ],
            next_scan_id: 5,
            next_history_id: 10,
            secret_digests: HashMap::new(),
            corpus: None,
        }
    }

    /// The corpus new scans draw their results from (listed on first use).
    pub(crate) fn corpus(&mut self) -> Arc<Corpus> {
        self.corpus
            .get_or_insert_with(|| Corpus::load(&self.settings.corpus_source))
            .clone()
    }

    pub(crate) fn name_counters(&mut self, name: &str) -> &mut super::faults::NameCounters {
        self.counters.by_name.entry(name.to_owned()).or_default()
    }

    /// Every scan with its current status, in id order.
    pub(crate) fn scan_records(&mut self) -> Vec<super::faults::ScanRecord> {
        let (now, duration, transition) = (
            Instant::now(),
            self.settings.scan_duration,
            self.transition(),
        );
        self.scans
            .values_mut()
            .map(|scan| super::faults::ScanRecord {
                id: scan.id,
                name: scan.name.clone(),
                text_targets: scan.text_targets.clone(),
                status: scan.status(now, duration, transition).0.to_owned(),
                stop_requested_ms: scan.stop_requested_ms,
            })
            .collect()
    }

    /// Phase transitions (stop, pause, resume) take a tenth of a scan, within bounds.
    pub(crate) fn transition(&self) -> Duration {
        (self.settings.scan_duration / 10).clamp(Duration::from_millis(10), Duration::from_secs(2))
    }
}

impl Run {
    pub(crate) fn new(uuid: String, history_id: u64, alt_targets: bool) -> Self {
        Self {
            uuid,
            history_id,
            start_epoch: now_epoch(),
            end_epoch: None,
            accumulated: Duration::ZERO,
            running_since: Some(Instant::now()),
            control: Control::None,
            final_status: None,
            alt_targets,
        }
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.accumulated + self.running_since.map_or(Duration::ZERO, |t| now - t)
    }

    fn finish(&mut self, status: &'static str, now: Instant) {
        self.accumulated = self.elapsed(now);
        self.running_since = None;
        self.final_status = Some(status);
        self.end_epoch = Some(now_epoch());
    }

    /// Advances the run to `now` and returns its Nessus status and progress (0–100).
    pub(crate) fn advance(
        &mut self,
        now: Instant,
        duration: Duration,
        transition: Duration,
    ) -> (&'static str, u64) {
        if let Some(s) = self.final_status {
            return (s, self.progress(now, duration));
        }
        match self.control {
            Control::Aborted => {
                self.finish("aborted", now);
                return ("aborted", self.progress(now, duration));
            }
            Control::Stop(at) => {
                if now - at >= transition {
                    self.finish("canceled", now);
                    return ("canceled", self.progress(now, duration));
                }
                return ("stopping", self.progress(now, duration));
            }
            Control::Pause(at) => {
                if now - at >= transition {
                    self.control = Control::Paused;
                    return ("paused", self.progress(now, duration));
                }
                return ("pausing", self.progress(now, duration));
            }
            Control::Paused => return ("paused", self.progress(now, duration)),
            Control::Resume(at) => {
                if now - at < transition {
                    return ("resuming", self.progress(now, duration));
                }
                self.control = Control::None;
                self.running_since = Some(at + transition);
            }
            Control::None => {}
        }
        let elapsed = self.elapsed(now);
        if elapsed >= duration {
            self.finish("completed", now);
            ("completed", 100)
        } else if elapsed < duration / 10 {
            ("pending", 0)
        } else {
            ("running", self.progress(now, duration))
        }
    }

    fn progress(&self, now: Instant, duration: Duration) -> u64 {
        if self.final_status == Some("completed") {
            return 100;
        }
        let e = self.elapsed(now).as_millis() as u64;
        let d = (duration.as_millis() as u64).max(1);
        (e * 100 / d).min(99)
    }

    pub(crate) fn is_active(
        &mut self,
        now: Instant,
        duration: Duration,
        transition: Duration,
    ) -> bool {
        !matches!(
            self.advance(now, duration, transition).0,
            "completed" | "canceled" | "aborted"
        )
    }

    pub(crate) fn stop(&mut self, now: Instant) {
        self.accumulated = self.elapsed(now);
        self.running_since = None;
        self.control = Control::Stop(now);
    }

    pub(crate) fn pause(&mut self, now: Instant) {
        self.accumulated = self.elapsed(now);
        self.running_since = None;
        self.control = Control::Pause(now);
    }

    pub(crate) fn resume(&mut self, now: Instant) {
        self.control = Control::Resume(now);
    }

    pub(crate) fn kill(&mut self) {
        self.control = Control::Aborted;
    }
}

impl Scan {
    /// Status string and progress of the latest run (`empty` when never launched).
    pub(crate) fn status(
        &mut self,
        now: Instant,
        duration: Duration,
        transition: Duration,
    ) -> (&'static str, u64) {
        match self.runs.last_mut() {
            None => ("empty", 0),
            Some(run) => run.advance(now, duration, transition),
        }
    }
}

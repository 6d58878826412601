//! Scan status strings (nessus-api.md §6.8) as a typed enum.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The status of a Nessus scan, as reported in `info.status`, `scans[].status` and
/// `history[].status`. Unknown strings are kept verbatim in [`ScanStatus::Other`] and
/// treated as "not finished".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScanStatus {
    /// `empty`: created, never launched.
    Empty,
    /// `pending`: launched, starting.
    Pending,
    /// `running`.
    Running,
    /// `pausing`.
    Pausing,
    /// `paused`.
    Paused,
    /// `resuming`.
    Resuming,
    /// `stopping`.
    Stopping,
    /// `processing` (Manager/cloud): results are being processed.
    Processing,
    /// `canceled`: stopped by a user.
    Canceled,
    /// `aborted`: failed, killed or timed out.
    Aborted,
    /// `completed`.
    Completed,
    /// `imported`: created by import, never runnable.
    Imported,
    /// `stopped` (seen only in the predecessor's mapping): treated as finished.
    Stopped,
    /// Any other string.
    Other(String),
}

impl ScanStatus {
    /// Parses a Nessus status string; never fails.
    pub fn from_nessus(s: &str) -> Self {
        match s {
            "empty" => Self::Empty,
            "pending" => Self::Pending,
            "running" => Self::Running,
            "pausing" => Self::Pausing,
            "paused" => Self::Paused,
            "resuming" => Self::Resuming,
            "stopping" => Self::Stopping,
            "processing" => Self::Processing,
            "canceled" | "cancelled" => Self::Canceled,
            "aborted" => Self::Aborted,
            "completed" => Self::Completed,
            "imported" => Self::Imported,
            "stopped" => Self::Stopped,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The Nessus string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Empty => "empty",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Resuming => "resuming",
            Self::Stopping => "stopping",
            Self::Processing => "processing",
            Self::Canceled => "canceled",
            Self::Aborted => "aborted",
            Self::Completed => "completed",
            Self::Imported => "imported",
            Self::Stopped => "stopped",
            Self::Other(s) => s,
        }
    }

    /// The run is over: `completed`, `canceled`, `aborted`, `imported`, `stopped`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Canceled | Self::Aborted | Self::Imported | Self::Stopped
        )
    }

    /// The run finished with results worth exporting.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Completed)
    }

    /// A run is under way (launched and not finished, including paused).
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Pending
                | Self::Running
                | Self::Pausing
                | Self::Paused
                | Self::Resuming
                | Self::Stopping
                | Self::Processing
        )
    }
}

impl fmt::Display for ScanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ScanStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ScanStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        Ok(s.map_or(Self::Other(String::new()), |s| Self::from_nessus(&s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_strings_round_trip() {
        for s in [
            "empty",
            "pending",
            "running",
            "pausing",
            "paused",
            "resuming",
            "stopping",
            "processing",
            "canceled",
            "aborted",
            "completed",
            "imported",
            "stopped",
            "initializing",
        ] {
            assert_eq!(ScanStatus::from_nessus(s).as_str(), s);
        }
        assert!(ScanStatus::from_nessus("canceled").is_terminal());
        assert!(!ScanStatus::from_nessus("publishing").is_terminal());
        assert!(ScanStatus::from_nessus("paused").is_active());
    }
}

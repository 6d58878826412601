//! What an OAuth access token lets its holder do: four capabilities, each granted by
//! one scope the operator names in `auth.oauth.scopes`.
//!
//! A principal authenticated some other way (a static token, stdio, the token-less
//! loopback server, the admin CLI) carries no scopes and is limited only by the
//! config's `principals` section.

use std::fmt;

/// A capability a scope grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Status, results, listings (`nessus:read` by default).
    Read,
    /// Untrusted (network) scans, imports and cancelling one's own scans (`nessus:scan`).
    Scan,
    /// Credentialed scans (`nessus:scan:authenticated`).
    Authenticated,
    /// Everyone's tasks and the dead-letter queue (`nessus:admin`).
    Admin,
}

impl Scope {
    /// Every capability, in the order read, scan, authenticated, admin.
    pub const ALL: [Scope; 4] = [Self::Read, Self::Scan, Self::Authenticated, Self::Admin];

    /// The capability's name (the key under `auth.oauth.scopes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Scan => "scan",
            Self::Authenticated => "authenticated",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Scan => 2,
            Self::Authenticated => 4,
            Self::Admin => 8,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The capabilities one token was granted.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// No capability.
    pub fn empty() -> Self {
        Self(0)
    }

    /// Every capability.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// This set with `scope` added.
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    /// Whether `scope` is granted.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The granted capabilities, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A use case of the service, for the one table of which capability it needs
/// ([`Operation::scopes`]). Frontends use it to hide what a token cannot call; the
/// service checks it on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Task status, listings, queue and pool status, results, summaries, exports, diffs.
    Read,
    /// Submit an untrusted (network) scan.
    SubmitUntrusted,
    /// Submit a credentialed scan.
    SubmitAuthenticated,
    /// Import a `.nessus` file as a completed task.
    Import,
    /// Cancel a scan one may see.
    Cancel,
    /// Dead-letter queue actions (and triage of another principal's finding).
    Admin,
    /// Mark (or clear) one's own finding false positive or accepted risk.
    Triage,
    /// Approve or reject a scan waiting for approval, list the waiting ones (admin).
    ReviewScan,
    /// Create, pause, resume or delete a schedule one owns (reading them is `Read`).
    ManageSchedule,
}

impl Operation {
    /// The capabilities any one of which allows this operation; the first is the one a
    /// refusal asks for.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Self::Read => &[Scope::Read],
            Self::SubmitUntrusted | Self::Import => &[Scope::Scan],
            Self::SubmitAuthenticated => &[Scope::Authenticated],
            // Whoever may start a scan may stop it.
            Self::Cancel => &[Scope::Scan, Scope::Authenticated],
            Self::Admin => &[Scope::Admin],
            // A judgement on one's own findings modifies state: the scan capability.
            Self::Triage => &[Scope::Scan],
            Self::ReviewScan => &[Scope::Admin],
            Self::ManageSchedule => &[Scope::Scan],
        }
    }

    /// Whether `granted` allows this operation.
    pub fn allowed_by(self, granted: Scopes) -> bool {
        self.scopes().iter().any(|s| granted.contains(*s))
    }
}

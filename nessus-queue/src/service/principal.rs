//! Who is calling, and what they may do.
//!
//! A frontend authenticates the caller (a bearer token, the stdio transport, a local
//! admin command) and hands the service a [`Principal`]. What that principal may do
//! comes from the config's `principals` section ([`PrincipalSettings`]), read at each
//! call so a reload applies at once. The stdio transport and a token-less loopback
//! server are the only implicit admins; a token may not claim their reserved names.
//!
//! A caller with an OAuth access token also carries the [`Scopes`] its token granted:
//! they narrow what the config allows ([`Operation::scopes`] is the one table), and only
//! the admin scope makes it an admin. The service checks them on every path and notes
//! the first refusal ([`Principal::refused_scope`]) so an HTTP frontend can answer
//! `403 insufficient_scope`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use nessus_core::{Config, PrincipalSettings};

use crate::error::{Error, Result};
use crate::scope::{Operation, Scope, Scopes};

/// Names a token may not carry: they denote the implicit admins.
pub const RESERVED_PRINCIPALS: [&str; 2] = ["local", "anonymous"];

/// An authenticated caller.
#[derive(Clone)]
pub struct Principal {
    name: Arc<str>,
    implicit_admin: bool,
    /// The scopes of an OAuth access token; `None` for every other kind of caller.
    scopes: Option<Scopes>,
    /// The first capability the service refused this caller (OAuth callers only; one
    /// per request, since the frontend builds the principal per request).
    refused: Option<Arc<OnceLock<Scope>>>,
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.implicit_admin == other.implicit_admin
            && self.scopes == other.scopes
    }
}

impl Eq for Principal {}

impl Hash for Principal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.implicit_admin.hash(state);
        self.scopes.hash(state);
    }
}

impl Principal {
    /// A caller authenticated by a token (or named on the admin CLI's `--principal`):
    /// its rights come from the config. Never an implicit admin, whatever its name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            implicit_admin: false,
            scopes: None,
            refused: None,
        }
    }

    /// A caller authenticated by an OAuth access token that granted `scopes`: the
    /// config's rights for `name`, narrowed by the scopes.
    pub fn with_scopes(name: impl Into<Arc<str>>, scopes: Scopes) -> Self {
        Self {
            name: name.into(),
            implicit_admin: false,
            scopes: Some(scopes),
            refused: Some(Arc::default()),
        }
    }

    /// The scopes of an OAuth caller's token (`None` for every other caller).
    pub fn scopes(&self) -> Option<Scopes> {
        self.scopes
    }

    /// Whether this caller's scopes allow `op` (always, for a caller without scopes).
    /// The config's rights are checked by the operation itself.
    pub fn may(&self, op: Operation) -> bool {
        self.scopes.is_none_or(|s| op.allowed_by(s))
    }

    /// The first capability the service refused this caller, if any.
    pub fn refused_scope(&self) -> Option<Scope> {
        self.refused.as_ref().and_then(|r| r.get().copied())
    }

    /// `Ok` when the scopes allow `op`; else notes the refusal and answers
    /// `InsufficientScope` naming the capability that would allow it.
    pub(crate) fn authorize(&self, op: Operation, what: &'static str) -> Result<()> {
        if self.may(op) {
            return Ok(());
        }
        let scope = op.scopes()[0];
        if let Some(r) = &self.refused {
            // Only the first refusal is kept; a later one in the same request changes nothing.
            let _ = r.set(scope);
        }
        Err(Error::InsufficientScope {
            principal: self.name.to_string(),
            what,
            scope,
        })
    }

    /// The stdio transport's caller: the local user who started the server.
    pub fn local() -> Self {
        Self {
            name: Arc::from(RESERVED_PRINCIPALS[0]),
            implicit_admin: true,
            scopes: None,
            refused: None,
        }
    }

    /// The caller of a token-less server bound to loopback.
    pub fn anonymous() -> Self {
        Self {
            name: Arc::from(RESERVED_PRINCIPALS[1]),
            implicit_admin: true,
            scopes: None,
            refused: None,
        }
    }

    /// Whether `name` is reserved for an implicit admin (a token may not use it).
    pub fn is_reserved(name: &str) -> bool {
        RESERVED_PRINCIPALS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name.trim()))
    }

    /// The principal's name (what tasks record as their owner).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// What this principal may do under `config`.
    pub fn settings(&self, config: &Config) -> PrincipalSettings {
        if self.implicit_admin {
            return PrincipalSettings::admin();
        }
        let settings = config.principal(&self.name);
        match self.scopes {
            // The identity provider decides the admin role of an OAuth caller.
            Some(s) => settings.with_admin(s.contains(Scope::Admin)),
            None => settings,
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scopes {
            Some(s) => write!(f, "Principal({}, scopes {s:?})", self.name),
            None => write!(f, "Principal({})", self.name),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::Principal;

    #[test]
    fn a_token_named_like_an_implicit_admin_is_not_one() {
        let config: nessus_core::Config = "".parse().unwrap();
        for name in ["local", "anonymous"] {
            assert!(Principal::is_reserved(name));
            assert!(!Principal::new(name).settings(&config).is_admin());
        }
        assert!(Principal::is_reserved(" Local "));
        assert!(!Principal::is_reserved("alice"));
        assert!(Principal::local().settings(&config).is_admin());
        assert!(Principal::anonymous().settings(&config).is_admin());
    }

    #[test]
    fn scopes_narrow_and_only_the_admin_scope_makes_an_admin() {
        use crate::scope::{Operation, Scope, Scopes};
        let config: nessus_core::Config =
            "principals:\n  boss:\n    admin: true\n".parse().unwrap();
        let read = Scopes::empty().with(Scope::Read);
        let cases: [(Scopes, Operation, bool); 8] = [
            (read, Operation::Read, true),
            (read, Operation::SubmitUntrusted, false),
            (Scopes::empty().with(Scope::Scan), Operation::Cancel, true),
            (
                Scopes::empty().with(Scope::Authenticated),
                Operation::Cancel,
                true,
            ),
            (
                Scopes::empty().with(Scope::Scan),
                Operation::SubmitAuthenticated,
                false,
            ),
            (Scopes::empty().with(Scope::Scan), Operation::Import, true),
            (Scopes::empty().with(Scope::Admin), Operation::Read, false),
            (Scopes::all(), Operation::Admin, true),
        ];
        for (scopes, op, want) in cases {
            let p = Principal::with_scopes("alice", scopes);
            assert_eq!(p.may(op), want, "{scopes:?} {op:?}");
            assert_eq!(p.authorize(op, "x").is_ok(), want);
            assert_eq!(p.refused_scope().is_some(), !want);
        }
        assert!(Principal::new("alice").may(Operation::Admin));
        assert!(Principal::new("boss").settings(&config).is_admin());
        assert!(
            !Principal::with_scopes("boss", read)
                .settings(&config)
                .is_admin()
        );
        assert!(
            Principal::with_scopes("alice", Scopes::all())
                .settings(&config)
                .is_admin()
        );
    }
}

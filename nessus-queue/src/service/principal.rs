//! Who is calling, and what they may do.
//!
//! A frontend authenticates the caller (a bearer token, the stdio transport, a local
//! admin command) and hands the service a [`Principal`]. What that principal may do
//! comes from the config's `principals` section ([`PrincipalSettings`]), read at each
//! call so a reload applies at once. The stdio transport and a token-less loopback
//! server are the only implicit admins; a token may not claim their reserved names.

use std::fmt;
use std::sync::Arc;

use nessus_core::{Config, PrincipalSettings};

/// Names a token may not carry: they denote the implicit admins.
pub const RESERVED_PRINCIPALS: [&str; 2] = ["local", "anonymous"];

/// An authenticated caller.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    name: Arc<str>,
    implicit_admin: bool,
}

impl Principal {
    /// A caller authenticated by a token (or named on the admin CLI's `--principal`):
    /// its rights come from the config. Never an implicit admin, whatever its name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            implicit_admin: false,
        }
    }

    /// The stdio transport's caller: the local user who started the server.
    pub fn local() -> Self {
        Self {
            name: Arc::from(RESERVED_PRINCIPALS[0]),
            implicit_admin: true,
        }
    }

    /// The caller of a token-less server bound to loopback.
    pub fn anonymous() -> Self {
        Self {
            name: Arc::from(RESERVED_PRINCIPALS[1]),
            implicit_admin: true,
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
            PrincipalSettings::admin()
        } else {
            config.principal(&self.name)
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({})", self.name)
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
}

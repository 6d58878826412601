//! TLS trust settings and how they map onto reqwest.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// How the client trusts the Nessus server's certificate. The default verifies against
/// the platform's trust store.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM file with the CA(s) that issued the Nessus certificate. Alone it replaces the
    /// system roots (`tls_certs_only`), which is right for a private scanner CA.
    pub ca_file: Option<PathBuf>,
    /// PEM CA bundle given in memory (e.g. the simulator's CA); same meaning as `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// Keep the system roots as well as the configured CA (`tls_certs_merge`).
    pub merge_system_roots: bool,
    /// Accept a certificate whose name does not match the URL host. Only allowed with a
    /// CA (reqwest refuses it otherwise).
    pub accept_invalid_hostnames: bool,
    /// Accept any certificate. Logged as a warning every time a client is built.
    pub insecure: bool,
}

impl TlsOptions {
    /// Trust the CA(s) in this PEM file.
    pub fn ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(path.into()),
            ..Self::default()
        }
    }

    /// Trust the CA(s) in this PEM bundle.
    pub fn ca_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: Some(pem.into()),
            ..Self::default()
        }
    }

    /// Accept any certificate (logged loudly).
    pub fn insecure() -> Self {
        Self {
            insecure: true,
            ..Self::default()
        }
    }

    /// Also trust the CA(s) in this PEM file.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Keep the system roots next to the configured CA.
    #[must_use]
    pub fn with_system_roots(mut self, merge: bool) -> Self {
        self.merge_system_roots = merge;
        self
    }

    /// Accept certificates whose name does not match the host (needs a CA).
    #[must_use]
    pub fn with_accept_invalid_hostnames(mut self, accept: bool) -> Self {
        self.accept_invalid_hostnames = accept;
        self
    }

    /// Accept any certificate (logged as a warning at every build).
    #[must_use]
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    pub(crate) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
        base_url: &str,
    ) -> Result<reqwest::ClientBuilder> {
        let mut pem = Vec::new();
        if let Some(path) = &self.ca_file {
            let bytes = std::fs::read(path).map_err(|source| Error::Io {
                action: "reading TLS CA file",
                path: path.clone(),
                source,
            })?;
            pem.extend_from_slice(&bytes);
            pem.push(b'\n');
        }
        if let Some(bytes) = &self.ca_pem {
            pem.extend_from_slice(bytes);
        }
        let has_ca = !pem.is_empty();
        if has_ca {
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::ClientConfig {
                    reason: "the TLS CA bundle is not valid PEM".into(),
                    source: Some(Box::new(e)),
                })?;
            if certs.is_empty() {
                return Err(Error::client_config(
                    "the TLS CA bundle contains no certificate",
                ));
            }
            builder = if self.merge_system_roots {
                builder.tls_certs_merge(certs)
            } else {
                builder.tls_certs_only(certs)
            };
        }
        if self.accept_invalid_hostnames {
            if !has_ca || self.merge_system_roots {
                return Err(Error::client_config(
                    "accept_invalid_hostnames needs a CA file and cannot be combined with \
                     merge_system_roots",
                ));
            }
            builder = builder.tls_danger_accept_invalid_hostnames(true);
        }
        if self.insecure {
            // Logged at every build, on purpose: an insecure client must never go unnoticed.
            tracing::warn!(
                base_url,
                "TLS certificate verification is DISABLED for this Nessus client (insecure = \
                 true); configure a CA file instead"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}

//! Sealing of ad-hoc scan credentials while a task waits (ChaCha20-Poly1305, task id
//! as associated data so a sealed blob cannot be replayed onto another task).

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable that may hold the 32-byte sealing key as 64 hex characters.
pub const KEY_ENV: &str = "NESSUS_QUEUE_SECRET_KEY";

/// SSH credentials supplied with a single scan request.
#[derive(Clone)]
#[non_exhaustive]
pub struct AdhocCredentials {
    /// SSH user.
    pub username: String,
    /// SSH password.
    pub password: SecretString,
    /// `Nothing`, `sudo`, `su`, ... as Nessus names it.
    pub elevate_privileges_with: String,
    /// Account to escalate to.
    pub escalation_account: Option<String>,
    /// Escalation password.
    pub escalation_password: Option<SecretString>,
}

impl AdhocCredentials {
    /// Username + password without privilege escalation.
    pub fn ssh(username: impl Into<String>, password: SecretString) -> Self {
        Self {
            username: username.into(),
            password,
            elevate_privileges_with: "Nothing".to_owned(),
            escalation_account: None,
            escalation_password: None,
        }
    }

    /// Adds privilege escalation.
    pub fn escalate(
        mut self,
        method: impl Into<String>,
        account: Option<String>,
        password: Option<SecretString>,
    ) -> Self {
        self.elevate_privileges_with = method.into();
        self.escalation_account = account;
        self.escalation_password = password;
        self
    }
}

impl std::fmt::Debug for AdhocCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdhocCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("elevate_privileges_with", &self.elevate_privileges_with)
            .field("escalation_account", &self.escalation_account)
            .field("escalation_password", &"[REDACTED]")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    u: String,
    p: String,
    e: String,
    ea: Option<String>,
    ep: Option<String>,
}

/// Holds the sealing key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([REDACTED])")
    }
}

fn secret_err(reason: impl Into<String>) -> Error {
    Error::Secret {
        reason: reason.into(),
    }
}

impl SecretBox {
    /// Builds a box from raw key bytes.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Key from [`KEY_ENV`] if set, else from `key_file`, which is created with mode
    /// 0600 and a random key on first use.
    pub fn from_env_or_file(key_file: &Path) -> Result<Self> {
        if let Ok(hex_key) = std::env::var(KEY_ENV) {
            let bytes = hex::decode(hex_key.trim())
                .map_err(|_| secret_err(format!("{KEY_ENV} is not hex")))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| secret_err(format!("{KEY_ENV} must be 64 hex characters")))?;
            return Ok(Self::from_key(key));
        }
        match std::fs::read(key_file) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    secret_err(format!("{} must hold exactly 32 bytes", key_file.display()))
                })?;
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_key_file(key_file, &rand::random())?;
                // Re-read: if another process won the race, its key is the one on disk.
                Self::from_env_or_file(key_file)
            }
            Err(e) => Err(secret_err(format!(
                "cannot read {}: {e}",
                key_file.display()
            ))),
        }
    }

    /// Seals credentials for `task_id`.
    pub fn seal(&self, task_id: &str, c: &AdhocCredentials) -> Result<Vec<u8>> {
        let wire = Wire {
            u: c.username.clone(),
            p: c.password.expose_secret().to_owned(),
            e: c.elevate_privileges_with.clone(),
            ea: c.escalation_account.clone(),
            ep: c
                .escalation_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
        };
        let plain = serde_json::to_vec(&wire).map_err(|_| secret_err("encode credentials"))?;
        let nonce: [u8; 12] = rand::random();
        let mut out = nonce.to_vec();
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: task_id.as_bytes(),
                },
            )
            .map_err(|_| secret_err("seal failed"))?;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens credentials sealed for `task_id`.
    pub fn open(&self, task_id: &str, sealed: &[u8]) -> Result<AdhocCredentials> {
        if sealed.len() < 12 {
            return Err(secret_err("sealed credentials are truncated"));
        }
        let (nonce, ct) = sealed.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: task_id.as_bytes(),
                },
            )
            .map_err(|_| secret_err("cannot open sealed credentials (wrong key or tampered)"))?;
        let w: Wire =
            serde_json::from_slice(&plain).map_err(|_| secret_err("decode credentials"))?;
        Ok(AdhocCredentials {
            username: w.u,
            password: SecretString::from(w.p),
            elevate_privileges_with: w.e,
            escalation_account: w.ea,
            escalation_password: w.ep.map(SecretString::from),
        })
    }
}

fn write_key_file(path: &Path, key: &[u8; 32]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| secret_err(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Write a private temp file completely, then hard-link it into place: the key
    // file appears atomically and an existing one is never overwritten.
    let tmp = path.with_extension(format!("tmp-{:08x}", rand::random::<u32>()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(key).and_then(|()| f.sync_all()));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| secret_err(format!("cannot create {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        let b = SecretBox::from_key([7; 32]);
        let c = AdhocCredentials::ssh("root", SecretString::from("CANARY-x"));
        let s = b.seal("t1", &c).unwrap();
        assert!(!String::from_utf8_lossy(&s).contains("CANARY"));
        assert_eq!(
            b.open("t1", &s).unwrap().password.expose_secret(),
            "CANARY-x"
        );
        assert!(b.open("t2", &s).is_err());
        assert!(!format!("{c:?}").contains("CANARY"));
    }
}

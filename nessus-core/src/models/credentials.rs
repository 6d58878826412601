//! SSH scan credentials in the shape `POST /scans` expects (`credentials.add.Host.SSH`).

use std::{fmt, str::FromStr};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// How the scanner escalates privileges after logging in over SSH. The Nessus spelling
/// (quotes and case included) is what [`EscalationMethod::as_nessus_str`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EscalationMethod {
    /// `Nothing`: stay the login user.
    #[default]
    Nothing,
    /// `sudo`.
    Sudo,
    /// `su`.
    Su,
    /// `su+sudo`.
    SuSudo,
    /// `pbrun` (PowerBroker).
    Pbrun,
    /// `dzdo` (Centrify).
    Dzdo,
    /// `Cisco 'enable'`.
    CiscoEnable,
    /// `.k5login` (Kerberos).
    K5login,
    /// `Checkpoint Gaia 'expert'`.
    CheckpointGaiaExpert,
}

impl EscalationMethod {
    /// Every method, in the order the Nessus UI lists them.
    pub const ALL: [Self; 9] = [
        Self::Nothing,
        Self::Sudo,
        Self::Su,
        Self::SuSudo,
        Self::Pbrun,
        Self::Dzdo,
        Self::CiscoEnable,
        Self::K5login,
        Self::CheckpointGaiaExpert,
    ];

    /// The exact string Nessus expects in `elevate_privileges_with`.
    pub fn as_nessus_str(self) -> &'static str {
        match self {
            Self::Nothing => "Nothing",
            Self::Sudo => "sudo",
            Self::Su => "su",
            Self::SuSudo => "su+sudo",
            Self::Pbrun => "pbrun",
            Self::Dzdo => "dzdo",
            Self::CiscoEnable => "Cisco 'enable'",
            Self::K5login => ".k5login",
            Self::CheckpointGaiaExpert => "Checkpoint Gaia 'expert'",
        }
    }
}

impl fmt::Display for EscalationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_nessus_str())
    }
}

impl FromStr for EscalationMethod {
    type Err = Error;

    /// Accepts the exact Nessus spellings (as the predecessor did) and, for convenience,
    /// the same names case-insensitively; an empty string means `Nothing`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(Self::Nothing);
        }
        Self::ALL
            .into_iter()
            .find(|m| m.as_nessus_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                let mut valid: Vec<&str> = Self::ALL.iter().map(|m| m.as_nessus_str()).collect();
                valid.sort_unstable();
                Error::InvalidCredentials {
                    reason: format!(
                        "invalid escalation method {t:?}; valid options: {}",
                        valid.join(", ")
                    ),
                }
            })
    }
}

/// How the SSH login itself authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SshAuth {
    /// Password login.
    Password(SecretString),
    /// Public-key login. `private_key` is the server-side file name returned by
    /// `POST /file/upload`.
    PublicKey {
        /// Uploaded key file name on the Nessus server.
        private_key: String,
        /// Passphrase of the key, if it has one.
        passphrase: Option<SecretString>,
    },
}

/// SSH credentials for an authenticated scan. Secrets are `SecretString`s: `Debug`
/// prints `[REDACTED]` and nothing here is logged.
#[derive(Debug, Clone)]
pub struct SshCredentials {
    username: String,
    auth: SshAuth,
    escalation: EscalationMethod,
    escalation_account: Option<String>,
    escalation_password: Option<SecretString>,
    bin_directory: Option<String>,
    custom_password_prompt: Option<String>,
}

impl SshCredentials {
    /// Password login as `username`, no escalation.
    pub fn password(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self::new(username, SshAuth::Password(password.into()))
    }

    /// Login as `username` with the given method.
    pub fn new(username: impl Into<String>, auth: SshAuth) -> Self {
        Self {
            username: username.into(),
            auth,
            escalation: EscalationMethod::Nothing,
            escalation_account: None,
            escalation_password: None,
            bin_directory: None,
            custom_password_prompt: None,
        }
    }

    /// Escalate with `method`, optionally as `account` (sudo/su+sudo/dzdo/pbrun) and with
    /// `password` (also the Cisco enable and Gaia expert password).
    #[must_use]
    pub fn escalate(
        mut self,
        method: EscalationMethod,
        account: Option<String>,
        password: Option<SecretString>,
    ) -> Self {
        self.escalation = method;
        self.escalation_account = account;
        self.escalation_password = password;
        self
    }

    /// Directory holding su/sudo/… on the targets, e.g. `/usr/bin`.
    #[must_use]
    pub fn bin_directory(mut self, dir: impl Into<String>) -> Self {
        self.bin_directory = Some(dir.into());
        self
    }

    /// A custom password prompt the targets print.
    #[must_use]
    pub fn custom_password_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.custom_password_prompt = Some(prompt.into());
        self
    }

    /// The login user.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The escalation method.
    pub fn escalation(&self) -> EscalationMethod {
        self.escalation
    }

    /// Checks what Nessus would otherwise reject late: an empty user or password, or a
    /// method that needs an escalation password without one.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidCredentials {
                reason: reason.to_owned(),
            })
        };
        if self.username.trim().is_empty() {
            return bad("SSH credential missing required field: username");
        }
        match &self.auth {
            SshAuth::Password(p) if p.expose_secret().is_empty() => {
                return bad("SSH credential missing required field: password");
            }
            SshAuth::PublicKey { private_key, .. } if private_key.trim().is_empty() => {
                return bad("SSH credential missing required field: private_key");
            }
            _ => {}
        }
        let needs_password = matches!(
            self.escalation,
            EscalationMethod::Su
                | EscalationMethod::SuSudo
                | EscalationMethod::CiscoEnable
                | EscalationMethod::CheckpointGaiaExpert
        );
        let has_password = self
            .escalation_password
            .as_ref()
            .is_some_and(|p| !p.expose_secret().is_empty());
        if needs_password && !has_password {
            return Err(Error::InvalidCredentials {
                reason: format!(
                    "escalation method {} needs an escalation password",
                    self.escalation
                ),
            });
        }
        Ok(())
    }

    /// The `credentials` object of `POST /scans` (seed-spec §6.5), secrets exposed.
    /// Only ever serialised into a request body.
    pub(crate) fn to_nessus_json(&self) -> Value {
        let mut ssh = Map::new();
        let mut put = |k: &str, v: &str| {
            ssh.insert(k.to_owned(), Value::String(v.to_owned()));
        };
        put("username", &self.username);
        match &self.auth {
            SshAuth::Password(p) => {
                put("auth_method", "password");
                put("password", p.expose_secret());
            }
            SshAuth::PublicKey {
                private_key,
                passphrase,
            } => {
                put("auth_method", "public key");
                put("private_key", private_key);
                if let Some(pp) = passphrase {
                    put("private_key_passphrase", pp.expose_secret());
                }
            }
        }
        put("elevate_privileges_with", self.escalation.as_nessus_str());
        put(
            "custom_password_prompt",
            self.custom_password_prompt.as_deref().unwrap_or(""),
        );
        put("target_priority_list", "");
        if self.escalation != EscalationMethod::Nothing {
            if let Some(a) = &self.escalation_account {
                put("escalation_account", a);
            }
            if let Some(p) = &self.escalation_password {
                put("escalation_password", p.expose_secret());
            }
            if let Some(d) = &self.bin_directory {
                put("bin_directory", d);
            }
        }
        json!({"add": {"Host": {"SSH": [Value::Object(ssh)]}}, "edit": {}, "delete": []})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips_and_serialises() {
        for m in EscalationMethod::ALL {
            assert_eq!(m.as_nessus_str().parse::<EscalationMethod>().unwrap(), m);
            let c = SshCredentials::password("root", "pw").escalate(
                m,
                Some("root".into()),
                Some("esc".into()),
            );
            c.validate().unwrap();
            let v = c.to_nessus_json();
            let ssh = &v["add"]["Host"]["SSH"][0];
            assert_eq!(ssh["elevate_privileges_with"], m.as_nessus_str());
            assert_eq!(ssh["password"], "pw");
            if m == EscalationMethod::Nothing {
                assert!(ssh.get("escalation_password").is_none());
            } else {
                assert_eq!(ssh["escalation_password"], "esc");
            }
        }
    }

    #[test]
    fn debug_is_redacted_and_bad_method_lists_options() {
        let c = SshCredentials::password("u", "canary-secret").escalate(
            EscalationMethod::Sudo,
            None,
            Some("canary-esc".into()),
        );
        let d = format!("{c:?}");
        assert!(!d.contains("canary"), "{d}");
        let e = "runas".parse::<EscalationMethod>().unwrap_err().to_string();
        assert!(e.contains("Cisco 'enable'") && e.contains("su+sudo"), "{e}");
    }

    #[test]
    fn validation_names_the_missing_field() {
        let e = SshCredentials::password("u", "").validate().unwrap_err();
        assert!(e.to_string().contains("password"));
        let e = SshCredentials::password("u", "p")
            .escalate(EscalationMethod::Su, None, None)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("escalation password"));
    }
}

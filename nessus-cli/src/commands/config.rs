//! `--config` loading and `nessus-cli config check`.

use std::path::{Path, PathBuf};

use nessus_core::Config;
use serde_json::json;

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::commands::{print_json, print_text};
use crate::exit::CliError;

/// The config of `--config` / `NESSUS_CONFIG`, if one was given. Its warnings are logged.
pub(crate) fn load(global: &GlobalArgs) -> anyhow::Result<Option<Config>> {
    let Some(path) = &global.config else {
        return Ok(None);
    };
    let config = Config::load(path)?;
    for warning in config.warnings() {
        tracing::warn!(config = %path.display(), "{warning}");
    }
    Ok(Some(config))
}

/// The config, which `what` cannot do without (a usage error when it is missing).
pub(crate) fn require(global: &GlobalArgs, what: &str) -> anyhow::Result<Config> {
    load(global)?.ok_or_else(|| {
        CliError::Usage(format!(
            "{what} needs the scanners config: --config FILE (or NESSUS_CONFIG)"
        ))
        .into()
    })
}

pub(crate) fn run(global: &GlobalArgs, cmd: &ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check { file } = cmd;
    let path: PathBuf = file
        .clone()
        .or_else(|| global.config.clone())
        .ok_or_else(|| {
            CliError::Usage("say which file to check: config check FILE (or --config FILE)".into())
        })?;
    match Config::load(&path) {
        Ok(config) => report_valid(global, &path, &config),
        Err(error) => {
            if global.json {
                print_json(&invalid_json(&path, &error))?;
            }
            Err(error.into())
        }
    }
}

fn report_valid(global: &GlobalArgs, path: &Path, config: &Config) -> anyhow::Result<()> {
    if global.json {
        let pools: Vec<_> = config
            .pools()
            .iter()
            .map(|pool| {
                json!({
                    "name": pool.name(),
                    "scanner_type": pool.scanner_type(),
                    "instances": pool.instances().iter().map(|i| i.instance_id()).collect::<Vec<_>>(),
                    "capacity": pool.capacity(),
                })
            })
            .collect();
        return print_json(&json!({
            "valid": true,
            "file": path,
            "pools": pools,
            "warnings": config.warnings(),
            "description": config.describe(),
        }));
    }
    let mut text = config.describe();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // `describe()` already lists the warnings.
    text.push_str(&format!("{}: OK\n", path.display()));
    print_text(&text)
}

/// The `--json` form of a load error: where and what, never a secret value (the
/// library's messages never contain one).
fn invalid_json(path: &Path, error: &nessus_core::Error) -> serde_json::Value {
    let (line, column, message) = match error {
        nessus_core::Error::Config {
            line,
            column,
            message,
            ..
        } => (*line, *column, message.clone()),
        other => (None, None, other.to_string()),
    };
    json!({
        "valid": false,
        "file": path,
        "line": line,
        "column": column,
        "message": message,
        "error": error.to_string(),
    })
}

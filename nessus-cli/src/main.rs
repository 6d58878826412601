//! `nessus-cli`: the admin CLI.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no subcommands yet")
}

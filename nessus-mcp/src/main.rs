//! `nessus-mcp`: the MCP server agents talk to.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the MCP server is not built yet; see issue 5")
}

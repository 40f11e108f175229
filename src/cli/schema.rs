//! `ctl schema`: print the JSON Schema (draft 2020-12) of environment files or workspace files,
//! for editors (yaml-language-server reads a `# yaml-language-server: $schema=…` first line).
//!
//! The schemas live in `schemas/` and are embedded here; tests check them against the loader.

use std::io::Write;
use super::Status;

/// `schemas/environment.schema.json`: an environment file (`environments/<name>.yaml`).
pub const ENVIRONMENT: &str = include_str!("../../schemas/environment.schema.json");

/// `schemas/workspace.schema.json`: one file of an environment's `workspaces_dir`.
pub const WORKSPACE: &str = include_str!("../../schemas/workspace.schema.json");

/// Which schema to print.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchemaKind {
    /// An environment file.
    #[default]
    Environment,
    /// A workspace file (one per file in `workspaces_dir`).
    Workspace,
}

impl SchemaKind {
    /// The schema's JSON text.
    pub fn text(self) -> &'static str {
        match self {
            SchemaKind::Environment => ENVIRONMENT,
            SchemaKind::Workspace => WORKSPACE,
        }
    }
}

/// Print the schema to stdout.
pub fn run(kind: SchemaKind) -> super::CmdResult {
    let mut out = std::io::stdout().lock();
    out.write_all(kind.text().as_bytes())?;
    out.flush()?;
    Ok(Status::Success)
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;

//! `ctl graph`: the declared resources and their dependencies as DOT, Mermaid or SVG. Reads
//! the environment files (and a saved plan) only: no OpenBao, no AWS, no token.

use super::{context, CmdResult, EnvArgs};
use crate::plan::Plan;
use crate::render::graph::{self, Graph};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use super::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz text (`dot -Tpng`), a cluster per workspace, VPC and subnet.
    Dot,
    /// A Mermaid `flowchart LR` (renders in GitHub PR comments and markdown files).
    Mermaid,
    /// A picture laid out by ctl itself (no Graphviz needed); hover a node for its address.
    Svg,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Arrows point from a resource to what depends on it (creation order, left to right). \
Groups: workspace (by address), VPC and subnet (by the resource's references). \
With --plan: green create, yellow update, purple replace, dashed red delete (of an address no longer declared).")]
pub struct GraphArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Output format [default: from --out's extension (.svg, .mmd/.mermaid, .dot/.gv; any
    /// other: svg), and dot on stdout].
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
    /// A saved plan (`ctl plan --out FILE`) of this environment: colour each resource by its
    /// planned action and draw the planned deletes. Only drawn: its signature is not checked.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `--format`, else what `--out`'s extension says, else svg to a file and dot to stdout.
fn format_for(format: Option<GraphFormat>, out: Option<&Path>) -> GraphFormat {
    if let Some(f) = format {
        return f;
    }
    let Some(out) = out else { return GraphFormat::Dot };
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("dot" | "gv") => GraphFormat::Dot,
        Some("mmd" | "mermaid") => GraphFormat::Mermaid,
        _ => GraphFormat::Svg,
    }
}

pub fn run(args: &GraphArgs) -> CmdResult {
    let loaded = context::load(&args.env)?;
    let plan = args.plan.as_deref().map(Plan::load).transpose()?;
    if let Some(plan) = &plan {
        if plan.environment != loaded.env.name {
            bail!(
                "{} is a plan of environment {}, not {}",
                args.plan.as_deref().unwrap_or(Path::new("")).display(),
                plan.environment,
                loaded.env.name
            );
        }
    }
    let g = Graph::new(&loaded.desired, plan.as_ref());
    let text = match format_for(args.format, args.out.as_deref()) {
        GraphFormat::Dot => graph::dot(&g),
        GraphFormat::Mermaid => graph::mermaid(&g),
        GraphFormat::Svg => graph::svg(&g),
    };
    match &args.out {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_format_defaults_follow_out() {
        assert_eq!(format_for(None, None), GraphFormat::Dot);
        assert_eq!(format_for(None, Some(Path::new("g.svg"))), GraphFormat::Svg);
        assert_eq!(format_for(None, Some(Path::new("g.MMD"))), GraphFormat::Mermaid);
        assert_eq!(format_for(None, Some(Path::new("g.gv"))), GraphFormat::Dot);
        assert_eq!(format_for(None, Some(Path::new("graph"))), GraphFormat::Svg);
        assert_eq!(format_for(Some(GraphFormat::Mermaid), Some(Path::new("g.svg"))), GraphFormat::Mermaid);
    }
}

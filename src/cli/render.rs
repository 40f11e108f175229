//! `ctl render openbao-config`: the OpenBao server config of one node of the environment's
//! cluster, on stdout (or `--out FILE`).

use super::CmdResult;
use crate::dev::BaoVersion;
use crate::render::openbao_config::{self, Options};
use anyhow::Context;
use std::path::PathBuf;
use super::Status;

#[derive(clap::Args, Debug)]
pub struct OpenbaoConfigArgs {
    /// Environment file (e.g. environments/prod.yaml).
    #[arg(short = 'e', long = "env", value_name = "FILE")]
    pub env: PathBuf,
    /// OpenBao release: 2.6 (built-in awskms seal) or 2.7 (awskms as a pinned KMS plugin).
    #[arg(long, value_enum, default_value = "2.6")]
    pub version: BaoVersion,
    /// Which node (1-based) of openbao_cluster.
    #[arg(long, default_value_t = 1)]
    pub node: usize,
    /// Write here (mode 0644) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// 2.7: use the pinned plugin digest without checking the artifact in S3 first.
    #[arg(long)]
    pub no_verify: bool,
}

pub async fn openbao_config(args: OpenbaoConfigArgs) -> CmdResult {
    let env = crate::config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let verified = match (args.version, openbao_config::kms_plugin_artifact(&env)) {
        (BaoVersion::V2_7, Some(artifact)) if !args.no_verify => {
            let conn = env.aws.as_ref().context("the environment has no aws: section (artifacts live in S3)")?;
            let aws = crate::aws::Aws::connect(conn, &env.name).await?;
            let v = crate::artifacts::verify_pinned(&aws, &env, artifact).await.with_context(|| {
                format!("verifying the KMS plugin artifact {artifact:?} before pinning it in the config")
            })?;
            Some(v.sha256)
        }
        _ => None,
    };
    let text = openbao_config::render(&env, Options { version: args.version, node: args.node }, verified.as_deref())?;
    match &args.out {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(Status::Success)
}

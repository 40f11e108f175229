//! `ctl artifacts publish|verify` and `ctl render boot-fetcher`.

use super::{CmdResult, EnvArgs};
use crate::artifacts::{self, pin, ArtifactError};
use crate::aws::Aws;
use crate::config::Environment;
use anyhow::{bail, Context};
use std::path::PathBuf;
use super::Status;

#[derive(clap::Subcommand, Debug)]
pub enum ArtifactsCommand {
    /// Upload FILE to S3 as <prefix><name>/<version>/<file> with its .sha256 sidecar, and pin
    /// its digest (and version, size) in the environment file.
    Publish {
        /// The file to publish.
        file: PathBuf,
        /// Artifact name (the item of artifacts.items).
        #[arg(long)]
        name: String,
        /// Version (part of the object key).
        #[arg(long)]
        version: String,
        /// Object name [default: the item's `file`, or FILE's name for a new item].
        #[arg(long)]
        object_name: Option<String>,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Check every artifact (or NAME) against its sidecar and its pinned digest; exit 1 if
    /// any fails.
    Verify {
        /// Only this artifact.
        name: Option<String>,
        #[command(flatten)]
        env: EnvArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum RenderCommand {
    /// Print the boot script that fetches artifact NAME and installs it at --install-path
    /// only if it matches the pinned digest.
    BootFetcher {
        /// Artifact name.
        name: String,
        /// Where the verified file is installed (absolute).
        #[arg(long)]
        install_path: String,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Print the OpenBao server config (HCL) of one node of openbao_cluster.
    OpenbaoConfig(super::render::OpenbaoConfigArgs),
    /// Print the smallest OpenBao policy ctl's own token needs for this environment (plan:
    /// read-only, apply: everything), derived from the endpoints ctl calls.
    CtlPolicy(super::bootstrap::CtlPolicyArgs),
}

fn load(args: &EnvArgs) -> anyhow::Result<Environment> {
    crate::config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))
}

async fn connect(env: &Environment) -> anyhow::Result<Aws> {
    let conn = env.aws.as_ref().ok_or(ArtifactError::NoAws)?;
    Ok(Aws::connect(conn, &env.name).await?)
}

pub async fn run(cmd: ArtifactsCommand) -> CmdResult {
    match cmd {
        ArtifactsCommand::Publish { file, name, version, object_name, env: args } => {
            let env = load(&args)?;
            let existing = env.artifacts.as_ref().and_then(|a| a.get(&name));
            let object = match (object_name, existing) {
                (Some(o), _) => o,
                (None, Some(item)) => item.file.clone(),
                (None, None) => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .with_context(|| format!("{} has no file name", file.display()))?,
            };
            if !file.is_file() {
                bail!("{} is not a file", file.display());
            }
            let aws = connect(&env).await?;
            let published = artifacts::publish(&aws, &env, &file, &name, &version, &object).await?;
            if published.created_bucket {
                println!("created bucket {} (versioning enabled, public access blocked)", published.bucket);
            }
            if published.unversioned_bucket {
                eprintln!(
                    "warning: bucket {} has no versioning enabled; verify reads the current objects",
                    published.bucket
                );
            }
            println!(
                "published {} {}: s3://{}/{} ({} bytes, sha256 {}, version id {})",
                published.name,
                published.version,
                published.bucket,
                published.key,
                published.size,
                published.sha256,
                published.version_id.as_deref().unwrap_or("none")
            );
            let outcome = pin::pin_in_file(
                &env.file,
                &pin::Pin {
                    name: published.name.clone(),
                    version: published.version.clone(),
                    file: published.file.clone(),
                    sha256: published.sha256.clone(),
                    size: published.size,
                },
            )
            .with_context(|| format!("uploaded, but pinning {} in {} failed", published.name, env.file.display()))?;
            let what = match outcome {
                pin::PinOutcome::Unchanged => "already pinned in",
                pin::PinOutcome::Updated => "pin updated in",
                pin::PinOutcome::Added => "pin added to",
            };
            println!("{what} {}", env.file.display());
            Ok(Status::Success)
        }
        ArtifactsCommand::Verify { name, env: args } => {
            let env = load(&args)?;
            let section = env.artifacts.as_ref().ok_or(ArtifactError::NotConfigured)?;
            let items: Vec<_> = match &name {
                Some(n) => vec![artifacts::lookup(&env, n)?.1],
                None => section.items.iter().collect(),
            };
            if items.is_empty() {
                println!("no artifacts declared");
                return Ok(Status::Success);
            }
            let aws = connect(&env).await?;
            let s3 = artifacts::s3::client(&aws);
            let mut failed = 0;
            for item in items {
                match artifacts::verify_item(&aws, &s3, section, item).await {
                    Ok(v) => println!(
                        "ok {} {}: s3://{}/{} ({} bytes, sha256 {}, version id {})",
                        v.name,
                        v.version,
                        section.bucket,
                        v.key,
                        v.size,
                        v.sha256,
                        v.version_id.as_deref().unwrap_or("none")
                    ),
                    Err(e) => {
                        failed += 1;
                        eprintln!("FAILED {e}");
                    }
                }
            }
            if failed > 0 {
                eprintln!("error: {failed} artifact(s) failed verification");
                return Ok(Status::Failure);
            }
            Ok(Status::Success)
        }
    }
}

pub async fn render(cmd: RenderCommand) -> CmdResult {
    let (name, install_path, args) = match cmd {
        RenderCommand::BootFetcher { name, install_path, env } => (name, install_path, env),
        RenderCommand::OpenbaoConfig(args) => return super::render::openbao_config(args).await,
        RenderCommand::CtlPolicy(args) => return super::bootstrap::render_policy(&args),
    };
    let env = load(&args)?;
    let (section, item) = artifacts::lookup(&env, &name)?;
    let templates = args.templates.clone().unwrap_or_else(|| env.dir.join("..").join("templates"));
    let ctx = artifacts::fetcher::context(&env, section, item, &install_path)?;
    let script = artifacts::fetcher::render(&templates, &ctx)?;
    print!("{script}");
    Ok(Status::Success)
}

//! The boot-time fetcher: `templates/boot/fetch-artifact.sh.hbs` rendered (handlebars strict
//! mode) for one pinned artifact. The script downloads the object with curl (SigV4-signed with
//! the credentials in its environment), checks it with `sha256sum --check --strict` against
//! the PINNED digest, and only then installs that same file; any failure exits non-zero with
//! nothing installed.

use crate::config::{Artifact, Artifacts, AwsConnection, Environment};
use serde::Serialize;
use std::path::Path;

/// The template, relative to the templates directory.
pub const TEMPLATE: &str = "boot/fetch-artifact.sh.hbs";

#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("template {path}: {message}")]
    Template { path: String, message: String },
    #[error("{0}")]
    Input(String),
}

/// What the template sees. Every value is checked to be safe inside single quotes.
#[derive(Debug, Serialize)]
pub struct FetcherContext {
    pub environment: String,
    pub name: String,
    pub version: String,
    pub file: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub url: String,
    pub region: String,
    /// The declared size (0: no limit).
    pub max_bytes: u64,
    pub install_path: String,
}

/// Where S3 is for `aws` and the URL of `bucket`/`key` there: path-style under a configured
/// endpoint (moto), virtual-hosted on AWS. Returns (url, region).
pub fn object_url(aws: &AwsConnection, bucket: &str, key: &str) -> Result<(String, String), FetcherError> {
    match aws {
        AwsConnection::Account { region, endpoint: Some(endpoint) } => {
            Ok((format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/')), region.clone()))
        }
        AwsConnection::Account { region, endpoint: None } => {
            Ok((format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"), region.clone()))
        }
        AwsConnection::DevStack { dir } => {
            let state = crate::dev::StackState::load(dir).map_err(|e| FetcherError::Input(e.to_string()))?;
            let endpoint = state
                .moto_endpoint
                .ok_or_else(|| FetcherError::Input(format!("the dev stack in {} runs no moto", dir.display())))?;
            Ok((format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/')), "us-east-1".to_string()))
        }
    }
}

/// The context for artifact `item` of `env`, to be installed at `install_path` (absolute).
pub fn context(
    env: &Environment,
    artifacts: &Artifacts,
    item: &Artifact,
    install_path: &str,
) -> Result<FetcherContext, FetcherError> {
    let aws = env.aws.as_ref().ok_or_else(|| FetcherError::Input("the environment has no aws: section".into()))?;
    check_install_path(install_path)?;
    let key = artifacts.key(item);
    let (url, region) = object_url(aws, &artifacts.bucket, &key)?;
    let ctx = FetcherContext {
        environment: env.name.clone(),
        name: item.name.clone(),
        version: item.version.clone(),
        file: item.file.clone(),
        bucket: artifacts.bucket.clone(),
        key,
        sha256: item.sha256.clone(),
        url,
        region,
        max_bytes: item.size.unwrap_or(0),
        install_path: install_path.to_string(),
    };
    for value in [&ctx.environment, &ctx.url, &ctx.region] {
        if let Some(c) = value.chars().find(|c| matches!(c, '\'' | '\\' | '`' | '$' | '"') || c.is_control()) {
            return Err(FetcherError::Input(format!("{value:?} contains {c:?}, which the boot script cannot carry")));
        }
    }
    Ok(ctx)
}

/// An absolute path of `A-Z a-z 0-9 / . _ + -`, not a directory, without `..` segments.
pub fn check_install_path(p: &str) -> Result<(), FetcherError> {
    let bad = |why: &str| Err(FetcherError::Input(format!("install path {p:?} {why}")));
    if !p.starts_with('/') {
        return bad("must be absolute");
    }
    if p.ends_with('/') {
        return bad("must name a file, not a directory");
    }
    if let Some(c) = p.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '+' | '-'))) {
        return bad(&format!("contains {c:?}; allowed are A-Z, a-z, 0-9, '/', '.', '_', '+', '-'"));
    }
    if p.split('/').any(|s| s == ".." || s == ".") {
        return bad("must not contain . or .. segments");
    }
    Ok(())
}

/// Render the fetcher from `templates_dir`.
pub fn render(templates_dir: &Path, ctx: &FetcherContext) -> Result<String, FetcherError> {
    let path = templates_dir.join(TEMPLATE);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|error| FetcherError::Read { path: shown.clone(), error })?;
    let mut hb = crate::templates::engine();
    hb.register_template_string("fetcher", text)
        .map_err(|e| FetcherError::Template { path: shown.clone(), message: e.to_string() })?;
    hb.render("fetcher", ctx).map_err(|e| FetcherError::Template { path: shown, message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> FetcherContext {
        FetcherContext {
            environment: "prod".into(),
            name: "caddy".into(),
            version: "2.8.4".into(),
            file: "caddy".into(),
            bucket: "b-1".into(),
            key: "boot/caddy/2.8.4/caddy".into(),
            sha256: "ab".repeat(32),
            url: "http://127.0.0.1:5000/b-1/boot/caddy/2.8.4/caddy".into(),
            region: "us-east-1".into(),
            max_bytes: 0,
            install_path: "/usr/local/bin/caddy".into(),
        }
    }

    fn templates() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    #[test]
    fn renders_the_pinned_digest_and_fails_closed() {
        let script = render(&templates(), &ctx()).unwrap();
        assert!(script.starts_with("#!/usr/bin/env bash\n"));
        assert!(script.contains("set -euo pipefail\numask 077\n"));
        assert!(script.contains(&format!("readonly PINNED_SHA256='{}'", "ab".repeat(32))));
        assert!(script.contains("readonly URL='http://127.0.0.1:5000/b-1/boot/caddy/2.8.4/caddy'"));
        assert!(script.contains("sha256sum --check --strict"));
        assert!(script.contains("readonly INSTALL_PATH='/usr/local/bin/caddy'"));
        assert!(!script.contains("{{"), "unrendered placeholders");
        // Credentials never appear on a command line.
        assert!(!script.contains("--user"));
        // Syntax check.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.sh");
        std::fs::write(&path, &script).unwrap();
        let out = std::process::Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn strict_mode_rejects_unknown_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boot")).unwrap();
        std::fs::write(dir.path().join(TEMPLATE), "{{nope}}").unwrap();
        assert!(matches!(render(dir.path(), &ctx()), Err(FetcherError::Template { .. })));
    }

    #[test]
    fn install_paths() {
        assert!(check_install_path("/opt/bin/caddy-2.8").is_ok());
        for bad in ["rel/caddy", "/opt/bin/", "/opt/../etc/passwd", "/opt/bin/ca ddy", "/opt/'x", "/opt/$x"] {
            assert!(check_install_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        let moto =
            AwsConnection::Account { region: "us-east-1".into(), endpoint: Some("http://127.0.0.1:5000/".into()) };
        assert_eq!(object_url(&moto, "b", "k/x").unwrap().0, "http://127.0.0.1:5000/b/k/x");
        let aws = AwsConnection::Account { region: "eu-west-1".into(), endpoint: None };
        assert_eq!(
            object_url(&aws, "b", "k/x").unwrap(),
            ("https://b.s3.eu-west-1.amazonaws.com/k/x".into(), "eu-west-1".into())
        );
    }
}

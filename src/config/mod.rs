//! Desired state: load `environments/<name>.yaml` (plus its `workspaces_dir`), merge workspace
//! classes, and validate everything, reporting every problem as `file:line:col: message`.
//!
//! Pure file reading: nothing here touches the network. The entry point is [`load`].
//!
//! ```yaml
//! openbao:
//!   dev_stack: ../.ctl/dev        # or: address: https://bao:8200 + token_env | token_file
//!                                 #   (+ ca_cert, client_cert + client_key, tls_server_name)
//! classes:
//!   standard: { kv: { max_versions: 10 }, policies: [ { name: app-read, template: kv-read } ] }
//! workspaces:
//!   - { name: acme, class: standard, kv: { max_versions: 20 } }
//! workspaces_dir: workspaces/local  # one workspace per *.yaml / *.yml file
//! ```
//!
//! Merging: `kv` merges field by field over the class; `policies`, `approle`, `transit` and
//! `quota` replace the class's section when the workspace sets them.
//!
//! How errors are found and placed:
//! - per-value checks (names, durations, CIDRs, key types, addresses) run inside `Deserialize`
//!   impls, so serde_yaml reports the offending scalar's own position; unknown keys, wrong types,
//!   missing fields and YAML syntax errors come from serde_yaml the same way;
//! - cross-field and cross-file checks record a YAML path, turned into a position at the end by
//!   [`locate_many`] (one parse per file, whatever the number of problems in it).
//!
//! Speed: workspace files are read and parsed on 2–4 threads. Most files are simple YAML; a small
//! parser (`fast.rs`) handles that subset, and anything else, including every file with an
//! error, goes through serde_yaml, so results and messages are serde_yaml's either way.

mod alarms;
mod artifacts;
mod cidr;
mod dr;
mod duration;
mod error;
mod fast;
mod infra;
mod load;
mod network_values;
mod problems;
mod locate;
mod names;
mod network;
mod policy_lint;
mod raw;
mod validate;

#[cfg(test)]
mod tests;

pub use alarms::{Alarm, AlarmKind, AlarmsConfig, HealthCheck, WebhookSource};
pub use artifacts::{check_artifact_name, check_artifact_token, object_key, sidecar_key, Artifact, Artifacts};
pub use cidr::{Cidr, ParseCidrError};
pub use dr::Dr;
pub use policy_lint::{LintAllow, PolicyLint};
pub use duration::{Duration, ParseDurationError};
pub use error::{ConfigError, ConfigErrors};
pub use infra::{iam_name, IamRole, KmsIam, KmsKey, KmsPlugin, OpenbaoCluster, ServicePrincipal};
pub use locate::{locate, locate_many, Origin, PathSeg};
pub use network::{is_declared_key, kms_key_id, EipTarget, ElasticIp, Infra, Ingress, IngressSource, InstanceGroup, Nat, Network, Rds, SecurityGroup, Subnet, NAT_GROUP};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Transit key types accepted in `transit.keys[].type`.
pub const TRANSIT_KEY_TYPES: &[&str] = names::KEY_TYPES;

/// Load and validate the environment file at `path` and the workspace files it points to.
///
/// Reads files only (no network). On failure returns every problem found, each located at a
/// file, line and column. Workspace files are parsed in parallel.
pub fn load(path: &Path) -> Result<Environment, ConfigErrors> {
    load::load(path).map(with_dev_stack_override)
}

/// `--dev-stack DIR` / `CTL_DEV_STACK`: set once at start-up by the CLI.
static DEV_STACK_OVERRIDE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Point every environment loaded from now on at the local dev stack in `dir`: its `openbao:`
/// becomes `dev_stack: DIR`, and so does its `aws:` when it has one. Everything else in the
/// file, and its digest, stay as written, so the file a team commits for production is the
/// file the demo applies. Set once (later calls are ignored).
pub fn set_dev_stack_override(dir: PathBuf) {
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let _ = DEV_STACK_OVERRIDE.set(dir);
}

fn with_dev_stack_override(mut env: Environment) -> Environment {
    if let Some(dir) = DEV_STACK_OVERRIDE.get() {
        env.openbao = Connection::DevStack { dir: dir.clone() };
        if env.aws.is_some() {
            env.aws = Some(AwsConnection::DevStack { dir: dir.clone() });
        }
    }
    env
}

/// [`load`] with the environment file's text given instead of read: `path` names the file in
/// error messages and anchors relative paths (`workspaces_dir`, `dev_stack`), which are read
/// from the file system as usual. Same code path as [`load`] after the read (used by the fuzzer).
pub fn load_str(path: &Path, text: &str) -> Result<Environment, ConfigErrors> {
    load::load_text(path, text.to_string())
}

/// A loaded, validated environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The environment file's stem, e.g. `local`.
    pub name: String,
    /// The environment file, as given to [`load`].
    pub file: PathBuf,
    /// The directory containing the environment file (`.` if it was given without one).
    pub dir: PathBuf,
    /// How to reach OpenBao.
    pub openbao: Connection,
    /// How to reach AWS, when the environment declares AWS resources.
    pub aws: Option<AwsConnection>,
    /// Every workspace, sorted by name, with class defaults merged in.
    pub workspaces: Vec<Workspace>,
    /// AWS infrastructure (`network:`, `instances:`, `rds:`); empty when not declared.
    pub infra: Infra,
    /// Boot artifacts and their pinned digests (`artifacts:`).
    pub artifacts: Option<Artifacts>,
    /// KMS keys, IAM roles and the OpenBao server layout (`kms:`, `iam:`, `openbao_cluster:`).
    pub kms_iam: KmsIam,
    /// CloudWatch alarms, their SNS topic and Route 53 health checks (`alarms:`).
    pub alarms: Option<AlarmsConfig>,
    /// Where disaster-recovery snapshots go (`dr:`).
    pub dr: Option<Dr>,
    /// Policy lint findings accepted on purpose, and whether the others fail (`policy_lint:`).
    pub policy_lint: Option<PolicyLint>,
    /// SHA-256 (hex) over every source file: for each, in sorted order of its path relative to
    /// [`Environment::dir`], `"<relative path>\0<bytes>\0"`.
    pub source_digest: String,
    /// Every file read, sorted.
    pub sources: Vec<PathBuf>,
}

/// How to reach OpenBao.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// A running server. `address` is `http(s)://host:port`; the token comes from an environment
    /// variable or a file, never from the command line.
    Server {
        /// `http(s)://host:port`, without a trailing slash; `None`: `BAO_ADDR`.
        address: Option<String>,
        /// ctl's namespace (every path relative to it); `None`: `BAO_NAMESPACE`, else the root.
        namespace: Option<String>,
        /// How ctl logs in; `None`: the token in `BAO_TOKEN`.
        auth: Option<Auth>,
        /// CA, client certificate and server name for `https://` (what the file sets; the CLI
        /// fills the unset ones from `BAO_CACERT` & co.).
        tls: Tls,
    },
    /// The local dev stack whose state directory is `dir` (absolute).
    DevStack {
        /// Absolute state directory, resolved relative to the environment file's directory.
        dir: PathBuf,
    },
}

/// TLS settings of an `https://` OpenBao address. Paths are absolute; files were checked to
/// be readable PEM when loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA bundle (PEM) that signs the server's certificate; when set, the only trusted roots.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS; both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The name to verify the server's certificate against, instead of the address's host.
    pub server_name: Option<String>,
}

/// What a PEM file must hold.
#[derive(Clone, Copy, Debug)]
pub enum Pem {
    Certificate,
    PrivateKey,
}

/// Why `bytes` (read from `path`) is not the PEM `kind` expects; cheap textual check, the
/// transport parses it for real.
pub fn check_pem(path: &Path, kind: Pem) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let ok = match kind {
        Pem::Certificate => text.contains("-----BEGIN CERTIFICATE-----"),
        Pem::PrivateKey => text.lines().any(|l| l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----")),
    };
    if ok {
        Ok(())
    } else {
        let what = match kind {
            Pem::Certificate => "a PEM certificate (-----BEGIN CERTIFICATE-----)",
            Pem::PrivateKey => "a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        };
        Err(format!("{} is not {what}", path.display()))
    }
}

/// How to reach AWS. Credentials are never in the file: an account uses the SDK's default
/// chain (instance role, environment); the dev stack's moto uses static test credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsConnection {
    /// The moto server of the local dev stack whose state directory is `dir` (absolute).
    DevStack {
        /// Absolute state directory.
        dir: PathBuf,
    },
    /// A real account (or any endpoint, e.g. moto in tests).
    Account {
        /// e.g. `eu-west-1`.
        region: String,
        /// Override of the service endpoints (`http(s)://host:port`), for moto.
        endpoint: Option<String>,
    },
}

impl Connection {
    /// The OpenBao address: the file's, else `BAO_ADDR` (`VAULT_ADDR`); `None` for the dev
    /// stack (whose address is in its state directory) or when neither is set.
    pub fn server_address(&self) -> Option<String> {
        match self {
            Connection::Server { address: Some(a), .. } => Some(a.clone()),
            Connection::Server { address: None, .. } => ["BAO_ADDR", "VAULT_ADDR"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|a| !a.is_empty()))
                .map(|a| a.trim_end_matches('/').to_string()),
            Connection::DevStack { .. } => None,
        }
    }
}

/// How ctl logs in to OpenBao. Secrets (tokens, JWTs, secret-ids) are named, never written, in
/// the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A token from an environment variable or a file.
    Token(TokenSource),
    /// A JWT login (a CI system's OIDC token). `role: None`: `ctl-<env>-plan` for read-only
    /// commands and `ctl-<env>-apply` for writing ones (what `ctl bootstrap` creates).
    Jwt { mount: String, role: Option<String>, jwt: TokenSource },
    /// An AppRole login; a response-wrapped secret-id in the file is unwrapped (once: a
    /// wrapping token is single-use).
    AppRole { mount: String, role_id_file: PathBuf, secret_id_file: PathBuf },
}

/// Where a server token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The named environment variable.
    Env(String),
    /// This file (absolute; resolved relative to the environment file's directory).
    File(PathBuf),
}

/// One workspace: an OpenBao namespace and what lives in it.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Unique name; also the resource address prefix.
    pub name: String,
    /// The namespace (defaults to `name`); unique across the environment.
    pub namespace: String,
    /// The class it inherits defaults from, if any.
    pub class: Option<String>,
    /// The KV v2 mount every workspace has.
    pub kv: Kv,
    /// ACL policies, rendered from templates.
    pub policies: Vec<Policy>,
    /// AppRole auth mount and roles.
    pub approle: Option<AppRole>,
    /// Transit mount and keys.
    pub transit: Option<Transit>,
    /// Rate-limit quota on the namespace.
    pub quota: Option<Quota>,
    /// Where the workspace is declared.
    pub origin: Origin,
}

/// A KV v2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// Mount path (one segment), default `secret`.
    pub path: String,
    /// Versions kept per key (0: server default).
    pub max_versions: u32,
    /// Whether writes must use check-and-set.
    pub cas_required: bool,
    /// Versions are deleted after this long (0: never).
    pub delete_version_after: Duration,
}

impl Default for Kv {
    fn default() -> Kv {
        Kv { path: "secret".into(), max_versions: 0, cas_required: false, delete_version_after: Duration(0) }
    }
}

/// An ACL policy rendered from `templates/policies/<template>.hbs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Policy name (unique in the workspace).
    pub name: String,
    /// Template name.
    pub template: String,
    /// Extra template variables (`{{vars.x}}`).
    pub vars: BTreeMap<String, String>,
    /// Where the policy is declared (in the workspace, or in its class).
    pub origin: Origin,
}

/// An AppRole auth mount.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRole {
    /// Auth mount path, default `approle`.
    pub mount: String,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
}

/// An AppRole role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Policies attached to tokens (each declared by the workspace, or `default`).
    pub token_policies: Vec<String>,
    /// Token TTL (0: mount default).
    pub token_ttl: Duration,
    /// Token max TTL (0: mount default).
    pub token_max_ttl: Duration,
    /// Secret-id TTL (0: never expires).
    pub secret_id_ttl: Duration,
    /// Uses per secret-id (0: unlimited).
    pub secret_id_num_uses: u32,
    /// Networks tokens may be used from.
    pub token_bound_cidrs: Vec<Cidr>,
    /// Networks secret-ids may be used from.
    pub secret_id_bound_cidrs: Vec<Cidr>,
}

/// A transit secrets engine mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    /// Mount path, default `transit`.
    pub mount: String,
    /// Keys, in declaration order.
    pub keys: Vec<TransitKey>,
}

/// A transit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKey {
    /// Key name (unique in the mount).
    pub name: String,
    /// One of [`TRANSIT_KEY_TYPES`], default `aes256-gcm96`.
    pub key_type: String,
    /// Automatic rotation period (0: never).
    pub auto_rotate_period: Duration,
}

/// A rate-limit quota on the workspace's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// Requests allowed per `interval` (> 0).
    pub rate: f64,
    /// Interval, default 1s.
    pub interval: Duration,
    /// How long clients over the limit are blocked (0: not blocked).
    pub block_interval: Duration,
}

//! The OpenBao server config of one node of an environment's cluster (`openbao_cluster:`), in the
//! 2.6 form (built-in `seal "awskms"`, `templates/openbao/server.hcl.hbs`) or the 2.7 form
//! (`plugin "kms" "awskms"` + `seal "awskms"`, `templates/openbao/server-2.7.hcl.hbs`).
//!
//! Pure apart from reading the dev stack's `stack.json` when the environment's AWS is the dev
//! stack (for moto's endpoint). The seal's `kms_key_id` is the key's alias (KMS resolves it), so
//! rendering needs no AWS call. Against a loopback endpoint (moto) the static test credentials
//! are written too; real deployments get no credentials (the instance role) and no endpoint.

use crate::config::{AwsConnection, Environment, OpenbaoCluster};
use crate::dev::{
    AuditFileConfig, AwsKmsSealConfig, BaoVersion, DevError, KmsPluginConfig, ListenerConfig, RaftStorageConfig,
    RetryJoinConfig, ServerConfig, ServerConfigV27,
};

/// Mount path of the declarative audit device.
pub const AUDIT_PATH: &str = "file";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: no openbao_cluster: section; declare the cluster's nodes there first", file = .0)]
    NoCluster(String),
    #[error("node {node} does not exist: openbao_cluster has {nodes} node(s), numbered 1 to {nodes}")]
    NoSuchNode { node: usize, nodes: usize },
    #[error(
        "OpenBao 2.7 has no built-in awskms seal: declare openbao_cluster.kms_plugin (an artifacts: item with the pinned plugin) or render --version 2.6"
    )]
    NoKmsPlugin,
    #[error("the awskms seal needs the environment's aws: section (region or dev stack)")]
    NoAws,
    #[error("the dev stack's moto endpoint: {0}")]
    DevStack(String),
    #[error(transparent)]
    Template(#[from] DevError),
}

/// What to render.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub version: BaoVersion,
    /// 1-based.
    pub node: usize,
}

/// The node id of node `i` (1-based) in raft.
pub fn node_id(i: usize) -> String {
    format!("node-{i}")
}

fn host_port(addr: &str) -> &str {
    addr.split_once("://").map_or(addr, |(_, rest)| rest)
}

fn is_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "::1" || h == "[::1]")
}

/// The seal stanza for `cluster.seal_key`, if any.
fn awskms(env: &Environment, cluster: &OpenbaoCluster) -> Result<Option<AwsKmsSealConfig>, RenderError> {
    let Some(key) = &cluster.seal_key else { return Ok(None) };
    let alias = env.kms_iam.kms_keys.get(key).map(|k| k.alias.clone()).unwrap_or_default();
    let (region, endpoint) = match &env.aws {
        Some(AwsConnection::Account { region, endpoint }) => (region.clone(), endpoint.clone()),
        Some(AwsConnection::DevStack { dir }) => {
            let state = crate::dev::StackState::load(dir).map_err(|e| RenderError::DevStack(e.to_string()))?;
            let endpoint =
                state.moto_endpoint.ok_or_else(|| RenderError::DevStack("the dev stack runs no moto".into()))?;
            ("us-east-1".to_string(), Some(endpoint))
        }
        None => return Err(RenderError::NoAws),
    };
    let moto = endpoint.as_deref().is_some_and(is_loopback);
    Ok(Some(AwsKmsSealConfig {
        region,
        kms_key_id: alias,
        endpoint,
        access_key: moto.then(|| "test".to_string()),
        secret_key: moto.then(|| "test".to_string()),
    }))
}

/// The 2.6-form context for node `node` (1-based).
pub fn server_config(env: &Environment, node: usize) -> Result<ServerConfig, RenderError> {
    let cluster =
        env.kms_iam.openbao_cluster.as_ref().ok_or_else(|| RenderError::NoCluster(env.file.display().to_string()))?;
    let nodes = usize::from(cluster.nodes);
    if node == 0 || node > nodes {
        return Err(RenderError::NoSuchNode { node, nodes });
    }
    let api = &cluster.api_addresses[node - 1];
    let id = node_id(node);
    let tls = api.starts_with("https://");
    let listen = cluster.listen_address.clone().unwrap_or_else(|| host_port(api).to_string());
    let cluster_addr = &cluster.cluster_addresses[node - 1];
    // The cluster listener binds the listen host on the port of this node's cluster address.
    let cluster_listen = match (listen.rsplit_once(':'), host_port(cluster_addr).rsplit_once(':')) {
        (Some((host, _)), Some((_, port))) => Some(format!("{host}:{port}")),
        _ => None,
    };
    Ok(ServerConfig {
        storage: RaftStorageConfig {
            path: format!("{}/{id}", cluster.data_dir.trim_end_matches('/')),
            node_id: id,
            performance_multiplier: cluster.performance_multiplier,
            retry_join: cluster
                .api_addresses
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != node - 1)
                .map(|(_, a)| RetryJoinConfig { leader_api_addr: a.clone() })
                .collect(),
        },
        listener: ListenerConfig {
            address: listen,
            tls_disable: !tls,
            cluster_address: cluster_listen,
            tls_cert_file: cluster.tls_cert_file.clone(),
            tls_key_file: cluster.tls_key_file.clone(),
        },
        api_addr: api.clone(),
        cluster_addr: cluster_addr.clone(),
        awskms: awskms(env, cluster)?,
        audit: cluster.audit_file.as_ref().map(|f| AuditFileConfig {
            path: AUDIT_PATH.to_string(),
            description: "managed by ctl: openbao_cluster.audit_file".to_string(),
            file_path: f.clone(),
        }),
    })
}

/// The `artifacts:` item holding the 2.7 KMS plugin, when the 2.7 form needs one.
pub fn kms_plugin_artifact(env: &Environment) -> Option<&str> {
    let cluster = env.kms_iam.openbao_cluster.as_ref()?;
    cluster.seal_key.as_ref()?;
    cluster.kms_plugin.as_ref().map(|p| p.artifact.as_str())
}

/// The server config text of one node. In the 2.7 form the plugin's `sha256sum` is `verified`
/// (the digest `ctl::artifacts::verify_pinned` checked against S3) or, when `None`, the
/// environment's pinned digest unchecked.
pub fn render(env: &Environment, opts: Options, verified: Option<&str>) -> Result<String, RenderError> {
    let base = server_config(env, opts.node)?;
    match opts.version {
        BaoVersion::V2_6 => Ok(base.render()?),
        BaoVersion::V2_7 => {
            let cluster = env.kms_iam.openbao_cluster.as_ref().expect("checked by server_config");
            let kms_plugin = match (&base.awskms, &cluster.kms_plugin) {
                (None, _) => None,
                (Some(_), None) => return Err(RenderError::NoKmsPlugin),
                (Some(_), Some(p)) => Some(KmsPluginConfig {
                    command: p.command.clone(),
                    sha256sum: verified.unwrap_or(&p.sha256).to_string(),
                }),
            };
            let v27 = ServerConfigV27 {
                plugin_directory: kms_plugin.as_ref().map(|_| cluster.plugin_directory.clone()),
                kms_plugin,
                base,
            };
            Ok(v27.render()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn load(dir: &Path, body: &str) -> Result<Environment, String> {
        let path = dir.join("prod.yaml");
        std::fs::write(
            &path,
            format!("openbao:\n  address: https://bao.example.com:8200\n  token_env: BAO_TOKEN\n{body}"),
        )
        .unwrap();
        crate::config::load(&path).map_err(|e| e.to_string())
    }

    fn cluster_yaml(nodes: usize, seal: bool) -> String {
        let addrs: Vec<String> = (1..=nodes).map(|i| format!("https://10.0.{i}.10:8200")).collect();
        format!(
            "aws: {{ region: eu-west-1 }}
iam:
  roles:
    openbao: {{ instance_profile: true }}
kms:
  unseal_key: {{ alias: alias/ctl-prod-unseal, description: unseal, openbao_role: openbao }}
artifacts:
  bucket: acme-boot
  items:
    - {{ name: kms-plugin, version: \"0.1.0\", file: openbao-plugin-kms-aws, sha256: \"{SHA}\" }}
openbao_cluster:
  nodes: {nodes}
  api_addresses: [{}]
  listen_address: \"0.0.0.0:8200\"
  tls_cert_file: /etc/openbao/tls.crt
  tls_key_file: /etc/openbao/tls.key
  data_dir: /var/lib/openbao
  audit_file: /var/log/openbao/audit.log
{}  kms_plugin: {{ artifact: kms-plugin }}
",
            addrs.join(", "),
            if seal { "  seal_key: unseal_key\n" } else { "" }
        )
    }

    #[test]
    fn renders_the_2_6_form_for_three_nodes() {
        let tmp = tempfile::tempdir().unwrap();
        let env = load(tmp.path(), &cluster_yaml(3, true)).unwrap();
        let hcl = render(&env, Options { version: BaoVersion::V2_6, node: 2 }, None).unwrap();
        assert!(hcl.contains("node_id = \"node-2\""), "{hcl}");
        assert!(hcl.contains("path    = \"/var/lib/openbao/node-2\""), "{hcl}");
        // Joins the two others, not itself.
        assert_eq!(hcl.matches("retry_join {").count(), 2, "{hcl}");
        assert!(hcl.contains("leader_api_addr = \"https://10.0.1.10:8200\""), "{hcl}");
        assert!(hcl.contains("leader_api_addr = \"https://10.0.3.10:8200\""), "{hcl}");
        assert!(!hcl.contains("leader_api_addr = \"https://10.0.2.10:8200\""), "{hcl}");
        assert!(hcl.contains("address     = \"0.0.0.0:8200\""), "{hcl}");
        assert!(hcl.contains("cluster_address = \"0.0.0.0:8201\""), "{hcl}");
        assert!(hcl.contains("tls_disable = false"), "{hcl}");
        assert!(hcl.contains("tls_cert_file = \"/etc/openbao/tls.crt\""), "{hcl}");
        assert!(hcl.contains("seal \"awskms\" {"), "{hcl}");
        assert!(hcl.contains("region     = \"eu-west-1\""), "{hcl}");
        assert!(hcl.contains("kms_key_id = \"alias/ctl-prod-unseal\""), "{hcl}");
        for absent in ["endpoint", "access_key", "secret_key", "plugin"] {
            assert!(!hcl.contains(absent), "{absent} in {hcl}");
        }
        assert!(hcl.contains("audit \"file\" \"file\" {"), "{hcl}");
        assert!(hcl.contains("file_path = \"/var/log/openbao/audit.log\""), "{hcl}");
        assert!(hcl.contains("api_addr     = \"https://10.0.2.10:8200\""), "{hcl}");
        assert!(hcl.contains("cluster_addr = \"https://10.0.2.10:8201\""), "{hcl}");
    }

    #[test]
    fn renders_the_2_7_plugin_form_for_five_nodes() {
        let tmp = tempfile::tempdir().unwrap();
        let env = load(tmp.path(), &cluster_yaml(5, true)).unwrap();
        let hcl = render(&env, Options { version: BaoVersion::V2_7, node: 5 }, None).unwrap();
        assert_eq!(hcl.matches("retry_join {").count(), 4, "{hcl}");
        assert!(hcl.contains("plugin_directory = \"/usr/local/lib/openbao/plugins\""), "{hcl}");
        assert!(hcl.contains("plugin \"kms\" \"awskms\" {"), "{hcl}");
        assert!(hcl.contains("command   = \"openbao-plugin-kms-aws\""), "{hcl}");
        assert!(hcl.contains(&format!("sha256sum = \"{SHA}\"")), "{hcl}");
        assert!(hcl.contains("seal \"awskms\" {"), "{hcl}");
        // The plugin is declared before the seal that uses it.
        assert!(hcl.find("plugin \"kms\"").unwrap() < hcl.find("seal \"awskms\"").unwrap(), "{hcl}");
        assert!(hcl.contains("node_id = \"node-5\""), "{hcl}");
    }

    #[test]
    fn shamir_has_neither_seal_nor_plugin_in_either_form() {
        let tmp = tempfile::tempdir().unwrap();
        let env = load(tmp.path(), &cluster_yaml(3, false)).unwrap();
        for version in [BaoVersion::V2_6, BaoVersion::V2_7] {
            let hcl = render(&env, Options { version, node: 1 }, None).unwrap();
            assert!(!hcl.contains("seal"), "{hcl}");
            assert!(!hcl.contains("plugin"), "{hcl}");
        }
    }

    #[test]
    fn single_node_has_no_retry_join_and_moto_gets_endpoint_and_test_credentials() {
        let tmp = tempfile::tempdir().unwrap();
        let body = "aws: { region: us-east-1, endpoint: \"http://127.0.0.1:5000\" }
iam: { roles: { openbao: {} } }
kms: { k: { alias: alias/x, openbao_role: openbao } }
openbao_cluster: { nodes: 1, api_addresses: [\"http://127.0.0.1:8200\"], seal_key: k, performance_multiplier: 1 }
";
        let env = load(tmp.path(), body).unwrap();
        let hcl = render(&env, Options { version: BaoVersion::V2_6, node: 1 }, None).unwrap();
        assert!(!hcl.contains("retry_join"), "{hcl}");
        assert!(hcl.contains("endpoint   = \"http://127.0.0.1:5000\""), "{hcl}");
        assert!(hcl.contains("access_key = \"test\""), "{hcl}");
        assert!(hcl.contains("tls_disable = true"), "{hcl}");
        assert!(hcl.contains("address     = \"127.0.0.1:8200\""), "{hcl}");
        assert!(hcl.contains("performance_multiplier = 1"), "{hcl}");
        assert!(!hcl.contains("audit"), "{hcl}");
        let err = render(&env, Options { version: BaoVersion::V2_7, node: 1 }, None).unwrap_err();
        assert!(matches!(err, RenderError::NoKmsPlugin), "{err}");
        let err = render(&env, Options { version: BaoVersion::V2_6, node: 2 }, None).unwrap_err();
        assert!(err.to_string().contains("1 to 1"), "{err}");
    }

    #[test]
    fn strict_mode_rejects_a_template_naming_a_missing_value() {
        let tmp = tempfile::tempdir().unwrap();
        let env = load(tmp.path(), &cluster_yaml(3, true)).unwrap();
        let ctx = server_config(&env, 1).unwrap();
        let err = crate::dev::render_text("t", "x = \"{{storage.no_such_field}}\"", &ctx).unwrap_err();
        assert!(err.to_string().contains("no_such_field"), "{err}");
        let err = crate::dev::render_text("t", "region = \"{{awskms.regin}}\"", &ctx).unwrap_err();
        assert!(err.to_string().contains("regin"), "{err}");
    }
}

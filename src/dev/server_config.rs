//! The OpenBao server config of the dev stack: [`ServerConfig`] is the documented context of
//! `templates/openbao/server.hcl.hbs`, rendered in handlebars strict mode with HCL escaping.

use super::DevError;
use handlebars::Handlebars;
use serde::Serialize;

pub const SERVER_TEMPLATE_NAME: &str = "templates/openbao/server.hcl.hbs";
pub const SERVER_27_TEMPLATE_NAME: &str = "templates/openbao/server-2.7.hcl.hbs";

/// Embedded so `ctl` renders the same template from any working directory.
const SERVER_TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/openbao/server.hcl.hbs"
));
const SERVER_27_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/openbao/server-2.7.hcl.hbs"));

/// Context of `templates/openbao/server.hcl.hbs` (2.6 form: built-in `seal "awskms"`).
///
/// Every field is always serialized (`None` as `null`), so strict mode catches a misspelt
/// name in the template even inside an `{{#if}}`. Extend by adding fields here and using them
/// in the template; strings are escaped for HCL quoted strings.
#[derive(Clone, Debug, Serialize)]
pub struct ServerConfig {
    /// `storage "raft"`.
    pub storage: RaftStorageConfig,
    /// `listener "tcp"`.
    pub listener: ListenerConfig,
    /// `http://127.0.0.1:<port>`: the address clients are told to use.
    pub api_addr: String,
    /// `http://127.0.0.1:<cluster port>`: raft/cluster traffic.
    pub cluster_addr: String,
    /// `seal "awskms"` stanza; `None` means no stanza (the default shamir seal).
    pub awskms: Option<AwsKmsSealConfig>,
    /// Declarative `audit "file" "<path>"` device; `None`: no stanza.
    pub audit: Option<AuditFileConfig>,
}

/// A declarative file audit device (OpenBao ≥ 2.4 reads `audit` stanzas from the config and
/// creates the device on the active node).
#[derive(Clone, Debug, Serialize)]
pub struct AuditFileConfig {
    /// Mount path of the device, e.g. `file`.
    pub path: String,
    pub description: String,
    pub file_path: String,
}

/// One `retry_join` block of `storage "raft"`.
#[derive(Clone, Debug, Serialize)]
pub struct RetryJoinConfig {
    /// `http(s)://host:port` of a peer's API.
    pub leader_api_addr: String,
}

/// Context of `templates/openbao/server-2.7.hcl.hbs`: the 2.6 context plus the KMS plugin.
#[derive(Clone, Debug, Serialize)]
pub struct ServerConfigV27 {
    #[serde(flatten)]
    pub base: ServerConfig,
    /// `plugin_directory`; required by OpenBao when `kms_plugin` is set.
    pub plugin_directory: Option<String>,
    /// `plugin "kms" "awskms"`; `None`: no plugin stanza (shamir).
    pub kms_plugin: Option<KmsPluginConfig>,
}

/// `plugin "kms" "awskms" { command, sha256sum }`.
#[derive(Clone, Debug, Serialize)]
pub struct KmsPluginConfig {
    /// The binary's name in `plugin_directory`.
    pub command: String,
    /// Its sha256 (hex): OpenBao refuses to run a binary with another digest.
    pub sha256sum: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RaftStorageConfig {
    /// Absolute path of the raft data dir (must exist before the server starts).
    pub path: String,
    pub node_id: String,
    /// Scales raft's timeouts (1 = fastest; OpenBao's default is 5). The dev stack uses 1 so
    /// a single node elects itself leader in about a second instead of about ten.
    pub performance_multiplier: Option<u32>,
    /// Peers to join (a cluster); empty for a single node.
    pub retry_join: Vec<RetryJoinConfig>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ListenerConfig {
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Always `true` for the dev stack (loopback only).
    pub tls_disable: bool,
    /// `host:port` the cluster (raft) listener binds; OpenBao's default is the API port + 1,
    /// which must then match `cluster_addr`. Omitted from the output when `None`.
    pub cluster_address: Option<String>,
    /// Omitted from the output when `None`.
    pub tls_cert_file: Option<String>,
    /// Omitted from the output when `None`.
    pub tls_key_file: Option<String>,
}

/// `seal "awskms"`. Real deployments leave the credentials out (instance role) and the
/// endpoint out (the regional AWS endpoint); the dev stack sets all of them to reach moto.
#[derive(Clone, Debug, Serialize)]
pub struct AwsKmsSealConfig {
    pub region: String,
    pub kms_key_id: String,
    /// e.g. `http://127.0.0.1:<moto port>`; omitted from the output when `None`.
    pub endpoint: Option<String>,
    /// Omitted from the output when `None`.
    pub access_key: Option<String>,
    /// Omitted from the output when `None`.
    pub secret_key: Option<String>,
}

impl ServerConfig {
    /// One node on loopback, plain HTTP: raft in `raft_dir`, the API on `api_port`, the
    /// cluster on `cluster_port`, the fastest raft timeouts (a single node elects itself in
    /// about a second), sealed by `awskms` (shamir when `None`). The dev stack and scratch
    /// servers run this.
    pub fn loopback_node(raft_dir: &std::path::Path, node_id: &str, api_port: u16, cluster_port: u16, awskms: Option<AwsKmsSealConfig>) -> ServerConfig {
        ServerConfig {
            storage: RaftStorageConfig {
                path: raft_dir.display().to_string(),
                node_id: node_id.to_string(),
                performance_multiplier: Some(1),
                retry_join: vec![],
            },
            listener: ListenerConfig {
                address: format!("127.0.0.1:{api_port}"),
                tls_disable: true,
                cluster_address: None,
                tls_cert_file: None,
                tls_key_file: None,
            },
            api_addr: format!("http://127.0.0.1:{api_port}"),
            cluster_addr: format!("http://127.0.0.1:{cluster_port}"),
            awskms,
            audit: None,
        }
    }

    /// Renders `templates/openbao/server.hcl.hbs` (strict mode, HCL string escaping).
    pub fn render(&self) -> Result<String, DevError> {
        render_template(SERVER_TEMPLATE_NAME, SERVER_TEMPLATE, self)
    }
}

impl ServerConfigV27 {
    /// Renders `templates/openbao/server-2.7.hcl.hbs` (strict mode, HCL string escaping).
    pub fn render(&self) -> Result<String, DevError> {
        render_template(SERVER_27_TEMPLATE_NAME, SERVER_27_TEMPLATE, self)
    }
}

/// Renders a template text with the same engine as the server configs (for tests of other
/// contexts and for custom templates).
pub fn render_text(name: &'static str, template: &str, context: &impl Serialize) -> Result<String, DevError> {
    render_template(name, template, context)
}

fn render_template(
    name: &'static str,
    template: &str,
    context: &impl Serialize,
) -> Result<String, DevError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(hcl_escape);
    hb.register_template_string(name, template)
        .map_err(|e| DevError::Template {
            template: name,
            message: e.to_string(),
        })?;
    hb.render(name, context).map_err(|e| DevError::Template {
        template: name,
        message: e.to_string(),
    })
}

/// Escapes a value for use inside an HCL quoted string: backslash, quote, control characters
/// and the template sequences `${` / `%{`.
pub fn hcl_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(awskms: Option<AwsKmsSealConfig>) -> ServerConfig {
        ServerConfig {
            storage: RaftStorageConfig {
                path: "/tmp/dev/raft".into(),
                node_id: "ctl-dev".into(),
                performance_multiplier: Some(1),
                retry_join: vec![],
            },
            listener: ListenerConfig {
                address: "127.0.0.1:8200".into(),
                tls_disable: true,
                cluster_address: None,
                tls_cert_file: None,
                tls_key_file: None,
            },
            api_addr: "http://127.0.0.1:8200".into(),
            cluster_addr: "http://127.0.0.1:8201".into(),
            awskms,
            audit: None,
        }
    }

    #[test]
    fn renders_awskms_stanza_with_endpoint_and_credentials() {
        let hcl = config(Some(AwsKmsSealConfig {
            region: "us-east-1".into(),
            kms_key_id: "1234-abcd".into(),
            endpoint: Some("http://127.0.0.1:5000".into()),
            access_key: Some("test".into()),
            secret_key: Some("test".into()),
        }))
        .render()
        .unwrap();
        assert!(hcl.contains("seal \"awskms\" {"), "{hcl}");
        assert!(hcl.contains("kms_key_id = \"1234-abcd\""), "{hcl}");
        assert!(
            hcl.contains("endpoint   = \"http://127.0.0.1:5000\""),
            "{hcl}"
        );
        assert!(hcl.contains("access_key = \"test\""), "{hcl}");
        assert!(hcl.contains("secret_key = \"test\""), "{hcl}");
        assert!(hcl.contains("path    = \"/tmp/dev/raft\""), "{hcl}");
        assert!(hcl.contains("performance_multiplier = 1"), "{hcl}");
        assert!(hcl.contains("address     = \"127.0.0.1:8200\""), "{hcl}");
        assert!(hcl.contains("tls_disable = true"), "{hcl}");
        assert!(
            hcl.contains("api_addr     = \"http://127.0.0.1:8200\""),
            "{hcl}"
        );
        assert!(
            hcl.contains("cluster_addr = \"http://127.0.0.1:8201\""),
            "{hcl}"
        );
        assert!(
            !hcl.contains("disable_mlock"),
            "2.6.2 rejects disable_mlock: {hcl}"
        );
    }

    #[test]
    fn omits_credentials_and_endpoint_when_not_given() {
        let hcl = config(Some(AwsKmsSealConfig {
            region: "eu-west-1".into(),
            kms_key_id: "alias/prod-unseal".into(),
            endpoint: None,
            access_key: None,
            secret_key: None,
        }))
        .render()
        .unwrap();
        assert!(hcl.contains("seal \"awskms\""), "{hcl}");
        assert!(hcl.contains("region     = \"eu-west-1\""), "{hcl}");
        for absent in ["endpoint", "access_key", "secret_key"] {
            assert!(!hcl.contains(absent), "{absent} in {hcl}");
        }
    }

    #[test]
    fn shamir_has_no_seal_stanza() {
        let hcl = config(None).render().unwrap();
        assert!(!hcl.contains("seal"), "{hcl}");
        assert!(hcl.contains("storage \"raft\""), "{hcl}");
    }

    #[test]
    fn strict_mode_rejects_unknown_names() {
        let err = render_template("t", "x = \"{{nope}}\"", &config(None)).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn values_are_escaped_for_hcl_strings() {
        assert_eq!(hcl_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(hcl_escape("${x} %{y} $z"), "$${x} %%{y} $z");
        assert_eq!(hcl_escape("a=b/c&d"), "a=b/c&d");
        assert_eq!(hcl_escape("l1\nl2"), "l1\\nl2");
        let mut c = config(None);
        c.storage.path = "/tmp/we\"ird/${x}".into();
        let hcl = c.render().unwrap();
        assert!(hcl.contains(r#"path    = "/tmp/we\"ird/$${x}""#), "{hcl}");
    }
}

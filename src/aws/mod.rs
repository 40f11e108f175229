//! The AWS provider: reads live AWS resources and carries out changes to them, like
//! [`crate::openbao`] does for OpenBao. Each kind's create/update/delete is a handler in its
//! module, registered in [`crate::providers::handler`]; this file connects and observes.
//!
//! Never sends traffic anywhere but the configured endpoint: with a loopback endpoint (moto)
//! the credentials are static test credentials and no environment, profile or IMDS look-up
//! happens.

use crate::config::AwsConnection;
use crate::model::{Kind, Observed};
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub mod client;
pub mod cloudwatch;
pub mod ec2;
pub mod elastic_ip;
pub mod iam;
pub mod internet_gateway;
pub mod kms;
pub mod network;
pub mod network_common;
pub mod rds;
pub mod record_calls;
pub mod resources;
pub mod route53;
pub mod route_table;
pub mod security_group;
pub mod sns;
pub mod subnet;
pub mod tags;
pub mod vpc;
pub mod vpc_endpoint;

/// Credentials moto accepts (it only checks that requests are SigV4-signed).
const MOTO_ACCESS_KEY: &str = "test";
const MOTO_SECRET_KEY: &str = "test";
const MOTO_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("cannot set up AWS access: {0}")]
    Connect(String),
    #[error("{service} {operation}: {message}")]
    Api { service: &'static str, operation: &'static str, message: String },
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    /// An SDK error as the service's error code and message (`DependencyViolation: The subnet
    /// … has dependencies`), or, when the call got no service answer, what failed and its root
    /// cause (`dispatch failure: Connection refused (os error 111)`). Never request or response
    /// bodies.
    pub fn api<E>(service: &'static str, operation: &'static str, e: E) -> AwsError
    where
        E: std::error::Error + ProvideErrorMetadata,
    {
        let message = match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(only), None) | (None, Some(only)) => only.to_string(),
            (None, None) => {
                let mut root: &dyn std::error::Error = &e;
                while let Some(cause) = root.source() {
                    root = cause;
                }
                let (what, why) = (e.to_string(), root.to_string());
                if what == why { what } else { format!("{what}: {why}") }
            }
        };
        AwsError::Api { service, operation, message }
    }
}

/// A connection to one AWS account/region (or moto).
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    /// The environment's name: every resource is tagged with it.
    pub environment: String,
    pub endpoint: Option<String>,
    /// The alarm webhook URL, read by `cli::context::session` (`alarms::webhook::resolve`);
    /// only `sns::apply`'s Subscribe uses it.
    pub webhook: Option<crate::secret::Sensitive<String>>,
    /// The [`record_calls`] test hook, when it is on.
    record_calls: Option<SharedInterceptor>,
    /// This is the local dev stack's moto (whose own unseal key alias is not reported).
    pub dev_stack: bool,
}

fn is_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "::1" || h == "[::1]")
}

impl Aws {
    pub async fn connect(conn: &AwsConnection, environment: &str) -> Result<Aws, AwsError> {
        let (region, endpoint) = match conn {
            AwsConnection::DevStack { dir } => {
                let state = crate::dev::StackState::load(dir).map_err(|e| AwsError::Connect(e.to_string()))?;
                let endpoint = state.moto_endpoint.ok_or_else(|| {
                    AwsError::Connect(format!("the dev stack in {} runs no moto (start it with the awskms seal)", dir.display()))
                })?;
                (MOTO_REGION.to_string(), Some(endpoint))
            }
            AwsConnection::Account { region, endpoint } => (region.clone(), endpoint.clone()),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(aws_config::Region::new(region));
        if let Some(e) = &endpoint {
            loader = loader.endpoint_url(e);
            if is_loopback(e) {
                loader = loader.credentials_provider(Credentials::new(MOTO_ACCESS_KEY, MOTO_SECRET_KEY, None, None, "ctl-moto"));
            }
        }
        if let Some(bundle) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) {
            loader = loader.http_client(ca_bundle_client(std::path::Path::new(&bundle))?);
        }
        Ok(Aws {
            sdk: loader.load().await,
            environment: environment.to_string(),
            endpoint,
            webhook: None,
            record_calls: record_calls::from_env(),
            dev_stack: matches!(conn, AwsConnection::DevStack { .. }),
        })
    }

    /// Interceptors for every client built from this connection (the test hook, when on).
    pub fn interceptors(&self) -> impl Iterator<Item = SharedInterceptor> + '_ {
        self.record_calls.iter().cloned()
    }
}

/// The SDK's default https client (rustls, aws-lc) trusting only the PEM bundle at `path`:
/// what `AWS_CA_BUNDLE` means to the AWS CLI, which the SDK for Rust does not read itself
/// (a TLS-intercepting proxy or a private endpoint's CA replaces the platform roots, as
/// `openbao.ca_cert` does).
pub fn ca_bundle_client(path: &std::path::Path) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, AwsError> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    crate::config::check_pem(path, crate::config::Pem::Certificate)
        .map_err(|e| AwsError::Connect(format!("$AWS_CA_BUNDLE: {e}")))?;
    let pem = std::fs::read(path).map_err(|e| AwsError::Connect(format!("$AWS_CA_BUNDLE: cannot read {}: {e}", path.display())))?;
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| AwsError::Connect(format!("$AWS_CA_BUNDLE {}: {e}", path.display())))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// Read every AWS resource this environment manages.
pub async fn observe(aws: &Aws) -> Result<Observed, AwsError> {
    #[allow(unused_mut)]
    let mut observed = Observed::default();
    // Service families add their reads here, e.g. `kms::observe(aws, &mut observed).await?;`
    cloudwatch::observe_alarms(aws, &mut observed).await?;
    iam::observe(aws, &mut observed).await?;
    let keys = kms::observe(aws, &mut observed).await?;
    let ids = network::observe(aws, &mut observed.resources).await?;
    rds::observe(aws, &ids.0, &mut observed.resources, &mut observed.unmanaged).await?;
    kms::show_keys(&mut observed.resources, &keys);
    cloudwatch::show_instances(&mut observed.resources, &ids.0);
    link_references(&mut observed.resources);
    Ok(observed)
}

/// Observed objects name what they refer to by address in their attributes (a subnet's `vpc`,
/// an instance's `subnet` and `security_groups`, a database's `subnet_group`, …). Those become
/// their `depends_on`, so deleting what is no longer declared removes dependents first, exactly
/// as for declared resources (the executor orders deletes by the live side's dependencies).
pub fn link_references(resources: &mut [crate::model::Resource]) {
    fn strings<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| strings(i, out)),
            _ => {}
        }
    }
    let known: std::collections::BTreeSet<String> = resources.iter().map(|r| r.address.as_str().to_string()).collect();
    for r in resources.iter_mut() {
        let mut found = Vec::new();
        r.attrs.values().for_each(|v| strings(v, &mut found));
        let refs: Vec<crate::model::Address> = found
            .into_iter()
            .filter(|s| *s != r.address.as_str() && known.contains(*s))
            .map(crate::model::Address::new)
            .collect();
        r.depends_on.extend(refs);
        r.depends_on.sort();
        r.depends_on.dedup();
    }
}

/// Which provider owns a kind.
pub fn owns(kind: Kind) -> bool {
    kind.provider() == crate::model::Provider::Aws
}

#[cfg(test)]
mod error_tests {
    use super::AwsError;
    use aws_sdk_ec2::operation::delete_subnet::DeleteSubnetError;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    const BODY: &str = "<Response><Errors><Error><Code>DependencyViolation</Code><Message>The subnet 'subnet-1' has dependencies and cannot be deleted.</Message></Error></Errors><RequestID>BODY-CANARY</RequestID></Response>";

    #[test]
    fn service_error_is_its_code_and_message_without_the_body() {
        let meta = ErrorMetadata::builder()
            .code("DependencyViolation")
            .message("The subnet 'subnet-1' has dependencies and cannot be deleted.")
            .build();
        let raw = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(BODY));
        let e: SdkError<DeleteSubnetError, Response> = SdkError::service_error(DeleteSubnetError::generic(meta), raw);
        let shown = AwsError::api("ec2", "DeleteSubnet", e).to_string();
        assert_eq!(shown, "ec2 DeleteSubnet: DependencyViolation: The subnet 'subnet-1' has dependencies and cannot be deleted.");
    }

    #[test]
    fn transport_error_is_its_root_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let e: SdkError<DeleteSubnetError, Response> = SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        let shown = AwsError::api("ec2", "DeleteSubnet", e).to_string();
        assert_eq!(shown, "ec2 DeleteSubnet: dispatch failure: Connection refused (os error 111)");
    }
}

#[cfg(test)]
mod tests {
    use crate::diff::diff;
    use crate::execute::{dependencies, steps};
    use crate::model::{Address, Kind, Resource, Scope};
    use serde_json::json;

    fn live(address: &str, kind: Kind, attrs: serde_json::Value) -> Resource {
        Resource {
            address: Address::new(address),
            kind,
            scope: Scope::Root,
            name: address.rsplit('.').next().unwrap().to_string(),
            attrs: attrs.as_object().unwrap().clone(),
            depends_on: vec![],
            container: None,
        }
    }

    #[test]
    fn references_in_attributes_order_deletes_dependents_first() {
        let mut resources = vec![
            live("aws.vpc.main", Kind::Vpc, json!({"cidr": "10.0.0.0/16"})),
            live("aws.subnet.a", Kind::Subnet, json!({"vpc": "aws.vpc.main", "cidr": "10.0.1.0/24"})),
            live("aws.sg.api", Kind::SecurityGroup, json!({"vpc": "aws.vpc.main", "ingress": [{"from": "aws.sg.lb"}]})),
            live("aws.sg.lb", Kind::SecurityGroup, json!({"vpc": "aws.vpc.main"})),
            live("aws.instance.api", Kind::Instance, json!({"subnet": "aws.subnet.a", "security_groups": ["aws.sg.api", "sg-0unknown"]})),
        ];
        super::link_references(&mut resources);
        let deps = |a: &str| {
            resources.iter().find(|r| r.address.as_str() == a).unwrap().depends_on.iter().map(|d| d.as_str().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(deps("aws.vpc.main"), Vec::<String>::new());
        assert_eq!(deps("aws.subnet.a"), ["aws.vpc.main"]);
        assert_eq!(deps("aws.sg.api"), ["aws.sg.lb", "aws.vpc.main"], "nested references count");
        assert_eq!(deps("aws.instance.api"), ["aws.sg.api", "aws.subnet.a"], "unknown ids are not addresses");

        // Nothing declared: everything is deleted, dependents before what they refer to.
        let changes = diff(&[], &resources, &[]).changes;
        let waits = dependencies(&steps(&changes));
        let index = |a: &str| changes.iter().position(|c| c.address.as_str() == a).unwrap();
        let waits_for = |a: &str, b: &str| waits[index(a)].contains(&index(b));
        assert!(waits_for("aws.vpc.main", "aws.subnet.a"));
        assert!(waits_for("aws.subnet.a", "aws.instance.api"));
        assert!(waits_for("aws.sg.lb", "aws.sg.api"));
        assert!(!waits_for("aws.instance.api", "aws.vpc.main"));
    }
}

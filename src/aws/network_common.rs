//! Shared by the network, EC2 and RDS kinds: SDK clients with bounded retries and timeouts,
//! ownership tags, and errors that name the endpoint.
//!
//! (A private tag helper: the shared `aws::tags` module did not exist when this was written.)

use super::{Aws, AwsError};
use crate::model::{Address, Attrs};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

pub const MANAGED_BY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "ctl";
pub const ENVIRONMENT: &str = "ctl-environment";
pub const ADDRESS: &str = "ctl-address";

/// At most this many attempts per call (the SDK's standard retry with backoff), so an
/// unreachable endpoint fails within seconds rather than hanging.
const MAX_ATTEMPTS: u32 = 3;

fn retry() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(120))
        .build()
}

pub fn ec2(aws: &Aws) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::config::Builder::from(&aws.sdk)
        .retry_config(retry())
        .timeout_config(timeouts())
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

pub fn rds(aws: &Aws) -> aws_sdk_rds::Client {
    let conf = aws_sdk_rds::config::Builder::from(&aws.sdk)
        .retry_config(retry())
        .timeout_config(timeouts())
        .build();
    aws_sdk_rds::Client::from_conf(conf)
}

/// An SDK error, with the endpoint it was sent to (so "connection refused" says where).
pub fn api<E: std::error::Error>(
    aws: &Aws,
    service: &'static str,
    operation: &'static str,
    e: E,
) -> AwsError {
    match AwsError::api(service, operation, e) {
        AwsError::Api {
            service,
            operation,
            message,
        } => {
            let endpoint = aws
                .endpoint
                .as_deref()
                .unwrap_or("the default AWS endpoint");
            AwsError::Api {
                service,
                operation,
                message: format!("{message} (endpoint {endpoint})"),
            }
        }
        other => other,
    }
}

/// The AWS error code of an SDK error, if the service answered with one.
pub fn code<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> Option<&str> {
    e.code()
}

/// The ownership tags of `address` in this environment, plus a Name tag for humans.
pub fn tag_pairs(aws: &Aws, address: &Address) -> Vec<(String, String)> {
    vec![
        (MANAGED_BY.into(), MANAGED_BY_VALUE.into()),
        (ENVIRONMENT.into(), aws.environment.clone()),
        (ADDRESS.into(), address.to_string()),
        ("Name".into(), format!("{}/{}", aws.environment, address)),
    ]
}

/// Whether tags (as key/value pairs) say: managed by ctl, this environment. Returns the address.
pub fn owned_address<'a>(
    aws: &Aws,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<Address> {
    let mut managed = false;
    let mut env = false;
    let mut address = None;
    for (k, v) in tags {
        match k {
            MANAGED_BY => managed = v == MANAGED_BY_VALUE,
            ENVIRONMENT => env = v == aws.environment,
            ADDRESS => address = Some(Address::new(v)),
            _ => {}
        }
    }
    if managed && env {
        address
    } else {
        None
    }
}

/// A typed attribute struct as a flat attribute map.
pub fn to_attrs<T: Serialize>(value: &T) -> Attrs {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Attrs::new(),
    }
}

/// A typed attribute struct from a resource's attributes.
pub fn from_attrs<T: DeserializeOwned>(address: &Address, attrs: &Attrs) -> Result<T, AwsError> {
    serde_json::from_value(serde_json::Value::Object(attrs.clone()))
        .map_err(|e| AwsError::Other(format!("{address}: malformed attributes: {e}")))
}

/// Sorted and deduplicated.
pub fn set(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

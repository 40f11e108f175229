//! Shared by the network, EC2 and RDS kinds: SDK clients with bounded retries and timeouts,
//! ownership tags (built on [`super::tags`]), and errors that name the endpoint.

use super::{Aws, AwsError};
use crate::model::{Address, Attrs};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub use super::tags::{ADDRESS_KEY as ADDRESS, ENVIRONMENT_KEY as ENVIRONMENT, MANAGED_BY_KEY as MANAGED_BY, MANAGED_BY_VALUE};
pub use crate::model::to_attrs;

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
    let mut conf = aws_sdk_ec2::config::Builder::from(&aws.sdk)
        .retry_config(retry())
        .timeout_config(timeouts());
    aws.interceptors().for_each(|i| { conf.push_interceptor(i); });
    aws_sdk_ec2::Client::from_conf(conf.build())
}

pub fn rds(aws: &Aws) -> aws_sdk_rds::Client {
    let mut conf = aws_sdk_rds::config::Builder::from(&aws.sdk)
        .retry_config(retry())
        .timeout_config(timeouts());
    aws.interceptors().for_each(|i| { conf.push_interceptor(i); });
    aws_sdk_rds::Client::from_conf(conf.build())
}

/// An SDK error, with the endpoint it was sent to (so "connection refused" says where).
pub fn api<E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata>(
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
    let mut tags = super::tags::ownership_tags(&aws.environment, address);
    tags.push(("Name".into(), format!("{}/{}", aws.environment, address)));
    tags
}

/// Whether tags (as key/value pairs) say: managed by ctl, this environment. Returns the address.
pub fn owned_address<'a>(aws: &Aws, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Address> {
    match super::tags::owner(tags, &aws.environment) {
        super::tags::Owner::Ours(address) => Some(address),
        _ => None,
    }
}

/// A typed attribute struct from a resource's attributes.
pub fn from_attrs<T: DeserializeOwned>(address: &Address, attrs: &Attrs) -> Result<T, AwsError> {
    crate::model::from_attrs(attrs).map_err(|e| AwsError::Other(format!("{address}: malformed attributes: {e}")))
}

/// Sorted and deduplicated.
pub fn set(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

//! Shared by the network, EC2 and RDS kinds: ownership tags (built on [`super::tags`]), and errors that name the endpoint.

use super::{Aws, AwsError};
use crate::model::{Address, Attrs};
use serde::de::DeserializeOwned;

pub use super::tags::{ADDRESS_KEY as ADDRESS, ENVIRONMENT_KEY as ENVIRONMENT, MANAGED_BY_KEY as MANAGED_BY, MANAGED_BY_VALUE};
pub use crate::model::to_attrs;

pub use super::client::{ec2, rds};

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

//! THE factory of AWS service clients: every client ctl builds comes from here, so all of
//! them get the same bounded retries and timeouts, and the [`super::record_calls`] test hook.
//! The connection itself (region, endpoint, the loopback rule for moto's static credentials,
//! `AWS_CA_BUNDLE`) is decided once in [`Aws::connect`].

use super::Aws;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

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

/// `$sdk::Client` for `aws`, with the shared settings; `$extra` adjusts the service's builder.
macro_rules! client {
    ($aws:expr, $sdk:ident $(, |$b:ident| $extra:expr)?) => {{
        let conf = $sdk::config::Builder::from(&$aws.sdk).retry_config(retry()).timeout_config(timeouts());
        $(let conf = { let $b = conf; $extra };)?
        let mut conf = conf;
        $aws.interceptors().for_each(|i| {
            conf.push_interceptor(i);
        });
        $sdk::Client::from_conf(conf.build())
    }};
}

pub fn ec2(aws: &Aws) -> aws_sdk_ec2::Client {
    client!(aws, aws_sdk_ec2)
}

pub fn rds(aws: &Aws) -> aws_sdk_rds::Client {
    client!(aws, aws_sdk_rds)
}

pub fn kms(aws: &Aws) -> aws_sdk_kms::Client {
    client!(aws, aws_sdk_kms)
}

pub fn iam(aws: &Aws) -> aws_sdk_iam::Client {
    client!(aws, aws_sdk_iam)
}

pub fn sns(aws: &Aws) -> aws_sdk_sns::Client {
    client!(aws, aws_sdk_sns)
}

pub fn cloudwatch(aws: &Aws) -> aws_sdk_cloudwatch::Client {
    client!(aws, aws_sdk_cloudwatch)
}

pub fn route53(aws: &Aws) -> aws_sdk_route53::Client {
    client!(aws, aws_sdk_route53)
}

/// S3, path-style when an endpoint such as moto is set; checksums only where the API needs
/// them (moto and S3-compatible stores reject the newer defaults).
pub fn s3(aws: &Aws) -> aws_sdk_s3::Client {
    client!(aws, aws_sdk_s3, |b| b
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .force_path_style(aws.endpoint.is_some()))
}

//! Test hook, off unless `CTL_TEST_RECORD_AWS_CALLS=<file>` is set: every call made through a
//! client built from an [`Aws`](super::Aws) connection appends one line `Service.Operation`
//! (e.g. `EC2.DeleteSubnet`) to that file before it is sent. Integration tests use it to check
//! the order of calls against moto. Only names are written, never parameters or responses.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::io::Write;
use std::path::PathBuf;

pub const ENV: &str = "CTL_TEST_RECORD_AWS_CALLS";

#[derive(Debug)]
struct RecordCalls(PathBuf);

impl Intercept for RecordCalls {
    fn name(&self) -> &'static str {
        "ctl-test-record-aws-calls"
    }

    // Once per call, before its first attempt. (Not `read_before_execution`: client-level
    // interceptors see that before the operation's `Metadata` is in the bag.)
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.0)?;
            file.write_all(format!("{}.{}\n", m.service(), m.name()).as_bytes())?;
        }
        Ok(())
    }
}

/// The recorder, when the hook is on.
pub fn from_env() -> Option<SharedInterceptor> {
    std::env::var_os(ENV).filter(|f| !f.is_empty()).map(|f| SharedInterceptor::new(RecordCalls(f.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_service_and_operation_before_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("calls.txt");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // dropped: refused
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{closed}"))
            .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await;
        let mut conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled());
        conf.push_interceptor(SharedInterceptor::new(RecordCalls(file.clone())));
        let ec2 = aws_sdk_ec2::Client::from_conf(conf.build());
        assert!(ec2.delete_subnet().subnet_id("subnet-1").send().await.is_err(), "nothing listens");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "EC2.DeleteSubnet\n");
    }
}

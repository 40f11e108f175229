//! The unseal key in moto's KMS.

use super::DevError;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};

/// The alias the dev stack gives its unseal key.
pub const UNSEAL_KEY_ALIAS: &str = "alias/ctl-dev-unseal";

/// Static credentials moto accepts (it only checks that requests are SigV4-signed).
pub(crate) const MOTO_ACCESS_KEY: &str = "test";
pub(crate) const MOTO_SECRET_KEY: &str = "test";
pub(crate) const MOTO_REGION: &str = "us-east-1";

/// The `seal "awskms"` settings for key `kms_key_id` in the moto at `endpoint`.
pub fn moto_seal(endpoint: &str, kms_key_id: &str) -> super::AwsKmsSealConfig {
    super::AwsKmsSealConfig {
        region: MOTO_REGION.to_string(),
        kms_key_id: kms_key_id.to_string(),
        endpoint: Some(endpoint.to_string()),
        access_key: Some(MOTO_ACCESS_KEY.to_string()),
        secret_key: Some(MOTO_SECRET_KEY.to_string()),
    }
}

/// A KMS client for moto at `endpoint`: static test credentials, fixed region, and no
/// environment, profile or IMDS look-ups.
fn moto_client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(MOTO_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            MOTO_ACCESS_KEY,
            MOTO_SECRET_KEY,
            None,
            None,
            "ctl-dev-moto",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// Creates a symmetric key in the KMS at `endpoint` (moto) and points [`UNSEAL_KEY_ALIAS`] at
/// it. Returns the key id.
pub async fn create_unseal_key(endpoint: &str) -> Result<String, DevError> {
    let client = moto_client(endpoint);
    let kms_err = |what: &str, e: &dyn std::fmt::Display| DevError::Kms {
        endpoint: endpoint.to_string(),
        message: format!("{what}: {e}"),
    };
    let created = client
        .create_key()
        .description("ctl dev stack: OpenBao auto-unseal key")
        .send()
        .await
        .map_err(|e| kms_err("CreateKey", &aws_sdk_kms::error::DisplayErrorContext(&e)))?;
    let key_id = created
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or_else(|| kms_err("CreateKey", &"response has no key metadata"))?;
    client
        .create_alias()
        .alias_name(UNSEAL_KEY_ALIAS)
        .target_key_id(&key_id)
        .send()
        .await
        .map_err(|e| kms_err("CreateAlias", &aws_sdk_kms::error::DisplayErrorContext(&e)))?;
    Ok(key_id)
}

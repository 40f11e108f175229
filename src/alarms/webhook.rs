//! The alarm webhook URL. A Make.com/Slack-style webhook URL is a bearer secret: whoever has it
//! can post to the on-call channel. So it is never in git (`alarms.sns.webhook` names an
//! environment variable or an OpenBao KV v2 field, see `config::WebhookSource`), it travels as a
//! [`Sensitive`] from [`resolve`] to the one `Subscribe` call (`aws::sns::apply`, through
//! `Aws::webhook`), and plans, diffs, PR comments and saved plans only ever see its
//! [`stand_in`]: `host (hmac:1a2b3c4d)`. Observation maps the live endpoint through the same
//! function, so an unchanged URL is no change, and a changed one replaces the subscription.

use crate::config::WebhookSource;
use crate::model::{Kind, Resource};
use crate::openbao::{Bao, BaoError};
use crate::secret::Sensitive;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The desired subscription's endpoint until [`set_stand_in`] replaces it (commands that only
/// load, like `ctl validate`, never resolve the URL).
pub const UNRESOLVED: &str = "(webhook URL not read yet)";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("alarms.sns.webhook: the environment variable {0} is not set (or not UTF-8); set it to the webhook URL")]
    EnvUnset(String),
    #[error("alarms.sns.webhook: the URL is in OpenBao ({0}), but this command has no OpenBao connection")]
    NoOpenBao(String),
    #[error("alarms.sns.webhook: reading {what} from OpenBao: {source}")]
    Bao {
        what: String,
        #[source]
        source: Box<BaoError>,
    },
    #[error("alarms.sns.webhook: {0}: the secret does not exist (write the URL there with `bao kv put`)")]
    NotFound(String),
    #[error("alarms.sns.webhook: {0}: the secret has no such field, or it is not a string")]
    NoField(String),
    /// The value is not repeated: it may be the secret with a typo.
    #[error("alarms.sns.webhook: the value of {0} is not an https:// URL with a host")]
    NotHttps(String),
}

/// Where a source reads from, for messages (no secret in it).
pub fn describe(source: &WebhookSource) -> String {
    match source {
        WebhookSource::Env(var) => format!("${var}"),
        WebhookSource::Kv { namespace, mount, path, field } => {
            let ns = namespace.as_ref().map(|n| format!("namespace {n}, ")).unwrap_or_default();
            format!("KV secret {ns}{mount}/{path} field {field}")
        }
    }
}

/// Read the URL. `bao` is needed only for `url_kv`.
pub async fn resolve(source: &WebhookSource, bao: Option<&Bao>) -> Result<Sensitive<String>, WebhookError> {
    let what = describe(source);
    let url = match source {
        WebhookSource::Env(var) => std::env::var(var).map_err(|_| WebhookError::EnvUnset(var.clone()))?,
        WebhookSource::Kv { namespace, mount, path, field } => {
            let bao = bao.ok_or_else(|| WebhookError::NoOpenBao(what.clone()))?;
            let body = bao
                .read(namespace.as_deref(), format!("{mount}/data/{path}"))
                .await
                .map_err(|source| WebhookError::Bao { what: what.clone(), source: Box::new(source) })?
                .ok_or_else(|| WebhookError::NotFound(what.clone()))?;
            match body.pointer("/data/data").and_then(|d| d.get(field)) {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(WebhookError::NoField(what)),
            }
        }
    };
    checked(url, what)
}

/// The URL as read (surrounding whitespace dropped), if it is an https:// URL with a host.
fn checked(raw: String, what: String) -> Result<Sensitive<String>, WebhookError> {
    let url = Sensitive::new(raw.trim().to_string());
    match url::Url::parse(url.expose()) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        _ => Err(WebhookError::NotHttps(what)),
    }
}

/// What plans show instead of the URL: its host and 8 hex digits of
/// HMAC-SHA256(key = "ctl alarm webhook v1" + environment name, message = the URL).
///
/// Trade-off: the key is not secret (the environment name is in the plan), so the digest only
/// salts per environment; what protects the URL is the truncation. 32 bits cannot identify a
/// URL whose token has more entropy than that (every real webhook token: 2^96 and more
/// candidates share each stand-in), so a plan reader learns the host and "changed or not", not
/// the URL. A *guessable* URL (a short or reused token) could be confirmed by trying candidates;
/// keying with a secret would close that, but the key would have to be available to every plan
/// and observe without being in the plan, and such a URL is not a secret anyway.
pub fn stand_in(environment: &str, url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "(unparsable URL)".into());
    let key = format!("ctl alarm webhook v1\0{environment}");
    let mac = hmac_sha256(key.as_bytes(), url.as_bytes());
    format!("{host} (hmac:{})", hex::encode(&mac[..4]))
}

/// RFC 2104 HMAC over SHA-256 (sha2 is already a dependency; the `hmac` crate would add one).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Put the stand-in of `url` on the desired webhook subscription (if alarms are declared).
pub fn set_stand_in(desired: &mut [Resource], environment: &str, url: &Sensitive<String>) {
    let address = super::resources::subscription_address();
    for r in desired.iter_mut().filter(|r| r.kind == Kind::SnsSubscription && r.address == address) {
        r.attrs.insert("endpoint".into(), Value::String(stand_in(environment, url.expose())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://hooks.example.com/T000/B000/secret-token-XYZ";

    #[test]
    fn stand_in_shows_the_host_and_a_digest_only() {
        let s = stand_in("prod", HOOK);
        assert!(s.starts_with("hooks.example.com (hmac:") && s.ends_with(')'), "{s}");
        assert_eq!(s.len(), "hooks.example.com (hmac:12345678)".len(), "{s}");
        assert!(!s.contains("secret-token") && !s.contains("T000"), "{s}");
        // Stable, and sensitive to the URL and the environment.
        assert_eq!(s, stand_in("prod", HOOK));
        assert_ne!(s, stand_in("prod", &format!("{HOOK}2")));
        assert_ne!(s, stand_in("staging", HOOK));
        assert_eq!(stand_in("prod", "not a url").split(" (hmac:").next(), Some("(unparsable URL)"));
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 and test case 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// No `set_var` here: changing the environment while other test threads read it is a data
    /// race in libc (it made this suite flaky).
    #[tokio::test]
    async fn resolve_checks_https_without_echoing() {
        let what = || "$CTL_TEST_WEBHOOK_RESOLVE".to_string();
        assert_eq!(checked(format!(" {HOOK}\n"), what()).unwrap().expose(), HOOK);
        let e = checked("http://hooks.example.com/secret-token-XYZ".into(), what()).unwrap_err().to_string();
        assert!(e.contains("$CTL_TEST_WEBHOOK_RESOLVE is not an https:// URL") && !e.contains("secret-token"), "{e}");
        let unset = "CTL_TEST_WEBHOOK_NEVER_SET_BY_ANYONE";
        let e = resolve(&WebhookSource::Env(unset.into()), None).await.unwrap_err().to_string();
        assert!(e.contains("CTL_TEST_WEBHOOK_NEVER_SET_BY_ANYONE is not set"), "{e}");
        let kv = WebhookSource::Kv { namespace: None, mount: "secret".into(), path: "alarms".into(), field: "url".into() };
        let e = resolve(&kv, None).await.unwrap_err().to_string();
        assert!(e.contains("KV secret secret/alarms field url") && e.contains("no OpenBao connection"), "{e}");
    }
}

//! ctl's own login: a JWT (a CI system's OIDC token) or an AppRole (with a response-wrapped
//! secret-id, unwrapped once), and the server version check every connection makes. The token a
//! login returns is ctl's to renew ([`super::token::keep_alive`]) and to revoke at exit
//! ([`Revoker`]); a token given to ctl (`BAO_TOKEN`, `token_file`) is never revoked.

use super::client::{data, Bao, BaoError, Idempotency};
use crate::secret::Sensitive;
use rustify::enums::RequestMethod;
use serde_json::{json, Value};

/// The oldest OpenBao ctl runs against, and why.
pub const MIN_VERSION: (u64, u64, u64) = (2, 6, 2);
const WHY_MIN: &str = "ctl needs namespaces (OpenBao 2.3) and response-wrapped AppRole secret-ids that standbys \
                       forward correctly (fixed in 2.6.2, openbao/openbao#3790)";

/// What ctl logs in with.
pub enum Credentials {
    Jwt { mount: String, role: String, jwt: Sensitive<String> },
    AppRole { mount: String, role_id: String, secret_id: Sensitive<String> },
}

fn anonymous(bao: &Bao) -> super::client::Scoped<'_> {
    bao.scoped_as(None, &Sensitive::new(String::new()))
}

fn client_token(reply: &Option<Value>, path: &str) -> Result<Sensitive<String>, BaoError> {
    reply
        .as_ref()
        .and_then(|b| b.pointer("/auth/client_token"))
        .and_then(Value::as_str)
        .map(|t| Sensitive::new(t.to_string()))
        .ok_or_else(|| BaoError::Unexpected { method: "POST", path: path.into(), message: "no client_token in the login response".into() })
}

/// Log in; the client uses the new token from then on.
pub async fn login(bao: &mut Bao, credentials: &Credentials) -> Result<(), BaoError> {
    let (path, body) = match credentials {
        Credentials::Jwt { mount, role, jwt } => (format!("auth/{mount}/login"), json!({"role": role, "jwt": jwt.expose()})),
        Credentials::AppRole { mount, role_id, secret_id } => {
            (format!("auth/{mount}/login"), json!({"role_id": role_id, "secret_id": secret_id.expose()}))
        }
    };
    // A repeated login only makes another short-lived token: safe to resend.
    let reply = bao.call(&anonymous(bao), RequestMethod::POST, &path, Some(&body), Idempotency::Idempotent).await?;
    let token = client_token(&reply, &path)?;
    bao.set_token(&token);
    Ok(())
}

/// The secret-id in `contents`: itself, or, when it is a wrapping token for a secret-id (what
/// `ctl approle issue` and the AppRole API hand out), the secret-id it wraps. Unwrapping
/// consumes the wrapping token, so a wrapped file serves one run.
pub async fn secret_id(bao: &Bao, contents: Sensitive<String>) -> Result<Sensitive<String>, BaoError> {
    let lookup = bao
        .call(&anonymous(bao), RequestMethod::POST, "sys/wrapping/lookup", Some(&json!({"token": contents.expose()})), Idempotency::Idempotent)
        .await;
    let creation_path = match lookup {
        Ok(body) => data(&body).and_then(|d| d.get("creation_path")).and_then(Value::as_str).unwrap_or_default().to_string(),
        // Not a (live) wrapping token: a plain secret-id.
        Err(e) if e.status() == Some(400) => return Ok(contents),
        Err(e) => return Err(e),
    };
    if !creation_path.ends_with("/secret-id") {
        return Err(BaoError::Other(format!(
            "the secret-id file holds a wrapping token for {creation_path}, not for an AppRole secret-id"
        )));
    }
    let holder = bao.scoped_as(None, &contents);
    let once = Idempotency::Once { check: "the wrapping token is single-use: issue a new wrapped secret-id (`ctl approle issue`)" };
    let reply = bao.call(&holder, RequestMethod::POST, "sys/wrapping/unwrap", Some(&json!({})), once).await?;
    data(&reply)
        .and_then(|d| d.get("secret_id"))
        .and_then(Value::as_str)
        .map(|s| Sensitive::new(s.to_string()))
        .ok_or_else(|| BaoError::Unexpected { method: "POST", path: "sys/wrapping/unwrap".into(), message: "no secret_id in the unwrapped response".into() })
}

/// `major.minor.patch` of a version string such as `2.6.2`, `v2.7.0-beta1` or `2.7.2+hsm`.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// Why ctl refuses a server that reports `version`, if it does.
pub fn refuse_version(version: &str) -> Option<String> {
    let (a, b, c) = MIN_VERSION;
    match parse_version(version) {
        Some(v) if v >= MIN_VERSION => None,
        Some(_) => Some(format!("OpenBao {version} is too old: {WHY_MIN}; upgrade to {a}.{b}.{c} or later")),
        None => Some(format!("OpenBao reports version {version:?}, which ctl cannot read; ctl needs {a}.{b}.{c} or later")),
    }
}

/// The server's version (`sys/seal-status`, which needs no token), refused if too old.
pub async fn check_version(bao: &Bao) -> Result<String, BaoError> {
    let body = bao.call(&anonymous(bao), RequestMethod::GET, "sys/seal-status", None, Idempotency::Idempotent).await?;
    let version = body.as_ref().and_then(|b| b.get("version")).and_then(Value::as_str).unwrap_or_default().to_string();
    match refuse_version(&version) {
        Some(why) => Err(BaoError::Other(format!("{}: {why}", bao.address()))),
        None => Ok(version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_2_6_2_are_refused_with_the_reason() {
        assert_eq!(parse_version("2.6.2"), Some((2, 6, 2)));
        assert_eq!(parse_version("v2.7.0-beta1"), Some((2, 7, 0)));
        assert_eq!(parse_version("2.10"), Some((2, 10, 0)));
        assert_eq!(parse_version("dev"), None);
        assert_eq!(refuse_version("2.6.2"), None);
        assert_eq!(refuse_version("2.7.2"), None);
        assert_eq!(refuse_version("3.0.0"), None);
        let old = refuse_version("2.6.1").unwrap();
        assert!(old.contains("2.6.1 is too old") && old.contains("2.6.2") && old.contains("#3790"), "{old}");
        assert!(refuse_version("2.2.0").unwrap().contains("namespaces (OpenBao 2.3)"));
        assert!(refuse_version("").unwrap().contains("cannot read"));
    }
}

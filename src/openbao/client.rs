//! The transport: vaultrs's client (its reqwest connection pool and middleware) plus a small
//! typed layer for what vaultrs 0.8 lacks (namespaces, mount tune, quotas, secret-id options,
//! settable wrap TTL). Every call goes through [`Bao::call`], which
//! - scopes the request to a namespace (`X-Vault-Namespace`) without building a new client,
//! - sends at most `limit` requests at a time (one semaphore per [`Bao`], see [`Bao::connect`]),
//! - retries with exponential backoff and jitter: what OpenBao provably did not act on (429,
//!   a refused connection, a route or KV mount not ready yet) always; 5xx and connections lost
//!   after sending only for [`Idempotency::Idempotent`] calls; for [`Idempotency::Once`] calls
//!   that is [`BaoError::OutcomeUnknown`],
//! - turns OpenBao's "Endpoint ignored these unrecognized parameters" warning into an error,
//! - keeps response bodies out of errors (they may hold secrets): only OpenBao's `errors`
//!   strings and the status code are kept.

use crate::secret::Sensitive;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use rustify::errors::ClientError as HttpError;
use rustify::Endpoint;
use serde_json::Value;
use std::time::Duration;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};

pub use crate::config::Tls;

#[derive(Debug, thiserror::Error)]
pub enum BaoError {
    #[error("cannot configure the OpenBao client for {address}: {message}")]
    Config { address: String, message: String },
    #[error("{method} {path}{ns}: HTTP {status}: {errors}", ns = ns_suffix(namespace))]
    Api {
        method: &'static str,
        path: String,
        namespace: Option<String>,
        status: u16,
        errors: String,
    },
    #[error("{method} {path}{ns}: cannot reach OpenBao at {address} after {attempts} attempts: {message}", ns = ns_suffix(namespace))]
    Unreachable {
        method: &'static str,
        path: String,
        namespace: Option<String>,
        address: String,
        attempts: u32,
        message: String,
    },
    #[error("{method} {path}{ns}: outcome unknown ({cause} after the request was sent); it may have succeeded: {check}", ns = ns_suffix(namespace))]
    OutcomeUnknown {
        method: &'static str,
        path: String,
        namespace: Option<String>,
        cause: String,
        check: String,
    },
    #[error("{method} {path}{ns}: OpenBao ignored parameters ctl sent ({warning}); this ctl does not match the server version", ns = ns_suffix(namespace))]
    IgnoredParameters {
        method: &'static str,
        path: String,
        namespace: Option<String>,
        warning: String,
    },
    /// The TLS handshake failed (an untrusted or wrong certificate): final, never retried.
    #[error("{address}: {message}")]
    Tls { address: String, message: String },
    /// A 403: ctl's token lacks a capability. `grant` is the path and capabilities of ctl's
    /// policy that allow the call (see `ctl render ctl-policy`).
    #[error("{method} {path}{ns}: permission denied{hint}", ns = ns_suffix(namespace), hint = denied_hint(grant))]
    Denied {
        method: &'static str,
        path: String,
        namespace: Option<String>,
        grant: Option<(String, String)>,
    },
    #[error(transparent)]
    Uncatalogued(#[from] super::access::Uncatalogued),
    #[error("{method} {path}: unexpected response: {message}")]
    Unexpected { method: &'static str, path: String, message: String },
    #[error("{0}")]
    Other(String),
}

fn denied_hint(grant: &Option<(String, String)>) -> String {
    match grant {
        Some((path, caps)) => format!(
            ": ctl's token needs \"{caps}\" on path \"{path}\"; `ctl render ctl-policy` prints the policy that grants it \
             (`ctl bootstrap` writes it)"
        ),
        None => String::new(),
    }
}

fn ns_suffix(ns: &Option<String>) -> String {
    ns.as_ref().map(|n| format!(" (namespace {n})")).unwrap_or_default()
}

impl BaoError {
    pub fn status(&self) -> Option<u16> {
        match self {
            BaoError::Api { status, .. } => Some(*status),
            BaoError::Denied { .. } => Some(403),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    fn errors_contain(&self, needle: &str) -> bool {
        matches!(self, BaoError::Api { errors, .. } if errors.contains(needle))
    }

    pub fn is_already_in_use(&self) -> bool {
        self.errors_contain("already in use")
    }

    /// A check-and-set write refused because the object's version is not the one given
    /// (`cas: 0` on policies: the policy already exists).
    pub fn is_cas_mismatch(&self) -> bool {
        self.errors_contain("check-and-set parameter did not match")
    }
}

/// Whether a call may be sent again when its first sending may have been acted on.
#[derive(Clone, Copy, Debug)]
pub enum Idempotency<'a> {
    /// Sending it twice leaves OpenBao as sending it once does: reads, deletes and "set this to
    /// that value" writes (config, policies, roles, mounts and namespaces, whose "already
    /// exists" the caller checks, KV writes; a check-and-set write resent after an unseen
    /// success loses to itself, see `state::write_cas`). Retried on 429, 5xx and connection
    /// errors.
    Idempotent,
    /// Every success acts again: a new secret-id or token, a used-up wrapping token. Retried
    /// only when OpenBao provably did not act on it; a 5xx or a connection lost after sending
    /// is [`BaoError::OutcomeUnknown`], telling the operator to `check` (no secrets in it).
    Once { check: &'a str },
}

/// Backoff for transient failures: 429, 5xx except 501, connection errors.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1 << attempt.min(16)).min(self.max);
        // Full jitter keeps a burst of parallel retries from hitting the server in lockstep.
        let nanos = exp.as_nanos().max(1) as u64;
        Duration::from_nanos(nanos / 2 + fastrand(nanos / 2 + 1))
    }
}

fn fastrand(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(bound);
    h.finish() % bound.max(1)
}

fn method_name(m: &RequestMethod) -> &'static str {
    match m {
        RequestMethod::DELETE => "DELETE",
        RequestMethod::GET => "GET",
        RequestMethod::HEAD => "HEAD",
        RequestMethod::LIST => "LIST",
        RequestMethod::POST => "POST",
        RequestMethod::PUT => "PUT",
        RequestMethod::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// A raw OpenBao API call, executed through vaultrs's middleware and HTTP client.
#[derive(Clone)]
struct Call {
    method: RequestMethod,
    path: String,
    /// What followed a `?` in the path given (e.g. `version=3`).
    query: Option<String>,
    body: Option<Vec<u8>>,
}

impl Endpoint for Call {
    type Response = Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> RequestMethod {
        self.method.clone()
    }

    fn query(&self) -> Result<Option<String>, HttpError> {
        Ok(self.query.clone())
    }

    fn body(&self) -> Result<Option<Vec<u8>>, HttpError> {
        Ok(self.body.clone())
    }
}

/// vaultrs's middleware plus the Content-Type OpenBao requires for PATCH (a JSON merge patch);
/// rustify sends none, which OpenBao reads as JSON for every other method.
struct Middle<'a>(&'a EndpointMiddleware);

impl rustify::MiddleWare for Middle<'_> {
    fn request<E: Endpoint>(&self, endpoint: &E, req: &mut http::Request<Vec<u8>>) -> Result<(), HttpError> {
        self.0.request(endpoint, req)?;
        if req.method() == http::Method::PATCH {
            req.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/merge-patch+json"));
        }
        Ok(())
    }

    fn response<E: Endpoint>(&self, endpoint: &E, resp: &mut http::Response<Vec<u8>>) -> Result<(), HttpError> {
        self.0.response(endpoint, resp)
    }
}

/// vaultrs's [`Client`] trait, scoped to one namespace and sharing the parent's connection
/// pool, so vaultrs's own API functions (AppRole login, KV v2) work inside a namespace too.
pub struct Scoped<'a> {
    bao: &'a Bao,
    middle: EndpointMiddleware,
    /// The workspace namespace relative to ctl's own (what the access catalogue matches).
    relative: Option<String>,
}

impl Client for Scoped<'_> {
    fn http(&self) -> &rustify::clients::reqwest::Client {
        &self.bao.inner.http
    }

    fn middle(&self) -> &EndpointMiddleware {
        &self.middle
    }

    fn settings(&self) -> &vaultrs::client::VaultClientSettings {
        &self.bao.inner.settings
    }

    fn set_token(&mut self, token: &str) {
        self.middle.token = token.to_string();
    }
}

/// A connection to one OpenBao server (cluster address).
pub struct Bao {
    inner: VaultClient,
    address: String,
    base: String,
    pub retry: RetryPolicy,
    /// 429 and 5xx answers seen (each retried); the executor adapts its concurrency to it.
    pub pressure: std::sync::Arc<crate::execute::Pressure>,
    /// HTTP requests sent, retries included (reported by `ctl plan`, read by benchmarks).
    requests: std::sync::atomic::AtomicU64,
    /// One permit per request in flight (`--parallelism` of them), however many tasks call.
    permits: tokio::sync::Semaphore,
    /// Every endpoint ctl may call; requests outside it are refused before they are sent.
    catalogue: super::access::Catalogue,
    /// ctl's namespace (`openbao.namespace` / `BAO_NAMESPACE`): every path is relative to it.
    namespace: Option<String>,
}

impl Bao {
    /// A client sending at most `limit` requests at a time (permits are held only while a
    /// request is in flight, not during retry backoff), with the platform's trust roots.
    pub fn connect(address: &str, token: &Sensitive<String>, limit: usize) -> Result<Bao, BaoError> {
        Bao::connect_tls(address, token, limit, &Tls::default())
    }

    /// The same with explicit TLS settings (already resolved from the file and `BAO_CACERT` &
    /// co. by the CLI; nothing here reads the environment, unlike vaultrs's settings defaults,
    /// so ctl builds the HTTP client itself).
    pub fn connect_tls(address: &str, token: &Sensitive<String>, limit: usize, tls: &Tls) -> Result<Bao, BaoError> {
        let config = |message: String| BaoError::Config { address: address.into(), message };
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| config(format!("cannot read {}: {e}", path.display())))
        };
        let mut http = reqwest::Client::builder().tls_backend_rustls().timeout(Duration::from_secs(60));
        let mut base = address.to_string();
        if address.starts_with("http://") {
            // No TLS: skip loading the platform verifier (reqwest issue 2988, as vaultrs does).
            http = http.tls_certs_only(Vec::new());
        } else {
            if let Some(ca) = &tls.ca_cert {
                let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?)
                    .map_err(|e| config(format!("{}: not a PEM certificate bundle: {e}", ca.display())))?;
                // The given CA *replaces* the platform roots (as BAO_CACERT does for the bao
                // CLI): a private deployment's CA pins it, so a certificate some public CA
                // issued for the same name is not accepted.
                http = http.tls_certs_only(certs);
            }
            if let Some((cert, key)) = &tls.client {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| config(format!("client certificate {} / key {}: {e}", cert.display(), key.display())))?;
                http = http.identity(identity);
            }
            if let Some(name) = &tls.server_name {
                // Verify (and send SNI) for `name` while connecting to the address's host: the
                // URL carries the name, and the resolver maps it to the host's addresses.
                let mut url = reqwest::Url::parse(address).map_err(|e| config(e.to_string()))?;
                let port = url.port_or_known_default().unwrap_or(443);
                let host = url.host_str().ok_or_else(|| config("no host".into()))?.trim_matches(['[', ']']).to_string();
                let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                    .map_err(|e| config(format!("cannot resolve {host}: {e}")))?
                    .collect();
                url.set_host(Some(name)).map_err(|e| config(format!("tls_server_name {name}: {e}")))?;
                http = http.resolve_to_addrs(name, &addrs);
                base = url.as_str().trim_end_matches('/').to_string();
            }
        }
        let http = http.build().map_err(|e| config(root_cause(&e)))?;
        let settings = VaultClientSettingsBuilder::default()
            .address(&base)
            .token(token.expose())
            .ca_certs(Vec::new())
            .identity(None)
            .verify(true)
            .timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| config(e.to_string()))?;
        let middle = EndpointMiddleware {
            token: token.expose().to_string(),
            version: format!("v{}", settings.version),
            wrap: None,
            namespace: None,
        };
        let inner = VaultClient { http: rustify::clients::reqwest::Client::new(&base, http), middle, settings };
        Ok(Bao {
            inner,
            address: address.to_string(),
            base,
            retry: RetryPolicy::default(),
            pressure: Default::default(),
            requests: Default::default(),
            permits: tokio::sync::Semaphore::new(limit.max(1)),
            catalogue: super::access::Catalogue::any(),
            namespace: None,
        })
    }

    /// Only the endpoints of this table (an environment's) may be called.
    pub fn with_catalogue(mut self, catalogue: super::access::Catalogue) -> Bao {
        self.catalogue = catalogue;
        self
    }

    /// Work inside `namespace` instead of the root: every path, workspace namespaces included,
    /// is relative to it.
    pub fn with_namespace(mut self, namespace: Option<String>) -> Bao {
        self.namespace = namespace.map(|n| n.trim_matches('/').to_string()).filter(|n| !n.is_empty());
        self.inner.middle.namespace = self.namespace.clone();
        self
    }

    /// ctl's namespace, if not the root.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Use `token` from now on (after a login).
    pub fn set_token(&mut self, token: &Sensitive<String>) {
        self.inner.settings.token = token.expose().to_string();
        self.inner.middle.token = token.expose().to_string();
    }

    /// What revokes this client's current token later (at exit), independent of the client.
    pub fn revoker(&self) -> Revoker {
        Revoker {
            http: self.http().clone(),
            url: format!("{}/v1/auth/token/revoke-self", self.base.trim_end_matches('/')),
            token: Sensitive::new(self.token().to_string()),
            namespace: self.namespace.clone(),
        }
    }

    /// The access catalogue this client enforces.
    pub fn catalogue(&self) -> &super::access::Catalogue {
        &self.catalogue
    }

    /// The URL requests go to: the address, with `tls_server_name` as its host when set.
    pub(crate) fn base_url(&self) -> &str {
        &self.base
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// HTTP requests this client has sent so far, retries included (streamed raft snapshot
    /// calls excepted).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The shared HTTP connection pool, for the few calls that stream bodies (raft snapshots).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http.http
    }

    /// The token this client sends, for those same streaming calls.
    pub(crate) fn token(&self) -> &str {
        &self.inner.settings.token
    }

    /// A vaultrs client for `namespace` (root when `None`) sharing this connection pool.
    pub fn scoped(&self, namespace: Option<&str>) -> Scoped<'_> {
        let mut middle = self.inner.middle.clone();
        middle.namespace = match (&self.namespace, namespace) {
            (Some(base), Some(ns)) => Some(format!("{base}/{ns}")),
            (base, ns) => ns.map(str::to_string).or_else(|| base.clone()),
        };
        Scoped { bao: self, middle, relative: namespace.map(str::to_string) }
    }

    /// The same, authenticated with another token (e.g. an AppRole login).
    pub fn scoped_as(&self, namespace: Option<&str>, token: &Sensitive<String>) -> Scoped<'_> {
        let mut scoped = self.scoped(namespace);
        scoped.set_token(token.expose());
        scoped
    }

    pub async fn get(&self, ns: Option<&str>, path: impl AsRef<str>) -> Result<Option<Value>, BaoError> {
        self.call(&self.scoped(ns), RequestMethod::GET, path.as_ref(), None, Idempotency::Idempotent).await
    }

    /// GET that maps 404 to `None`.
    pub async fn read(&self, ns: Option<&str>, path: impl AsRef<str>) -> Result<Option<Value>, BaoError> {
        match self.get(ns, path).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// LIST that maps 404 (nothing there) to an empty list.
    pub async fn list(&self, ns: Option<&str>, path: impl AsRef<str>) -> Result<Vec<String>, BaoError> {
        match self.call(&self.scoped(ns), RequestMethod::LIST, path.as_ref(), None, Idempotency::Idempotent).await {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
            Ok(body) => Ok(body
                .as_ref()
                .and_then(|b| b.pointer("/data/keys"))
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                .unwrap_or_default()),
        }
    }

    /// An idempotent POST ("set this to that value"), retried on transient failures. Calls that
    /// act anew each time (secret-ids, logins, unwrapping) use [`Bao::call`] with
    /// [`Idempotency::Once`].
    pub async fn write(
        &self,
        ns: Option<&str>,
        path: impl AsRef<str>,
        body: &Value,
    ) -> Result<Option<Value>, BaoError> {
        self.call(&self.scoped(ns), RequestMethod::POST, path.as_ref(), Some(body), Idempotency::Idempotent).await
    }

    /// PATCH (JSON merge patch: keys set to null are removed).
    pub async fn patch(&self, ns: Option<&str>, path: impl AsRef<str>, body: &Value) -> Result<Option<Value>, BaoError> {
        self.call(&self.scoped(ns), RequestMethod::PATCH, path.as_ref(), Some(body), Idempotency::Idempotent).await
    }

    /// DELETE that treats "already gone" as success.
    pub async fn delete(&self, ns: Option<&str>, path: impl AsRef<str>) -> Result<Option<Value>, BaoError> {
        match self.call(&self.scoped(ns), RequestMethod::DELETE, path.as_ref(), None, Idempotency::Idempotent).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// One API call, retried as `idempotency` allows. Returns the JSON body, `None` for 204.
    pub async fn call(
        &self,
        client: &Scoped<'_>,
        method: RequestMethod,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency<'_>,
    ) -> Result<Option<Value>, BaoError> {
        self.call_with(client, method, path, body, None, idempotency).await
    }

    /// One API call, optionally asking OpenBao to response-wrap the result with `wrap_ttl`.
    pub async fn call_with(
        &self,
        client: &Scoped<'_>,
        method: RequestMethod,
        path: &str,
        body: Option<&Value>,
        wrap_ttl: Option<&str>,
        idempotency: Idempotency<'_>,
    ) -> Result<Option<Value>, BaoError> {
        let name = method_name(&method);
        let namespace = client.middle.namespace.clone();
        let (bare, query) = match path.split_once('?') {
            Some((bare, query)) => (bare, Some(query.to_string())),
            None => (path, None),
        };
        self.catalogue().check(&method, name, client.relative.as_deref(), bare)?;
        let mut middle = client.middle.clone();
        middle.wrap = wrap_ttl.map(str::to_string);
        let endpoint = Call {
            method,
            path: bare.trim_start_matches('/').to_string(),
            query,
            body: body.map(|b| serde_json::to_vec(b).expect("JSON value serializes")),
        };
        let is_write = matches!(endpoint.method, RequestMethod::POST | RequestMethod::PUT | RequestMethod::PATCH);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
                self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                endpoint.clone().with_middleware(&Middle(&middle)).exec(client.http()).await
            };
            if let Err(HttpError::ServerResponseError { code, .. }) = &outcome {
                if overloaded(*code) {
                    self.pressure.note();
                }
            }
            let failure = outcome.as_ref().err().map(|e| classify(e, is_write));
            if let Some(message) = outcome.as_ref().err().and_then(|e| tls_problem(e, &self.base)) {
                return Err(BaoError::Tls { address: self.address.clone(), message });
            }
            if let (Some(Failure::MaybeActedOn), Idempotency::Once { check }, Err(e)) = (failure, idempotency, &outcome) {
                return Err(BaoError::OutcomeUnknown {
                    method: name,
                    path: path.to_string(),
                    namespace,
                    cause: match e {
                        HttpError::ServerResponseError { code, .. } => format!("HTTP {code}"),
                        e => format!("connection lost: {}", root_cause(e)),
                    },
                    check: check.to_string(),
                });
            }
            let retry = matches!(failure, Some(Failure::NotActedOn | Failure::MaybeActedOn));
            if retry && attempt < self.retry.attempts {
                let delay = self.retry.delay(attempt);
                tracing::debug!(method = name, path, attempt, ?delay, "transient OpenBao error; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            return match outcome {
                Ok(result) => parse_body(name, path, &namespace, result.response.body()),
                Err(HttpError::ServerResponseError { code: 403, .. }) => Err(BaoError::Denied {
                    method: name,
                    path: path.to_string(),
                    namespace,
                    grant: self.catalogue().grant(&endpoint.method, client.relative.as_deref(), path),
                }),
                Err(HttpError::ServerResponseError { code, content }) => Err(BaoError::Api {
                    method: name,
                    path: path.to_string(),
                    namespace,
                    status: code,
                    errors: api_errors(content.as_deref()),
                }),
                Err(e) => Err(BaoError::Unreachable {
                    method: name,
                    path: path.to_string(),
                    namespace,
                    address: self.address.clone(),
                    attempts: attempt,
                    message: root_cause(&e),
                }),
            };
        }
    }
}

/// Revokes a token ctl obtained by logging in (`auth/token/revoke-self`).
pub struct Revoker {
    http: reqwest::Client,
    url: String,
    token: Sensitive<String>,
    namespace: Option<String>,
}

impl Revoker {
    /// Best effort: a token that cannot be revoked expires with its TTL.
    pub async fn revoke(self) {
        let mut req = self.http.post(&self.url).header("X-Vault-Token", self.token.expose());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        match req.timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => tracing::debug!("revoked ctl's login token"),
            Ok(r) => tracing::warn!(status = r.status().as_u16(), "could not revoke ctl's login token; it expires with its TTL"),
            Err(e) => tracing::warn!(error = %root_cause(&e), "could not revoke ctl's login token; it expires with its TTL"),
        }
    }
}

/// What a failed attempt says about whether OpenBao acted on the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// It did not (429, a refused connection, a route or KV mount not ready): send it again.
    NotActedOn,
    /// It may have (5xx, a connection lost after sending): only idempotent calls are resent.
    MaybeActedOn,
    /// A definite answer (4xx, 501, a malformed request): final.
    Final,
}

fn overloaded(code: u16) -> bool {
    code >= 500 && code != 501
}

fn classify(e: &HttpError, is_write: bool) -> Failure {
    match e {
        HttpError::ServerResponseError { code, content } => {
            let content = content.as_deref();
            if *code == 429 || kv_upgrading(*code, content) || (is_write && route_not_yet_known(*code, content)) {
                Failure::NotActedOn
            } else if overloaded(*code) {
                Failure::MaybeActedOn
            } else {
                Failure::Final
            }
        }
        // No connection was made, so nothing was sent.
        HttpError::RequestError { source, .. }
            if source.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect) =>
        {
            Failure::NotActedOn
        }
        HttpError::RequestError { .. } | HttpError::ResponseError { .. } => Failure::MaybeActedOn,
        _ => Failure::Final,
    }
}

fn parse_body(
    method: &'static str,
    path: &str,
    namespace: &Option<String>,
    body: &[u8],
) -> Result<Option<Value>, BaoError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BaoError::Unexpected {
        method,
        path: path.to_string(),
        message: format!("response is not JSON ({e})"),
    })?;
    if let Some(warnings) = value.get("warnings").and_then(Value::as_array) {
        for w in warnings.iter().filter_map(Value::as_str) {
            if w.contains("ignored these unrecognized parameters") {
                return Err(BaoError::IgnoredParameters {
                    method,
                    path: path.to_string(),
                    namespace: namespace.clone(),
                    warning: w.to_string(),
                });
            }
            tracing::warn!(method, path, warning = w, "OpenBao warning");
        }
    }
    Ok(Some(value))
}

/// A new KV v2 mount answers 400 "Upgrading from non-versioned to versioned data" for a
/// moment after it is enabled; that is transient, not a client error.
pub fn kv_upgrading(code: u16, content: Option<&str>) -> bool {
    // The active node says "Upgrading from non-versioned to versioned data", a standby
    // "Waiting for the primary to upgrade from non-versioned to versioned data".
    code == 400 && content.is_some_and(|c| c.contains("non-versioned to versioned data"))
}

/// A write into a namespace or mount created a moment ago, sent to a standby that has not
/// seen it yet, answers 404 "no handler for route": transient for writes (reads keep their
/// 404 = absent meaning).
fn route_not_yet_known(code: u16, content: Option<&str>) -> bool {
    code == 404 && content.is_some_and(|c| c.contains("no handler for route"))
}

/// OpenBao's `{"errors": [...]}` strings; never the rest of the body.
fn api_errors(content: Option<&str>) -> String {
    let Some(content) = content else { return "no error message".into() };
    match serde_json::from_str::<Value>(content) {
        Ok(v) => match v.get("errors").and_then(Value::as_array) {
            Some(errs) if !errs.is_empty() => {
                errs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
            }
            _ => "no error message".into(),
        },
        Err(_) => "non-JSON error response".into(),
    }
}

pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    let mut parts = vec![cur.to_string()];
    while let Some(next) = cur.source() {
        parts.push(next.to_string());
        cur = next;
    }
    parts.dedup();
    parts.join(": ")
}

/// A TLS failure in `e`'s chain, as what is wrong and how to fix it; `None` for other errors.
/// rustls's error sits inside (nested) `io::Error`s, whose `source()` skips what they wrap,
/// hence the descent through `get_ref`.
fn tls_problem(e: &(dyn std::error::Error + 'static), base: &str) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let mut inner = Some(err);
        while let Some(candidate) = inner {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(describe_tls(tls, base));
            }
            inner = candidate
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
        }
        cur = err.source();
    }
    None
}

fn describe_tls(e: &rustls::Error, base: &str) -> String {
    use rustls::CertificateError as C;
    const TRUST: &str = "set openbao.ca_cert or BAO_CACERT to the CA that signed it";
    let host = reqwest::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => format!("the server's certificate is not trusted (unknown issuer); {TRUST}"),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for the name {host} (wrong name); use a name the certificate \
                 was issued for in address, or set openbao.tls_server_name to it"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                "the server's certificate has expired; renew it (and check this machine's clock)".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet; check this machine's clock".into()
            }
            other => format!("the server's certificate was rejected ({other:?}); check openbao.ca_cert or BAO_CACERT"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "the server refused the TLS handshake ({alert:?}); if it requires a client certificate, set \
             openbao.client_cert and client_key (or BAO_CLIENT_CERT and BAO_CLIENT_KEY)"
        ),
        other => format!("TLS handshake failed ({other}); check that the address speaks https and openbao.ca_cert"),
    }
}

/// `data` of a response body.
pub fn data(body: &Option<Value>) -> Option<&Value> {
    body.as_ref()?.get("data")
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

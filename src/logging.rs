//! `tracing` set-up: `RUST_LOG` filters (default `warn`), `--log-format json` for CI. Logs go
//! to stderr; stdout carries only the command's output. Crates that could log request
//! bodies, parameters or headers at debug/trace level (the HTTP stack, the OpenBao client, and
//! every `aws_*` crate of the AWS SDK: `aws_smithy_runtime` logs whole requests, e.g. the
//! alarm webhook URL of SNS Subscribe) are always silenced, whatever `RUST_LOG` says, even a
//! more specific directive like `aws_smithy_runtime::client=trace`, so a secret cannot reach
//! a log line through them.

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Crates whose events never reach the log.
/// TLS crates too: a handshake failure is reported once, as ctl's own one-line error.
const SILENCED: &[&str] = &[
    "rustify",
    "vaultrs",
    "reqwest",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "h2",
    "rustls",
    "rustls_platform_verifier",
    "tokio_rustls",
    "webpki",
    "rustls_native_certs",
];
/// Target prefix of the AWS SDK's crates (aws_smithy_*, aws_sigv4, aws_config, aws_runtime,
/// aws_sdk_*, aws_types, …).
const SILENCED_PREFIX: &str = "aws_";

/// Whether events of `target` (a module path, or a `log` target) are dropped.
pub fn silenced(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    krate.starts_with(SILENCED_PREFIX) || SILENCED.contains(&krate)
}

/// `ansi`: colour in text logs (the CLI decides: stderr is a TTY and `NO_COLOR` is unset).
pub fn init(format: LogFormat, ansi: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A global filter after the EnvFilter: no RUST_LOG directive can re-enable these targets.
    let quiet = filter_fn(|meta| !silenced(meta.target()));
    let _ = match format {
        LogFormat::Text => builder.finish().with(quiet).try_init(),
        LogFormat::Json => builder.json().finish().with(quiet).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::silenced;

    #[test]
    fn http_and_aws_crates_are_silenced_ctl_is_not() {
        for t in [
            "aws_smithy_runtime",
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_http_client::hyper_1_0",
            "aws_sigv4::http_request::sign",
            "aws_config::profile",
            "aws_runtime",
            "aws_sdk_sns::operation::subscribe",
            "hyper_util::client",
            "vaultrs",
            "h2::codec",
            "rustls::client::hs",
            "rustls_platform_verifier::verification",
        ] {
            assert!(silenced(t), "{t}");
        }
        for t in ["ctl", "ctl::aws::sns", "ctl::openbao::client", "hyperlocal", "tokio"] {
            assert!(!silenced(t), "{t}");
        }
    }
}

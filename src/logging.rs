//! `tracing` set-up: `RUST_LOG` filters (default `warn`), `--log-format json` for CI. Logs go
//! to stderr; stdout carries only the command's output. Crates that could log request
//! bodies or headers at trace level (the HTTP stack) are always silenced, whatever
//! `RUST_LOG` says, so a secret cannot reach a log line through them.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const SILENCED: &[&str] = &["rustify=off", "vaultrs=off", "reqwest=off", "hyper=off", "hyper_util=off", "h2=off"];

pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    for directive in SILENCED {
        filter = filter.add_directive(directive.parse().expect("static directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::cli::color_enabled_stderr());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

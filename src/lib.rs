//! `ctl`: keeps an OpenBao deployment and its AWS infrastructure in the state declared in git.
//!
//! Data flow (see ARCHITECTURE.md): [`config`] loads desired state → [`desired`] expands it into
//! typed [`model::Resource`]s → providers ([`openbao`]) observe live resources → [`diff`] (pure)
//! produces typed changes → [`plan`] (serializable, fingerprinted) → [`render`] → [`execute`].

pub mod alarms;
pub mod artifacts;
pub mod aws;
pub mod cli;
pub mod config;
pub mod desired;
pub mod dev;
pub mod dr;
pub mod engine;
pub mod diff;
pub mod execute;
pub mod gates;
pub mod logging;
pub mod model;
pub mod openbao;
pub(crate) mod par;
pub mod plan;
pub mod policy;
pub mod providers;
pub mod render;
pub mod secret;
pub mod templates;

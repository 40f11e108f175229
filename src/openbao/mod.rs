//! The OpenBao provider: reads live state ([`observe`]) and carries out changes ([`apply`])
//! over one transport ([`client`]). It never formats output; callers render what it returns.

pub mod access;
pub mod apply;
pub mod approle;
pub mod bootstrap;
pub mod client;
pub mod journal;
pub mod kinds;
pub mod lock;
pub mod login;
pub mod observe;
pub mod raft;
pub mod refresh;
pub mod resources;
pub mod signing;
pub mod state;
pub mod token;
pub mod verify;

pub use client::{Bao, BaoError};

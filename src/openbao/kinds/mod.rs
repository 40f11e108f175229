//! One handler per OpenBao kind, registered in [`crate::providers::handler`]. What they share
//! (create-only mounts, records for kinds without a marker field, metadata patches) is in
//! [`super::apply`].

mod approle;
mod auth_mount;
mod kv_mount;
mod namespace;
mod policy;
mod quota;
mod transit;

pub use approle::AppRole;
pub use auth_mount::AuthMount;
pub use kv_mount::KvMount;
pub use namespace::Namespace;
pub use policy::Policy;
pub use quota::RateLimitQuota;
pub use transit::{TransitKey, TransitMount};

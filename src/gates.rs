//! Plan-time gates that need I/O: checks a plan must pass before it may be shown as
//! applicable, which read something outside the diff (a provider only creates, updates and
//! deletes; it never decides whether a plan is allowed).

use crate::aws::ec2::InstanceAttrs;
use crate::aws::{Aws, AwsError};
use crate::config::Environment;
use crate::diff::{Action, Change};
use crate::model::Kind;

/// Refuse to plan the launch (create, replace, re-create) of an instance whose declared boot
/// artifacts do not verify against their pins ([`crate::artifacts::verify_pinned`]). Each
/// artifact is verified once.
pub async fn boot_artifacts(aws: &Aws, env: &Environment, changes: &[Change]) -> Result<(), AwsError> {
    let mut verified: Vec<String> = Vec::new();
    for c in changes {
        let launches = matches!(c.action(), Action::Create | Action::Replace);
        let Some(after) = c.after().filter(|_| launches && c.kind == Kind::Instance) else { continue };
        let a: InstanceAttrs = crate::aws::network_common::from_attrs(&after.address, &after.attrs)?;
        for name in &a.artifacts {
            if verified.contains(name) {
                continue;
            }
            crate::artifacts::verify_pinned(aws, env, name)
                .await
                .map_err(|e| AwsError::Other(format!("{}: refusing to launch: boot {e}", c.address)))?;
            verified.push(name.clone());
        }
    }
    Ok(())
}

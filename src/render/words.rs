//! The plan's typed reasons in words (the text and markdown renderings, and conflict
//! messages, share them).

use crate::diff::ChangeReason;
use crate::model::UnmanagedReason;
use std::fmt;

/// Why a change was decided, as the plan shows it.
pub fn reason(r: &ChangeReason) -> String {
    match r {
        ChangeReason::Absent => "not present in live state".into(),
        ChangeReason::Differ { fields } => format!("{} differ{}", fields.join(", "), if fields.len() == 1 { "s" } else { "" }),
        ChangeReason::CannotChangeInPlace { fields } => format!("{} cannot change in place", fields.join(", ")),
        ChangeReason::DependencyReplaced { dependency } => format!("re-created because {dependency} is replaced"),
        ChangeReason::NoLongerDeclared => "no longer declared".into(),
        ChangeReason::RemovedWith { container } => format!("removed with {container}"),
    }
}

impl fmt::Display for UnmanagedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnmanagedReason::NoMarker { detail } | UnmanagedReason::Duplicate { detail } => f.write_str(detail),
            UnmanagedReason::OtherEnvironment { environment } => write!(f, "managed by ctl for environment {environment:?}"),
            UnmanagedReason::NotRecorded { what, namespace } => write!(
                f,
                "{what} not created by ctl (no record in namespace {namespace}'s custom_metadata; `ctl adopt` takes it over)"
            ),
            UnmanagedReason::UnexpectedType { address, found } => write!(f, "marked as {address} but of unexpected type {found:?}"),
            UnmanagedReason::StuckDeletion => f.write_str(
                "deletion in progress (ctl's own, interrupted; `ctl apply` resumes it; if it stays, see runbooks/leader_failover.md)",
            ),
            UnmanagedReason::DeletionInProgress => f.write_str("deletion in progress"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    #[test]
    fn reasons_read_as_sentences() {
        let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
        assert_eq!(reason(&ChangeReason::Differ { fields: fields(&["ttl"]) }), "ttl differs");
        assert_eq!(reason(&ChangeReason::Differ { fields: fields(&["ttl", "policies"]) }), "ttl, policies differ");
        assert_eq!(reason(&ChangeReason::CannotChangeInPlace { fields: fields(&["path"]) }), "path cannot change in place");
        let a = Address::new("network.subnet.a");
        assert_eq!(reason(&ChangeReason::DependencyReplaced { dependency: a.clone() }), "re-created because network.subnet.a is replaced");
        assert_eq!(reason(&ChangeReason::RemovedWith { container: a }), "removed with network.subnet.a");
        let role = UnmanagedReason::NotRecorded { what: "AppRole role".into(), namespace: "acme".into() };
        assert!(role.to_string().starts_with("AppRole role not created by ctl (no record in namespace acme's"));
        assert_eq!(UnmanagedReason::OtherEnvironment { environment: "prod".into() }.to_string(), "managed by ctl for environment \"prod\"");
    }
}

//! The plan's typed reasons in words (the text and markdown renderings share them).

use crate::diff::ChangeReason;

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
    }
}

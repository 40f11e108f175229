//! Ownership tags shared by every AWS kind: `managed-by=ctl`, `ctl-environment=<env>`,
//! `ctl-address=<resource address>`.
//!
//! Every resource ctl creates carries all three; observation keeps only resources whose tags
//! say "ctl, this environment" and takes the address from `ctl-address`. Anything else is either
//! another environment's (skipped) or not ctl's at all (reported as unmanaged when it collides
//! with a name ctl wants, never touched).
//!
//! Services spell tags differently (`TagKey`/`TagValue` in KMS, `Key`/`Value` in IAM and EC2):
//! callers convert to and from plain `(key, value)` pairs.

use crate::model::Address;

pub const MANAGED_BY_KEY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "ctl";
pub const ENVIRONMENT_KEY: &str = "ctl-environment";
pub const ADDRESS_KEY: &str = "ctl-address";

/// The three ownership tags of `address` in `environment`, in a fixed order.
pub fn ownership_tags(environment: &str, address: &Address) -> Vec<(String, String)> {
    vec![
        (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
        (ENVIRONMENT_KEY.to_string(), environment.to_string()),
        (ADDRESS_KEY.to_string(), address.to_string()),
    ]
}

/// The address in `tags` when they say "ctl, this environment" (the only objects ctl touches).
pub fn ours(tags: &[(&str, &str)], environment: &str) -> Option<Address> {
    match owner(tags.iter().copied(), environment) {
        Owner::Ours(address) => Some(address),
        _ => None,
    }
}

/// Who owns a resource, judged from its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// ctl, for this environment, at this address.
    Ours(Address),
    /// ctl, for another environment: neither observed nor reported.
    OtherEnvironment(String),
    /// Not ctl's (or tagged incompletely): reported when it matters, never touched.
    Unmanaged(String),
}

impl Owner {
    /// The reason to show for an unmanaged resource, or `None` if it is ctl's (any environment).
    pub fn unmanaged_reason(&self) -> Option<&str> {
        match self {
            Owner::Unmanaged(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Classify a resource by its tags.
pub fn owner<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>, environment: &str) -> Owner {
    let (mut managed, mut env, mut address) = (None, None, None);
    for (k, v) in tags {
        match k {
            MANAGED_BY_KEY => managed = Some(v),
            ENVIRONMENT_KEY => env = Some(v),
            ADDRESS_KEY => address = Some(v),
            _ => {}
        }
    }
    if managed != Some(MANAGED_BY_VALUE) {
        return Owner::Unmanaged(format!("no {MANAGED_BY_KEY}={MANAGED_BY_VALUE} tag"));
    }
    match (env, address) {
        (Some(e), _) if e != environment => Owner::OtherEnvironment(e.to_string()),
        (Some(_), Some(a)) if !a.is_empty() => Owner::Ours(Address::new(a)),
        (None, _) => {
            Owner::Unmanaged(format!("tagged {MANAGED_BY_KEY}={MANAGED_BY_VALUE} but has no {ENVIRONMENT_KEY} tag"))
        }
        (Some(_), _) => Owner::Unmanaged(format!("tagged for this environment but has no {ADDRESS_KEY} tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        v.to_vec()
    }

    #[test]
    fn ownership_round_trips() {
        let a = Address::new("aws.kms.unseal_key");
        let tags = ownership_tags("prod", &a);
        let owner = owner(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), "prod");
        assert_eq!(owner, Owner::Ours(a));
    }

    #[test]
    fn other_environments_and_strangers_are_told_apart() {
        let other = pairs(&[("managed-by", "ctl"), ("ctl-environment", "staging"), ("ctl-address", "aws.kms.k")]);
        assert_eq!(owner(other, "prod"), Owner::OtherEnvironment("staging".into()));
        let stranger = pairs(&[("team", "data")]);
        assert!(owner(stranger, "prod").unmanaged_reason().unwrap().contains("managed-by=ctl"));
        let no_address = pairs(&[("managed-by", "ctl"), ("ctl-environment", "prod")]);
        assert!(owner(no_address, "prod").unmanaged_reason().unwrap().contains("ctl-address"));
        let wrong_value = pairs(&[("managed-by", "terraform"), ("ctl-environment", "prod"), ("ctl-address", "x")]);
        assert!(matches!(owner(wrong_value, "prod"), Owner::Unmanaged(_)));
    }
}

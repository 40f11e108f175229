//! Mute records: `ctl alarms mute` disables an alarm's actions and records why and until when
//! **in the alarm's own tags** (`ctl-muted-until`, RFC 3339 UTC, and `ctl-mute-reason`), so every
//! `ctl plan` reads them with the alarm: a mute in force is the declared state, an expired one is
//! drift (`actions_enabled: false → true`) that the next apply repairs (and clears the tags).
//! CloudWatch keeps no alarm history in moto (no DescribeAlarmHistory), so the current mute is
//! the only mute record; tunes are recorded by git (`ctl alarms tune` edits the environment file).

pub const MUTED_UNTIL_TAG: &str = "ctl-muted-until";
pub const MUTE_REASON_TAG: &str = "ctl-mute-reason";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mute {
    /// Epoch seconds.
    pub until: i64,
    pub reason: String,
}

impl Mute {
    pub fn active(&self, now: i64) -> bool {
        now < self.until
    }

    /// The tag values to write.
    pub fn tags(&self) -> [(String, String); 2] {
        [
            (MUTED_UNTIL_TAG.into(), rfc3339(self.until)),
            (MUTE_REASON_TAG.into(), tag_safe(&self.reason)),
        ]
    }

    /// Read a mute from tags; `None` without a (parsable) `ctl-muted-until`.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Mute> {
        let (mut until, mut reason) = (None, String::new());
        for (k, v) in tags {
            match k {
                MUTED_UNTIL_TAG => until = parse_rfc3339(v),
                MUTE_REASON_TAG => reason = v.to_string(),
                _ => {}
            }
        }
        until.map(|until| Mute { until, reason })
    }
}

/// AWS tag values allow letters, digits, spaces and `_.:/=+-@` (max 256): anything else becomes
/// a space.
pub fn tag_safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned.trim().chars().take(256).collect()
}

pub fn rfc3339(epoch: i64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| epoch.to_string())
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|d| d.secs())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Nanoseconds since the epoch (unique enough for idempotency tokens of one caller).
pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_tags() {
        let m = Mute {
            until: 1_700_000_000,
            reason: "deploy, INC-42 (db failover)".into(),
        };
        let tags = m.tags();
        assert_eq!(tags[0].1, "2023-11-14T22:13:20Z");
        assert_eq!(tags[1].1, "deploy  INC-42  db failover");
        let back = Mute::from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back.until, m.until);
        assert!(back.active(m.until - 1) && !back.active(m.until));
        assert_eq!(Mute::from_tags([("other", "x")]), None);
    }
}

//! [`Cidr`]: an IPv4 or IPv6 network such as `10.0.0.0/8` or `fd00::/8`.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address with no host bits set and a prefix length.
///
/// Parsed from `addr/prefix` (a bare address is rejected: the prefix must be explicit) and
/// displayed canonically (`10.0.0.0/8`, `fd00::/8`). (De)serializes as that string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse; displays the whole message, input included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {input:?}: {reason}")]
pub struct ParseCidrError {
    /// The text that failed to parse.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Cidr {
    /// The network `addr/prefix`; fails if the prefix is too long or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, ParseCidrError> {
        let input = format!("{addr}/{prefix}");
        let fail = |reason: String| ParseCidrError { input: input.clone(), reason };
        let max = max_prefix(addr);
        if prefix > max {
            return Err(fail(format!("prefix length {prefix} is out of range (0-{max} for {})", family(addr))));
        }
        let network = mask(addr, prefix);
        if network != addr {
            return Err(fail(format!("host bits set in {input}; did you mean {network}/{prefix}?")));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The network address (host bits all zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// `addr` with every bit after the first `prefix` cleared (`prefix` already range-checked).
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for Cidr {
    type Err = ParseCidrError;

    fn from_str(s: &str) -> Result<Cidr, ParseCidrError> {
        let fail = |reason: String| ParseCidrError { input: s.to_string(), reason };
        let Some((addr_text, prefix_text)) = s.split_once('/') else {
            return Err(match s.parse::<IpAddr>() {
                Ok(addr) => fail(format!("missing prefix length (e.g. {addr}/{})", max_prefix(addr))),
                Err(_) => fail("expected an address and prefix length such as 10.0.0.0/8 or fd00::/8".into()),
            });
        };
        let addr: IpAddr =
            addr_text.parse().map_err(|_| fail(format!("{addr_text:?} is not an IPv4 or IPv6 address")))?;
        if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!("prefix length {prefix_text:?} is not a number")));
        }
        let max = max_prefix(addr);
        let prefix = prefix_text.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
            fail(format!("prefix length {prefix_text} is out of range (0-{max} for {})", family(addr)))
        })?;
        Cidr::new(addr, prefix).map_err(|e| ParseCidrError { input: s.to_string(), reason: e.reason })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct CidrVisitor;

impl Visitor<'_> for CidrVisitor {
    type Value = Cidr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CIDR such as 10.0.0.0/8 or fd00::/8")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cidr, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        deserializer.deserialize_str(CidrVisitor)
    }
}

//! Config version numbers, one type end to end.
//!
//! The master numbers versions 1, 2, 3… and never reuses a number. The
//! seed's agent messages carry them as decimal strings (`config_version`,
//! empty for "none"); the operator API as `uint64` (0 for "none"). Both are
//! parsed here, once, at the edge: inside the binaries a version is a
//! [`Version`] and "none" is `None`.

use std::fmt;
use std::num::NonZeroU64;

/// One config version number (never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(NonZeroU64);

/// A version string that is neither empty nor a positive decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config version `{}` is not a positive number", .0.escape_default())]
pub struct BadVersion(pub String);

impl Version {
    /// The first version a master hands out.
    pub const FIRST: Version = Version(NonZeroU64::MIN);

    /// `n` as a version; None for 0 (the wire's "none").
    pub fn new(n: u64) -> Option<Self> {
        NonZeroU64::new(n).map(Self)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The number after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// Parses the agent protocol's spelling: empty is "none", otherwise a
    /// positive decimal number.
    pub fn parse_wire(s: &str) -> Result<Option<Self>, BadVersion> {
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Self::new(n)),
            _ => Err(BadVersion(s.to_string())),
        }
    }

    /// The agent protocol's spelling of `v`: the number, or empty for none.
    pub fn to_wire(v: Option<Self>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }

    /// The operator API's spelling of `v`: the number, or 0 for none.
    pub fn to_u64(v: Option<Self>) -> u64 {
        v.map_or(0, Self::get)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Version {
    type Err = BadVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_wire(s)?.ok_or_else(|| BadVersion(s.to_string()))
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::new(n).ok_or_else(|| serde::de::Error::custom("config version 0 is not a version"))
    }
}

/// Serde for `Option<Version>` as a plain number with 0 for none: the form
/// stored records have always used (`#[serde(with = "cdn_proto::version::or_zero")]`).
pub mod or_zero {
    use super::Version;

    /// Writes `v` as its number, 0 for none.
    pub fn serialize<S: serde::Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(Version::to_u64(*v))
    }

    /// Reads a number, 0 as none.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Version>, D::Error> {
        let n = <u64 as serde::Deserialize>::deserialize(d)?;
        Ok(Version::new(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings() {
        assert_eq!(Version::parse_wire(""), Ok(None));
        assert_eq!(Version::parse_wire("7"), Ok(Version::new(7)));
        assert!(Version::parse_wire("0").is_err());
        assert!(Version::parse_wire("-1").is_err());
        assert!(Version::parse_wire("v3").is_err());
        assert_eq!(Version::to_wire(None), "");
        assert_eq!(Version::to_wire(Version::new(12)), "12");
        assert_eq!(Version::to_u64(None), 0);
        assert_eq!(Version::FIRST.next().get(), 2);
    }

    #[test]
    fn records_keep_zero_for_none() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct R {
            #[serde(with = "or_zero", default)]
            v: Option<Version>,
        }
        assert_eq!(serde_json::to_string(&R { v: None }).unwrap(), r#"{"v":0}"#);
        let r: R = serde_json::from_str(r#"{"v":5}"#).unwrap();
        assert_eq!(r.v, Version::new(5));
        let r: R = serde_json::from_str("{}").unwrap();
        assert_eq!(r.v, None);
    }
}

//! Durations written as in the seed (`10s`, `5m`, `100ms`): parsed once
//! here for config files (through serde) and for the binaries' flags.
//!
//! Use as `#[serde(with = "cdn_common::duration")]`, or as a clap
//! `value_parser` ([`parse`], [`parse_flag`]). Zero is refused: every
//! duration we take is an interval or a timeout, where zero is a typo.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all (no unit, an unknown unit, not a number); the
    /// text says what humantime found wrong.
    #[error("{0}")]
    Syntax(String),
    /// Zero, where an interval or a timeout is wanted.
    #[error("must be greater than zero")]
    Zero,
    /// Longer than [`MAX`]: a typo, and a value that would overflow the
    /// clocks it is added to.
    #[error("must be at most 3650d (ten years)")]
    TooLong,
}

/// Longest duration any config key or flag takes: ten years (the longest
/// certificate lifetime anyone should ask for). Far longer values would
/// overflow clock arithmetic at run time.
pub const MAX: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Parses `text` as written: a human duration (`10s`, `500ms`, `5m`),
/// refusing zero and bare numbers. The one parser behind [`parse`] and
/// [`parse_flag`].
pub fn parse_nonzero(text: &str) -> Result<Duration, DurationError> {
    let d = humantime::parse_duration(text).map_err(|e| DurationError::Syntax(e.to_string()))?;
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    if d > MAX {
        return Err(DurationError::TooLong);
    }
    Ok(d)
}

/// Parses a duration of a config file (surrounding blanks ignored); the
/// message quotes the text, since nothing else around it does.
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_nonzero(text.trim()).map_err(|e| match e {
        DurationError::Syntax(why) => format!(
            "invalid duration `{text}` ({why}); write it with a unit, for example 10s, 500ms or 5m"
        ),
        DurationError::Zero => format!("duration `{text}` must be greater than zero"),
        DurationError::TooLong => format!("duration `{text}` {e}"),
    })
}

/// Parses a duration flag of cdnctl (`--timeout 30s`): clap's error
/// already names the flag and quotes the value, so the message only says
/// what is wrong with it.
pub fn parse_flag(text: &str) -> Result<Duration, String> {
    parse_nonzero(text).map_err(|e| match e {
        DurationError::Syntax(why) => format!("{why} (write e.g. 10s, 500ms)"),
        DurationError::Zero | DurationError::TooLong => e.to_string(),
    })
}

/// Serde deserializer for [`parse`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Serde serializer writing the humantime form.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// For the few durations where `0s` means "off" (`backup.interval`):
/// `#[serde(with = "cdn_common::duration::zero_is_off")]` takes zero and
/// refuses the rest as [`deserialize`] does.
pub mod zero_is_off {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub use super::serialize;

    /// Serde deserializer: a duration with its unit, zero included.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        match humantime::parse_duration(text.trim()) {
            // A bare `0` stays refused: durations carry their unit.
            Ok(d) if d.is_zero() && text.trim() != "0" => Ok(d),
            _ => super::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Renders a duration compactly for messages (`1.5s`, `250ms`).
pub fn short(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_before_they_reach_a_clock() {
        assert_eq!(parse("3650d").unwrap(), MAX);
        assert_eq!(
            parse("8760h").unwrap(),
            Duration::from_secs(365 * 24 * 3600)
        );
        for huge in ["3651d", "18446744073709551615s", "1000y"] {
            let e = parse(huge).unwrap_err();
            assert!(e.contains("at most 3650d"), "{huge}: {e}");
        }
        assert!(parse("600000000000000000000ns").is_err());
        assert_eq!(
            parse_flag("100y").unwrap_err(),
            "must be at most 3650d (ten years)"
        );
    }

    #[test]
    fn seed_forms_parse() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn zero_is_off_where_it_means_off() {
        #[derive(serde::Deserialize)]
        struct Backup {
            #[serde(with = "zero_is_off")]
            interval: Duration,
        }
        let parse = |t: &str| crate::yaml::from_str::<Backup>(t).map(|b| b.interval);
        assert_eq!(parse("interval: 0s").unwrap(), Duration::ZERO);
        assert_eq!(
            parse("interval: 6h").unwrap(),
            Duration::from_secs(6 * 3600)
        );
        assert!(parse("interval: 0").is_err());
        assert!(parse("interval: 10").is_err());
    }

    #[test]
    fn zero_and_unitless_are_refused() {
        assert!(parse("0s").is_err());
        assert!(parse("10").is_err());
        assert!(parse("soon").is_err());
    }

    #[test]
    fn config_and_flag_wording() {
        assert_eq!(
            parse("0s").unwrap_err(),
            "duration `0s` must be greater than zero"
        );
        assert_eq!(
            parse(" 10 ").unwrap_err(),
            "invalid duration ` 10 ` (time unit needed, for example 10sec or 10ms); \
             write it with a unit, for example 10s, 500ms or 5m"
        );
        assert_eq!(parse(" 2s ").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_flag("0ms").unwrap_err(), "must be greater than zero");
        assert_eq!(
            parse_flag("10").unwrap_err(),
            "time unit needed, for example 10sec or 10ms (write e.g. 10s, 500ms)"
        );
        assert_eq!(parse_flag("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_nonzero("0s"), Err(DurationError::Zero));
    }
}

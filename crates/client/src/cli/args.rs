//! The values client commands take on the command line: positions in a
//! topic (`earliest`, `latest`, an offset, an RFC 3339 time), durations
//! (`90s`, `1h30m`), limits that may be reset (`N` or `default`), and
//! headers (`key=value`). Each parser's error is clap's message.

use std::{str::FromStr, time::Duration};

use serde::Deserialize as _;

use gostream_api::gostream::v1::{Boundary, Position, position};

/// A position in a topic: `earliest`, `latest`, an offset, or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// The oldest message the topic holds.
    Earliest,
    /// The end of the topic: only messages published from now on.
    Latest,
    /// An exact offset.
    Offset(u64),
    /// The first message published at or after this time.
    Time(pbjson_types::Timestamp),
}

impl FromStr for At {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => return Ok(Self::Earliest),
            "latest" => return Ok(Self::Latest),
            _ => {}
        }
        if let Ok(offset) = s.parse::<u64>() {
            return Ok(Self::Offset(offset));
        }
        let text = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s);
        pbjson_types::Timestamp::deserialize(text)
            .map(Self::Time)
            .map_err(|_| {
                "expected `earliest`, `latest`, an offset, or an RFC 3339 time such as 2024-05-01T12:00:00Z".to_owned()
            })
    }
}

impl At {
    /// The position as the API takes it.
    pub fn to_pb(self) -> Position {
        let position = match self {
            Self::Earliest => position::Position::Boundary(Boundary::Earliest as i32),
            Self::Latest => position::Position::Boundary(Boundary::Latest as i32),
            Self::Offset(offset) => position::Position::Offset(offset),
            Self::Time(time) => position::Position::Time(time),
        };
        Position {
            position: Some(position),
        }
    }
}

/// Parses a duration: whole numbers with units `ms`, `s`, `m`, `h`, `d`,
/// one after another (`90s`, `1h30m`, `500ms`), or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const HELP: &str = "expected a duration such as 90s, 15m, 1h30m, 7d or 500ms";
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(HELP.to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| HELP.to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            _ => return Err(HELP.to_owned()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(|| format!("{s} is too long"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{s} is too long"))?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it (`1h30m`, `90ms`);
/// `0s` for zero.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut secs = duration.as_secs();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let millis = duration.subsec_millis();
    if millis > 0 || out.is_empty() {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

/// A new value for a setting, or `default` to return it to the broker's
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset<T> {
    /// Set it to this value.
    To(T),
    /// Return it to the broker default.
    Default,
}

/// Parses `N` or `default`.
pub fn parse_count(s: &str) -> Result<Reset<u64>, String> {
    if s == "default" {
        return Ok(Reset::Default);
    }
    s.parse()
        .map(Reset::To)
        .map_err(|_| "expected a whole number, or `default` for the broker default".to_owned())
}

/// Parses a duration (see [`parse_duration`]) or `default`.
pub fn parse_duration_or_default(s: &str) -> Result<Reset<Duration>, String> {
    if s == "default" {
        return Ok(Reset::Default);
    }
    parse_duration(s)
        .map(Reset::To)
        .map_err(|e| format!("{e}, or `default` for the broker default"))
}

/// Parses a header, `key=value` (the value may be empty or hold `=`).
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected key=value".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_boundaries_offsets_or_times() {
        assert_eq!("earliest".parse::<At>(), Ok(At::Earliest));
        assert_eq!("latest".parse::<At>(), Ok(At::Latest));
        assert_eq!("42".parse::<At>(), Ok(At::Offset(42)));
        let At::Time(time) = "2024-05-01T12:00:00+02:00".parse::<At>().expect("a time") else {
            panic!("not a time");
        };
        assert_eq!(time.seconds, 1_714_557_600);
        assert!("yesterday".parse::<At>().is_err());
        assert!("-1".parse::<At>().is_err());
    }

    #[test]
    fn durations_read_and_write_alike() {
        let cases = [
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("7d", 604_800_000),
            ("500ms", 500),
            ("1m0s", 60_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "1", "h", "1x", "1.5h", "-1s", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for text in ["1h30m", "90ms", "7d", "1m1s", "2s500ms"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(format_duration(duration), text);
        }
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn limits_may_be_reset_to_the_default() {
        assert_eq!(parse_count("10"), Ok(Reset::To(10)));
        assert_eq!(parse_count("default"), Ok(Reset::Default));
        assert!(parse_count("ten").is_err());
        assert_eq!(
            parse_duration_or_default("1h"),
            Ok(Reset::To(Duration::from_secs(3600)))
        );
        assert_eq!(parse_duration_or_default("default"), Ok(Reset::Default));
    }

    #[test]
    fn headers_are_key_equals_value() {
        assert_eq!(
            parse_header("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_header("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_header("=b").is_err());
        assert!(parse_header("ab").is_err());
    }
}

//! Human forms of durations (`30s`, `5m`, `1h`, `30d`) and sizes (`500MB`, `20GiB`),
//! shared by the config file and command-line flags.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| {
        UnitError(format!(
            "invalid duration {s:?} ({e}); use forms like 30s, 5m, 1h, 30d"
        ))
    })
}

pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            UnitError(format!(
                "invalid size {s:?} ({e}); use forms like 500MB, 20GiB"
            ))
        })
}

/// A size as people read it: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// Serde adapter for optional human durations in the config file.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde adapter for optional human sizes in the config file.
pub mod serde_size {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse_size(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("30d", 30 * 86400),
            ("0", 0),
            ("0s", 0),
        ];
        for (s, secs) in cases {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs), "{s}");
        }
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        let cases = [
            ("500MB", 500_000_000),
            ("20GiB", 20 * 1024 * 1024 * 1024),
            ("1KiB", 1024),
            ("1kB", 1000),
            ("42", 42),
        ];
        for (s, bytes) in cases {
            assert_eq!(parse_size(s).unwrap(), bytes, "{s}");
        }
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(512), "512 B");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Limits {
        #[serde(default, deserialize_with = "serde_duration::deserialize")]
        ttl: Option<Duration>,
        #[serde(default, deserialize_with = "serde_size::deserialize")]
        max: Option<u64>,
    }

    #[test]
    fn config_values_read_in_human_units_or_are_refused() {
        let l: Limits = toml::from_str("ttl = \"5m\"\nmax = \"2KiB\"").unwrap();
        assert_eq!((l.ttl, l.max), (Some(Duration::from_secs(300)), Some(2048)));
        let l: Limits = toml::from_str("").unwrap();
        assert_eq!((l.ttl, l.max), (None, None));
        let e = toml::from_str::<Limits>("ttl = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("use forms like 30s"), "{e}");
        let e = toml::from_str::<Limits>("max = \"lots\"").unwrap_err();
        assert!(e.to_string().contains("use forms like 500MB"), "{e}");
    }
}

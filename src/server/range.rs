//! The `Range` header of a blob request (RFC 9110 §14), for one byte range.

/// What to send for a blob of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRange {
    /// The whole body with 200: no Range, a unit other than bytes (which a
    /// server must ignore), a Range that is not valid syntax (which a server
    /// ignores, RFC 9110 §14.2), or several ranges (which a server may ignore).
    Whole,
    /// 206 with the half-open byte range [start, end).
    Part { start: u64, end: u64 },
    /// 416: a valid bytes range that starts past the end.
    Unsatisfiable,
}

impl BlobRange {
    pub fn parse(header: Option<&str>, total: u64) -> BlobRange {
        let Some(header) = header else {
            return BlobRange::Whole;
        };
        let Some((unit, spec)) = header.trim().split_once('=') else {
            return BlobRange::Whole;
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return BlobRange::Whole;
        }
        if spec.contains(',') {
            return BlobRange::Whole;
        }
        let Some(spec) = RangeSpec::parse(spec) else {
            return BlobRange::Whole;
        };
        match spec.within(total) {
            Some((start, end)) => BlobRange::Part { start, end },
            None => BlobRange::Unsatisfiable,
        }
    }
}

/// One `range-spec` of RFC 9110 §14.1.1, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// `None` when the text is no valid range-spec (then the header is ignored).
    fn parse(spec: &str) -> Option<RangeSpec> {
        let (a, b) = spec.split_once('-')?;
        match (a.trim(), b.trim()) {
            ("", n) => Some(RangeSpec::Suffix(digits(n)?)),
            (a, "") => Some(RangeSpec::From {
                first: digits(a)?,
                last: None,
            }),
            (a, b) => {
                let (first, last) = (digits(a)?, digits(b)?);
                // A last before the first makes the range-spec invalid.
                (last >= first).then_some(RangeSpec::From {
                    first,
                    last: Some(last),
                })
            }
        }
    }

    /// The half-open [start, end) it selects of `total` bytes; `None` when
    /// it selects nothing (unsatisfiable).
    fn within(self, total: u64) -> Option<(u64, u64)> {
        let (start, end) = match self {
            RangeSpec::Suffix(n) => (total.saturating_sub(n), total),
            RangeSpec::From { first, last } => (
                first,
                last.map_or(total, |l| l.saturating_add(1).min(total)),
            ),
        };
        (start < end && start < total).then_some((start, end))
    }
}

/// A decimal number of one or more digits (no sign, no spaces); one too big
/// for u64 is still a number, past the end of any blob.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::BlobRange::{self, *};

    fn r(h: &str, total: u64) -> BlobRange {
        BlobRange::parse(Some(h), total)
    }

    #[test]
    fn single_byte_ranges() {
        assert_eq!(BlobRange::parse(None, 100), Whole);
        assert_eq!(r("bytes=0-9", 100), Part { start: 0, end: 10 });
        assert_eq!(
            r("bytes=90-", 100),
            Part {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            r("bytes=-10", 100),
            Part {
                start: 90,
                end: 100
            }
        );
        assert_eq!(r("bytes=-500", 100), Part { start: 0, end: 100 });
        assert_eq!(
            r("bytes=50-500", 100),
            Part {
                start: 50,
                end: 100
            }
        );
        assert_eq!(r("Bytes=0-0", 100), Part { start: 0, end: 1 });
        assert_eq!(r("bytes=100-", 100), Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-", 100), Unsatisfiable);
        assert_eq!(
            r("bytes=-99999999999999999999999", 100),
            Part { start: 0, end: 100 }
        );
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn invalid_ranges_are_ignored() {
        // RFC 9110 §14.2: a Range that is not valid syntax is ignored.
        for h in [
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=x-1",
            "bytes=1-x",
            "bytes=5-1",
            "bytes=+5-",
            "bytes=-+5",
            "bytes=1-2-3",
            "bytes=0x10-",
            "bytes=1 0-",
            "=0-1",
            "",
        ] {
            assert_eq!(r(h, 100), Whole, "{h:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// `bytes=first-last`, `bytes=first-` and `bytes=-n` select what RFC 9110
        /// says, worked out here by counting bytes one at a time.
        #[test]
        fn numeric_ranges_select_the_bytes_the_rfc_says(
            first in proptest::option::of(0u64..300),
            last in proptest::option::of(0u64..300),
            total in 0u64..200,
        ) {
            let header = format!(
                "bytes={}-{}",
                first.map(|n| n.to_string()).unwrap_or_default(),
                last.map(|n| n.to_string()).unwrap_or_default()
            );
            let selected: Vec<u64> = match (first, last) {
                (None, None) => return Ok(()),
                (Some(f), Some(l)) if l < f => {
                    proptest::prop_assert_eq!(r(&header, total), Whole);
                    return Ok(());
                }
                (None, Some(n)) => (total.saturating_sub(n)..total).collect(),
                (Some(f), l) => (0..total).filter(|&i| i >= f && l.is_none_or(|l| i <= l)).collect(),
            };
            let want = match (selected.first(), selected.last()) {
                (Some(&s), Some(&e)) => Part { start: s, end: e + 1 },
                _ => Unsatisfiable,
            };
            proptest::prop_assert_eq!(r(&header, total), want, "{}", header);
        }
        #[test]
        fn any_header_gets_a_range_inside_the_body(h in "\\PC{0,40}", b in "bytes=[0-9 +-]{0,12}", total in 0u64..1000) {
            for h in [h.as_str(), b.as_str()] {
                match BlobRange::parse(Some(h), total) {
                    Part { start, end } => proptest::prop_assert!(start < end && end <= total),
                    Whole | Unsatisfiable => {}
                }
            }
        }
    }

    #[test]
    fn other_units_and_several_ranges_get_the_whole_body() {
        assert_eq!(r("items=0-1", 100), Whole);
        assert_eq!(r("none=0-1", 100), Whole);
        assert_eq!(r("bytes=0-1,5-6", 100), Whole);
        assert_eq!(r("bytes=0-1, 500-600", 100), Whole);
    }
}

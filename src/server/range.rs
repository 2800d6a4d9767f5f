//! The `Range` header of a blob request (RFC 9110 §14), for one byte range.

/// What to send for a blob of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRange {
    /// The whole body with 200: no Range, a unit other than bytes (which a
    /// server must ignore), or several ranges (which a server may ignore).
    Whole,
    /// 206 with the half-open byte range [start, end).
    Part { start: u64, end: u64 },
    /// 416: a bytes range that is malformed or starts past the end.
    Unsatisfiable,
}

impl BlobRange {
    pub fn parse(header: Option<&str>, total: u64) -> BlobRange {
        let Some(header) = header else {
            return BlobRange::Whole;
        };
        let Some((unit, spec)) = header.trim().split_once('=') else {
            return BlobRange::Unsatisfiable;
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return BlobRange::Whole;
        }
        if spec.contains(',') {
            return BlobRange::Whole;
        }
        match one_range(spec, total) {
            Some((start, end)) => BlobRange::Part { start, end },
            None => BlobRange::Unsatisfiable,
        }
    }
}

/// `a-b`, `a-`, `-n` -> half-open [start, end); `None` if malformed or unsatisfiable.
fn one_range(spec: &str, total: u64) -> Option<(u64, u64)> {
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.saturating_sub(n), total)
        }
        (a, "") => (a.parse().ok()?, total),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            (a, b.saturating_add(1).min(total))
        }
    };
    (start < end && start < total).then_some((start, end))
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
        assert_eq!(r("bytes=5-1", 100), Unsatisfiable);
        assert_eq!(r("bytes=x-1", 100), Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), Unsatisfiable);
        assert_eq!(r("bytes", 100), Unsatisfiable);
    }

    #[test]
    fn other_units_and_several_ranges_get_the_whole_body() {
        assert_eq!(r("items=0-1", 100), Whole);
        assert_eq!(r("none=0-1", 100), Whole);
        assert_eq!(r("bytes=0-1,5-6", 100), Whole);
        assert_eq!(r("bytes=0-1, 500-600", 100), Whole);
    }
}

//! Upstream replies read under a size cap and a low-speed limit (curl's
//! `--speed-limit`/`--speed-time`): a body that brings fewer than
//! `bytes_per_sec × time` bytes in any `time`-long stretch fails, so neither a
//! stall nor a drip holds a pull forever.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use super::RegistryError;

/// Slower than `bytes_per_sec` for `time` is a failure; either at zero turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpeedLimit {
    pub bytes_per_sec: u64,
    pub time: Duration,
}

impl Default for LowSpeedLimit {
    fn default() -> Self {
        LowSpeedLimit {
            bytes_per_sec: crate::config::DEFAULT_LOW_SPEED_LIMIT,
            time: crate::config::DEFAULT_LOW_SPEED_TIME,
        }
    }
}

impl LowSpeedLimit {
    /// `[network] low_speed_limit` and `low_speed_time`, else the defaults.
    pub fn from_config(network: &crate::config::NetworkConfig) -> Self {
        LowSpeedLimit {
            bytes_per_sec: network.low_speed_limit(),
            time: network.low_speed_time(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.bytes_per_sec > 0 && !self.time.is_zero()
    }

    /// The bytes each `time`-long stretch must bring.
    fn quota(&self) -> u64 {
        let q = u128::from(self.bytes_per_sec).saturating_mul(self.time.as_millis()) / 1000;
        u64::try_from(q).unwrap_or(u64::MAX).max(1)
    }
}

impl std::fmt::Display for LowSpeedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/s for {}",
            bytesize::ByteSize(self.bytes_per_sec),
            humantime::format_duration(self.time)
        )
    }
}

/// A reply whose headers have arrived; its body is read through `chunk`.
#[derive(Debug)]
pub struct Reply {
    response: reqwest::Response,
    url: String,
    speed: LowSpeedLimit,
    cap: Option<u64>,
    received: u64,
    /// The stretch being measured: since when, and the bytes it brought.
    window_start: Instant,
    window_bytes: u64,
}

impl Reply {
    pub fn new(response: reqwest::Response, speed: LowSpeedLimit) -> Reply {
        Reply {
            url: response.url().to_string(),
            response,
            speed,
            cap: None,
            received: 0,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    /// Refuses a body longer than `cap` bytes.
    pub fn with_cap(mut self, cap: u64) -> Reply {
        self.cap = Some(cap);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The URL that answered (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        if let Some(cap) = self.cap
            && self.content_length().is_some_and(|n| n > cap)
        {
            return Err(self.too_large(cap));
        }
        // A limit too long to fit in an Instant is no limit.
        let deadline = self
            .speed
            .is_enabled()
            .then(|| self.window_start.checked_add(self.speed.time))
            .flatten();
        let next = if let Some(deadline) = deadline {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(RegistryError::Body {
                        url: self.url.clone(),
                        reason: format!(
                            "slower than {} ({} bytes received); the limit is [network] \
                             low_speed_limit and low_speed_time in the config file",
                            self.speed, self.received
                        ),
                    });
                }
            }
        } else {
            self.response.chunk().await
        };
        let Some(chunk) = next.map_err(|e| RegistryError::from_reqwest(&self.url, &e))? else {
            return Ok(None);
        };
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        self.received = self.received.saturating_add(len);
        if let Some(cap) = self.cap
            && self.received > cap
        {
            return Err(self.too_large(cap));
        }
        self.window_bytes = self.window_bytes.saturating_add(len);
        if self.window_bytes >= self.speed.quota() {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        Ok(Some(chunk))
    }

    /// The whole body, at most `cap` bytes.
    pub async fn bytes(mut self, cap: u64) -> Result<Bytes, RegistryError> {
        self.cap = Some(self.cap.map_or(cap, |c| c.min(cap)));
        let mut buf = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }

    /// As much of the body as arrives, up to `cap` bytes: for error messages,
    /// where a part is as good as the whole and a failure adds nothing.
    pub async fn prefix(mut self, cap: usize) -> Bytes {
        let mut buf = Vec::new();
        while buf.len() < cap {
            match self.chunk().await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                _ => break,
            }
        }
        buf.truncate(cap);
        Bytes::from(buf)
    }

    fn too_large(&self, cap: u64) -> RegistryError {
        RegistryError::Protocol {
            url: self.url.clone(),
            message: format!("body larger than {cap} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_display() {
        let l = LowSpeedLimit::default();
        assert_eq!(l.quota(), 30 * 1024);
        assert_eq!(l.to_string(), "1.0 KiB/s for 30s");
        let huge = LowSpeedLimit {
            bytes_per_sec: u64::MAX,
            time: Duration::MAX,
        };
        assert_eq!(huge.quota(), u64::MAX);
        let off = LowSpeedLimit {
            bytes_per_sec: 0,
            time: Duration::from_secs(1),
        };
        assert!(!off.is_enabled());
    }
}

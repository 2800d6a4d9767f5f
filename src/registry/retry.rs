//! One retry policy per operation: only spurious failures are tried again,
//! after an exponential backoff or the server's `Retry-After`, a bounded
//! number of times (as cargo's `util/network/retry.rs` does).

use std::time::{Duration, SystemTime};

use super::RegistryError;

/// Tries after the first, unless the config file says otherwise.
pub const DEFAULT_RETRIES: u32 = 3;

/// How hard to try before giving up on a spurious failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_delay: Duration,
    /// The longest wait between tries; a server asking for longer (a
    /// `Retry-After` beyond it) is taken at its word and the operation fails now.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// `[network] retries`, else the command's default.
    pub fn from_config(network: &crate::config::NetworkConfig, default_retries: u32) -> Self {
        RetryPolicy {
            retries: network.retries(default_retries),
            ..RetryPolicy::default()
        }
    }

    /// Exponential backoff with jitter, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1 << failures.min(16));
        let jitter = exp.mul_f64(fastrand::f64() * 0.5);
        exp.saturating_add(jitter).min(self.max_delay)
    }

    /// Runs `op` (one try of an operation) until it succeeds, fails for
    /// good, or the retry budget is spent.
    pub async fn run<T, F>(&self, op: impl FnMut() -> F) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        self.run_unless(|_| false, op).await
    }

    /// `run`, except that an error `is_final` says so is not tried again.
    pub async fn run_unless<T, F>(
        &self,
        is_final: impl Fn(&RegistryError) -> bool,
        mut op: impl FnMut() -> F,
    ) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        let mut retry = self.start();
        loop {
            match op().await {
                Err(e) if !is_final(&e) && retry.wait_after(&e).await => {}
                result => return result,
            }
        }
    }

    /// The retry state of one operation.
    pub fn start(&self) -> Retry {
        Retry {
            policy: *self,
            failures: 0,
        }
    }
}

/// The tries one operation has spent, whatever its requests were (a blob's
/// resumed GETs count against the same budget as its first).
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    failures: u32,
}

impl Retry {
    /// How long to wait before trying again after `err`; `None` means give up.
    pub fn next_delay(&mut self, err: &RegistryError) -> Option<Duration> {
        if !err.is_spurious() || self.failures >= self.policy.retries {
            return None;
        }
        let delay = match err.retry_after() {
            Some(d) if d > self.policy.max_delay => return None,
            // At least what the server asked for.
            Some(d) => d,
            None => self.policy.backoff(self.failures),
        };
        self.failures += 1;
        Some(delay)
    }

    /// Waits before the next try after `err`, or returns false to give up.
    pub async fn wait_after(&mut self, err: &RegistryError) -> bool {
        let Some(delay) = self.next_delay(err) else {
            return false;
        };
        tracing::warn!(
            "{err}; retrying in {:.1}s ({} of {} retries)",
            delay.as_secs_f64(),
            self.failures,
            self.policy.retries
        );
        tokio::time::sleep(delay).await;
        true
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in
/// the past means now.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(retry_after: Option<Duration>) -> RegistryError {
        RegistryError::Status {
            url: "u".into(),
            status: 503,
            message: "down".into(),
            retry_after,
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.backoff(0) >= Duration::from_millis(200));
        assert!(p.backoff(0) <= Duration::from_millis(300));
        assert!(p.backoff(1) >= Duration::from_millis(400));
        assert_eq!(p.backoff(20), p.max_delay);
        assert_eq!(p.backoff(u32::MAX), p.max_delay);
    }

    #[test]
    fn only_spurious_failures_are_retried_and_only_so_often() {
        let mut r = RetryPolicy::default().start();
        for _ in 0..DEFAULT_RETRIES {
            assert!(r.next_delay(&unavailable(None)).is_some());
        }
        assert_eq!(r.next_delay(&unavailable(None)), None, "budget spent");

        let mut r = RetryPolicy::default().start();
        let redirect_loop = RegistryError::Protocol {
            url: "u".into(),
            message: "more than 5 redirects".into(),
        };
        assert_eq!(r.next_delay(&redirect_loop), None);
        let not_found = RegistryError::NotFound {
            what: "x".into(),
            url: "u".into(),
        };
        assert_eq!(r.next_delay(&not_found), None);
        assert_eq!(r.failures(), 0);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut r = RetryPolicy::default().start();
        assert_eq!(
            r.next_delay(&unavailable(Some(Duration::from_secs(2)))),
            Some(Duration::from_secs(2))
        );
        // Longer than we would ever wait: fail now rather than uselessly early.
        assert_eq!(
            r.next_delay(&unavailable(Some(Duration::from_secs(3600)))),
            None
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 17:00:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 17:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 16:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn jitter_adds_at_most_half_the_backoff() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.backoff(0);
            assert!(d >= p.base_delay && d <= p.base_delay.mul_f64(1.5), "{d:?}");
        }
    }

    #[test]
    fn the_config_file_sets_the_budget() {
        let network = crate::config::NetworkConfig {
            retries: Some(7),
            ..Default::default()
        };
        assert_eq!(RetryPolicy::from_config(&network, 3).retries, 7);
        let unset = crate::config::NetworkConfig::default();
        assert_eq!(RetryPolicy::from_config(&unset, 5).retries, 5);
    }

    #[test]
    fn a_wait_of_exactly_the_cap_is_honoured_and_each_try_counts() {
        let p = RetryPolicy::default();
        let mut r = p.start();
        assert_eq!(
            r.next_delay(&unavailable(Some(p.max_delay))),
            Some(p.max_delay)
        );
        assert_eq!(r.failures(), 1);
        assert!(r.next_delay(&unavailable(None)).is_some());
        assert_eq!(r.failures(), 2);
    }

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    /// Runs `policy` over an operation that fails with `errors` in turn, then
    /// succeeds; returns the result and the number of tries.
    async fn tries(
        policy: RetryPolicy,
        is_final: impl Fn(&RegistryError) -> bool,
        errors: Vec<RegistryError>,
    ) -> (Result<u32, RegistryError>, usize) {
        let errors = std::sync::Mutex::new(errors.into_iter());
        let count = std::sync::atomic::AtomicUsize::new(0);
        let result = policy
            .run_unless(is_final, || {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let next = errors.lock().ok().and_then(|mut e| e.next());
                async move {
                    match next {
                        Some(e) => Err(e),
                        None => Ok(7),
                    }
                }
            })
            .await;
        (result, count.into_inner())
    }

    #[tokio::test]
    async fn spurious_failures_are_tried_again_until_success() {
        let (result, n) = tries(
            quick(3),
            |_| false,
            vec![unavailable(None), unavailable(None)],
        )
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(n, 3);
        let ok = quick(3).run(|| async { Ok::<_, RegistryError>(5) }).await;
        assert_eq!(ok.ok(), Some(5));
    }

    #[tokio::test]
    async fn a_spent_budget_returns_the_last_failure() {
        let errors = (0..5).map(|_| unavailable(None)).collect();
        let (result, n) = tries(quick(2), |_| false, errors).await;
        assert!(matches!(
            result,
            Err(RegistryError::Status { status: 503, .. })
        ));
        assert_eq!(n, 3, "the first try and 2 retries");
    }

    #[tokio::test]
    async fn answers_and_final_failures_are_not_tried_again() {
        let not_found = RegistryError::NotFound {
            what: "x".into(),
            url: "u".into(),
        };
        let (result, n) = tries(quick(3), |_| false, vec![not_found]).await;
        assert!(matches!(result, Err(RegistryError::NotFound { .. })));
        assert_eq!(n, 1);
        let (result, n) = tries(quick(3), |_| true, vec![unavailable(None)]).await;
        assert!(result.is_err());
        assert_eq!(n, 1, "is_final stops a spurious failure too");
    }
}

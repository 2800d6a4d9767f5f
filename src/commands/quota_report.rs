//! The pull-quota figures as dpx shows them: one report type for `dpx
//! ratelimit` (live) and `--cached` (recorded), and the one-line form `dpx
//! doctor` prints too. Shared rendering, not a command.

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::Output;
use crate::cache::{Hold, QuotaSeen};
use crate::exit;
use crate::fetch::quota::{ANONYMOUS, rfc3339};
use crate::registry::{QuotaProbe, RateLimit};
use crate::stdout::{print_json, with_stdout};

/// A hold on manifest GETs after a 429 (`fetch::quota`), as shown.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HoldReport {
    /// Unix seconds of the 429 that began it.
    pub since: u64,
    /// Unix seconds from which dpx checks (free) whether quota is back.
    pub next_probe_at: u64,
}

impl From<Hold> for HoldReport {
    fn from(h: Hold) -> HoldReport {
        HoldReport {
            since: h.since,
            next_probe_at: h.next_probe_at,
        }
    }
}

impl HoldReport {
    pub fn describe(&self) -> String {
        format!(
            "held back since {} (a 429); dpx checks (free) whether quota is back at {}",
            rfc3339(self.since),
            rfc3339(self.next_probe_at)
        )
    }
}

/// The quota figures of one registry and identity, as shown to the user: by a
/// live check (`dpx ratelimit`), or from figures recorded earlier (`dpx
/// ratelimit --cached`, one object per registry and identity). The JSON
/// field names are part of the interface (README, "Rate limits").
#[derive(Debug, Clone, Serialize)]
pub struct RateLimitReport {
    /// The registry host, `docker.io`.
    pub registry: String,
    /// The API endpoint asked, when known.
    pub endpoint: Option<String>,
    /// False when the reply carried no rate-limit headers: no quota applies.
    pub limited: bool,
    /// No pulls left: a 429, or a remaining count of 0.
    pub exhausted: bool,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub window_seconds: Option<u64>,
    /// Whom the pulls count against: an IP address (anonymous) or an account
    /// id, as the registry named it (recorded: else the account).
    pub source: Option<String>,
    /// The account dpx asked as: a user name, or "anonymous".
    pub account: Option<String>,
    /// Whether the request carried credentials; `None` when not known.
    pub authenticated: Option<bool>,
    /// How long the registry asked to wait, with its 429.
    pub retry_after_seconds: Option<u64>,
    /// Seconds since the Unix epoch when the figures were seen.
    pub observed_at: u64,
    /// The same, in RFC 3339.
    pub observed: String,
    /// What the registry said with its 429.
    pub message: Option<String>,
    /// Manifest GETs held back after a 429, until quota shows again.
    pub hold: Option<HoldReport>,
}

impl From<QuotaSeen> for RateLimitReport {
    fn from(s: QuotaSeen) -> RateLimitReport {
        RateLimitReport {
            registry: s.registry,
            endpoint: None,
            limited: true,
            exhausted: s.hold.is_some() || s.remaining == Some(0),
            limit: s.limit,
            remaining: s.remaining,
            window_seconds: s.window_secs,
            source: Some(s.identity),
            account: Some(s.account),
            authenticated: Some(s.authenticated),
            retry_after_seconds: None,
            observed_at: s.seen_at,
            observed: rfc3339(s.seen_at),
            message: None,
            hold: s.hold.map(HoldReport::from),
        }
    }
}

impl RateLimitReport {
    /// The report for figures seen on a reply (`None`: it carried none).
    pub fn from_figures(
        registry: &str,
        figures: Option<&RateLimit>,
        authenticated: Option<bool>,
    ) -> RateLimitReport {
        RateLimitReport {
            registry: registry.to_string(),
            endpoint: None,
            limited: figures.is_some(),
            exhausted: figures.is_some_and(|f| f.remaining == Some(0)),
            limit: figures.and_then(|f| f.limit),
            remaining: figures.and_then(|f| f.remaining),
            window_seconds: figures.and_then(|f| f.window_secs),
            source: figures.and_then(|f| f.source.clone()),
            authenticated,
            retry_after_seconds: None,
            observed_at: figures.map_or_else(crate::cache::now_secs, |f| f.observed_at),
            observed: String::new(),
            message: None,
            account: None,
            hold: None,
        }
        .with_observed()
    }

    fn with_observed(mut self) -> RateLimitReport {
        self.observed = rfc3339(self.observed_at);
        self
    }

    /// The record of a live check's figures (`None`: no quota applies).
    pub(super) fn to_seen(&self) -> Option<QuotaSeen> {
        if !self.limited {
            return None;
        }
        let account = self.account.clone()?;
        Some(QuotaSeen {
            registry: self.registry.clone(),
            identity: self.source.clone().unwrap_or_else(|| account.clone()),
            authenticated: self.authenticated.unwrap_or(account != ANONYMOUS),
            account,
            limit: self.limit,
            remaining: self.remaining,
            window_secs: self.window_seconds,
            seen_at: self.observed_at,
            hold: None,
        })
    }

    /// The report of a live check; a 429 means nothing is left, whatever
    /// figures came with it.
    pub fn from_probe(registry: &str, probe: &QuotaProbe) -> RateLimitReport {
        let mut report = RateLimitReport::from_figures(registry, probe.rate_limit.as_ref(), None);
        report.authenticated = Some(probe.authenticated);
        if let Some(e) = &probe.exhausted {
            report.limited = true;
            report.exhausted = true;
            report.remaining = Some(0);
            report.retry_after_seconds = e.retry_after.map(|d| d.as_secs());
            report.message = Some(e.message.clone());
        }
        report
    }

    /// Prints the report: human lines, `--json`, or (`-q`) the remaining
    /// count alone, `unlimited` when no quota applies, `unknown` when a quota
    /// applies but the registry did not say how much is left.
    pub fn print(&self, output: Output) -> anyhow::Result<()> {
        match output {
            Output::Json => print_json(self)?,
            Output::Quiet => {
                let line = format!("{}\n", self.remaining_text());
                with_stdout(|out| out.write_all(line.as_bytes()))?;
            }
            Output::Human => {
                let text = self.human();
                with_stdout(|out| out.write_all(text.as_bytes()))?;
            }
        }
        Ok(())
    }

    pub(super) fn remaining_text(&self) -> String {
        match (self.limited, self.remaining) {
            (false, _) => "unlimited".into(),
            (true, Some(n)) => n.to_string(),
            (true, None) => "unknown".into(),
        }
    }

    pub(super) fn human(&self) -> String {
        let mut lines = Vec::new();
        let name = match &self.endpoint {
            Some(url) => format!("{} ({url})", self.registry),
            None => self.registry.clone(),
        };
        let request = match self.authenticated {
            Some(true) => "signed in",
            Some(false) => "anonymous",
            None => "not known",
        };
        if !self.limited {
            lines.push(format!(
                "{name}: not rate limited (the reply carried no rate-limit headers)"
            ));
            lines.push(format!("request:        {request}"));
            return lines.join("\n") + "\n";
        }
        let of_limit = self.limit.map_or(String::new(), |l| format!(" of {l}"));
        let window = self
            .window_seconds
            .map(|w| humantime::format_duration(Duration::from_secs(w)).to_string());
        if self.exhausted {
            lines.push(format!("{name}: the pull quota is used up"));
        } else {
            lines.push(format!("{name}: pull quota"));
        }
        lines.push(format!(
            "remaining:      {}{of_limit}",
            self.remaining_text()
        ));
        lines.push(format!(
            "window:         {}",
            window.as_deref().unwrap_or("not given")
        ));
        let whom = match (&self.source, self.authenticated) {
            (None, _) => "not given".to_string(),
            (Some(s), Some(true)) => format!("account {s}"),
            (Some(s), Some(false)) => format!("IP address {s}"),
            (Some(s), None) => s.clone(),
        };
        lines.push(format!("counts against: {whom}"));
        lines.push(format!("request:        {request}"));
        if self.exhausted {
            lines.push(format!("pulls again:    {}", self.allowed_again()));
        }
        if let Some(hold) = &self.hold {
            lines.push(format!("dpx GETs:       {}", hold.describe()));
        }
        if let Some(m) = &self.message {
            lines.push(format!("registry said:  {m}"));
        }
        lines.join("\n") + "\n"
    }

    /// When pulls are allowed again, as far as the registry's answer tells.
    fn allowed_again(&self) -> String {
        if let Some(secs) = self.retry_after_seconds {
            let at = crate::fetch::quota::rfc3339(self.observed_at.saturating_add(secs));
            let wait = humantime::format_duration(Duration::from_secs(secs));
            return format!("in {wait} (at {at}, from Retry-After)");
        }
        match self.window_seconds {
            // The window slides: each pull frees up one window after it was made.
            Some(w) => format!(
                "as earlier pulls leave the {} window: within {} at the latest",
                humantime::format_duration(Duration::from_secs(w)),
                humantime::format_duration(Duration::from_secs(w)),
            ),
            None => "not said by the registry".into(),
        }
    }

    /// The exit status for `--min-remaining`: `QUOTA_LOW` when fewer remain.
    pub fn verdict(&self, min_remaining: Option<u64>, output: Output) -> anyhow::Result<ExitCode> {
        let Some(min) = min_remaining else {
            return Ok(ExitCode::SUCCESS);
        };
        if !self.limited {
            return Ok(ExitCode::SUCCESS);
        }
        let Some(left) = self.remaining else {
            anyhow::bail!(
                "cannot check --min-remaining {min}: {} sent a limit but no remaining count",
                self.registry
            );
        };
        if left >= min {
            return Ok(ExitCode::SUCCESS);
        }
        if output != Output::Quiet {
            eprintln!(
                "{left} pulls left on {}, fewer than --min-remaining {min}",
                self.registry
            );
        }
        Ok(ExitCode::from(exit::QUOTA_LOW))
    }
}

/// One line: registry, whom it counts against, the figures, when seen, and
/// the hold after a 429 while one holds.
pub fn describe(f: &RateLimitReport, now: u64) -> String {
    let source = f.source.as_deref().unwrap_or("?");
    let account = f.account.as_deref().unwrap_or("?");
    let who = if f.authenticated == Some(true) {
        format!("{source} (signed in as {account})")
    } else {
        format!("{source} (anonymous)")
    };
    let figures = match (f.remaining, f.limit) {
        (Some(r), Some(l)) => format!("{r} of {l} pulls left"),
        (Some(r), None) => format!("{r} pulls left"),
        (None, Some(l)) => format!("limit {l} pulls"),
        (None, None) => "no figures".to_string(),
    };
    let window = f
        .window_seconds
        .map(|w| {
            format!(
                " per {}",
                humantime::format_duration(Duration::from_secs(w))
            )
        })
        .unwrap_or_default();
    let ago = humantime::format_duration(Duration::from_secs(now.saturating_sub(f.observed_at)));
    let held = f
        .hold
        .map(|h| format!("; manifest GETs {}", h.describe()))
        .unwrap_or_default();
    format!(
        "{}: {who}: {figures}{window}, seen {} ({ago} ago){held}",
        f.registry, f.observed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(limit: Option<u64>, remaining: Option<u64>) -> RateLimit {
        RateLimit {
            limit,
            remaining,
            window_secs: Some(21600),
            source: Some("192.0.2.1".into()),
            observed_at: 1_764_000_000,
        }
    }

    fn code(report: &RateLimitReport, min: Option<u64>) -> Option<ExitCode> {
        report.verdict(min, Output::Quiet).ok()
    }

    #[test]
    fn min_remaining_compares_with_what_is_left() {
        let r =
            RateLimitReport::from_figures("docker.io", Some(&figures(Some(100), Some(20))), None);
        assert_eq!(code(&r, None), Some(ExitCode::SUCCESS));
        assert_eq!(code(&r, Some(19)), Some(ExitCode::SUCCESS));
        assert_eq!(code(&r, Some(20)), Some(ExitCode::SUCCESS));
        assert_eq!(code(&r, Some(21)), Some(ExitCode::from(exit::QUOTA_LOW)));
        let unlimited = RateLimitReport::from_figures("docker.io", None, Some(true));
        assert_eq!(code(&unlimited, Some(u64::MAX)), Some(ExitCode::SUCCESS));
        let no_count =
            RateLimitReport::from_figures("docker.io", Some(&figures(Some(100), None)), None);
        assert_eq!(code(&no_count, None), Some(ExitCode::SUCCESS));
        assert!(no_count.verdict(Some(1), Output::Quiet).is_err());
    }

    #[test]
    fn quiet_and_human_forms() {
        let r = RateLimitReport::from_figures(
            "docker.io",
            Some(&figures(Some(100), Some(76))),
            Some(false),
        );
        assert_eq!(r.remaining_text(), "76");
        let text = r.human();
        assert!(text.contains("76 of 100"), "{text}");
        assert!(text.contains("6h"), "{text}");
        assert!(text.contains("IP address 192.0.2.1"), "{text}");
        assert!(text.contains("anonymous"), "{text}");
        let unlimited = RateLimitReport::from_figures("docker.io", None, Some(true));
        assert_eq!(unlimited.remaining_text(), "unlimited");
        assert!(unlimited.human().contains("not rate limited"));
        let mut gone = RateLimitReport::from_figures(
            "docker.io",
            Some(&figures(Some(100), Some(0))),
            Some(true),
        );
        assert!(gone.exhausted);
        assert!(gone.human().contains("within 6h"), "{}", gone.human());
        gone.retry_after_seconds = Some(90);
        assert!(gone.human().contains("in 1m 30s"), "{}", gone.human());
        assert!(
            gone.human().contains("account 192.0.2.1"),
            "{}",
            gone.human()
        );
        // An absurd Retry-After overflows nothing.
        gone.retry_after_seconds = Some(u64::MAX);
        let _ = gone.human();
        // Nor does one past the year 9999 (Fri, 31 Dec 9999 23:59:59 GMT and on).
        gone.retry_after_seconds = Some(253_402_300_800 - 1_764_000_000 + 10);
        assert!(gone.human().contains("9999-12-31"), "{}", gone.human());
    }
}

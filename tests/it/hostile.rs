//! Upstream replies that must not poison the cache or panic dpx: a captive
//! portal's HTML page instead of a manifest, a Content-Type of 100 KB, a
//! `Retry-After` in the year 9999; and what a HEAD of an uncached tag costs.

use crate::support::dpx::Dpx;
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};

#[test]
fn a_429_that_says_retry_in_the_year_9999_panics_nothing() {
    let hub = FakeHub::start();
    hub.add_image("library/far", "v1", &[10], 74);
    hub.set_retry_after(Some("Fri, 31 Dec 9999 23:59:59 GMT"));
    hub.set_fault(Fault::TooManyRequests);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["pull", "far:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("429"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The pause is recorded: the next pull does not ask (exit 3, the quota's
    // code), and says until when.
    let out = dpx.run(&["pull", "far:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("until 9999-12-31"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let fresh = Dpx::new(&hub.url());
    let serve = fresh.serve();
    for _ in 0..2 {
        let r = request(&serve.addr, "GET", "/v2/library/far/manifests/v1", &[]);
        assert_eq!(r.status, 429, "{}", r.body_text());
        assert_eq!(r.error_code().as_deref(), Some("TOOMANYREQUESTS"));
        assert!(r.body_text().contains("9999-12-31"), "{}", r.body_text());
    }
    assert_eq!(hub.count(Route::ManifestGet), 2, "one GET per process");
    let ping = request(&serve.addr, "GET", "/v2/", &[]);
    assert_eq!(ping.status, 200, "serve is still up");
    assert!(
        !serve.log_text().contains("panicked"),
        "{}",
        serve.log_text()
    );
}

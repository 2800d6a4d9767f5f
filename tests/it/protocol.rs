//! The registry API surface of `dpx serve`: tag lists, error codes, route
//! edge cases and Range, against the fake hub, docker-registry and skopeo.

use std::process::Command;

use crate::support::assert_success;
use crate::support::distribution::shared_registry;
use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, Fault, Route};
use crate::support::layout::{random_layer, skopeo_inspect_digest, skopeo_push, write_image};

/// The error codes of the distribution spec (v1.1 "Error Codes").
pub(crate) const SPEC_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

fn json(resp: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", resp.body_text()))
}

fn tags_of(resp: &RawResponse) -> Vec<String> {
    json(resp)["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags: {}", resp.body_text()))
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The target of `Link: <target>; rel="next"`.
fn next_page(resp: &RawResponse) -> Option<String> {
    let link = resp.header("link")?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(
        link.trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn tag_lists_are_paged_with_n_and_last_and_cost_no_pull() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/tl", "v1", &[10], 40);
    for t in ["v2", "v10", "latest", "a", "B"] {
        hub.tag("library/tl", t, &digest);
    }
    // The upstream pages too: dpx follows its Link headers.
    hub.set_tag_page_size(Some(2));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let all = request(&serve.addr, "GET", "/v2/library/tl/tags/list", &[]);
    assert_eq!(all.status, 200, "{}", all.body_text());
    assert_eq!(all.header("content-type"), Some("application/json"));
    assert_eq!(all.header("x-dpx-cache"), Some("miss"));
    assert_eq!(json(&all)["name"], "library/tl");
    let sorted = ["B", "a", "latest", "v1", "v10", "v2"];
    assert_eq!(tags_of(&all), sorted);
    assert_eq!(next_page(&all), None, "no n, no next page");
    assert_eq!(hub.count(Route::TagsList), 3, "three upstream pages of two");
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
        0,
        "a tag list spends no pull"
    );

    // Pages of 4, from the Link of each to the next, as a client walks them.
    let mut seen = Vec::new();
    let mut path = Some("/v2/library/tl/tags/list?n=4".to_string());
    let mut pages = 0;
    while let Some(p) = path {
        let page = request(&serve.addr, "GET", &p, &[]);
        assert_eq!(page.status, 200, "{p}: {}", page.body_text());
        assert_eq!(page.header("x-dpx-cache"), Some("hit"));
        let tags = tags_of(&page);
        assert!(tags.len() <= 4, "{tags:?}");
        seen.extend(tags);
        path = next_page(&page);
        pages += 1;
        assert!(pages <= 3, "the pages never end");
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, sorted);
    let first = request(&serve.addr, "GET", "/v2/library/tl/tags/list?n=4", &[]);
    assert_eq!(
        first.header("link"),
        Some("</v2/library/tl/tags/list?last=v1&n=4>; rel=\"next\"")
    );
    let after = request(
        &serve.addr,
        "GET",
        "/v2/library/tl/tags/list?n=2&last=latest",
        &[],
    );
    assert_eq!(tags_of(&after), ["v1", "v10"], "last is exclusive");
    let after_unknown = request(&serve.addr, "GET", "/v2/library/tl/tags/list?last=c", &[]);
    assert_eq!(tags_of(&after_unknown), ["latest", "v1", "v10", "v2"]);
    let none = request(&serve.addr, "GET", "/v2/library/tl/tags/list?n=0", &[]);
    assert_eq!((tags_of(&none).len(), none.header("link")), (0, None));
    let short = request(&serve.addr, "GET", "/v2/tl/tags/list", &[]);
    assert_eq!(
        json(&short)["name"],
        "tl",
        "the name as the client wrote it"
    );
    assert_eq!(tags_of(&short), sorted);
    let bad = request(&serve.addr, "GET", "/v2/library/tl/tags/list?n=-1", &[]);
    assert_eq!(bad.status, 400, "{}", bad.body_text());
    assert!(bad.body_text().contains("n="), "{}", bad.body_text());

    assert_eq!(
        hub.count(Route::TagsList),
        3,
        "within the tag TTL the list makes no upstream request"
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

#[test]
fn a_tag_list_is_refreshed_after_the_ttl_and_served_stale_in_an_outage() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/tls", "v1", &[10], 41);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let serve = dpx.serve();
    let path = "/v2/library/tls/tags/list";
    assert_eq!(tags_of(&request(&serve.addr, "GET", path, &[])), ["v1"]);
    hub.tag("library/tls", "v2", &digest);
    let fresh = request(&serve.addr, "GET", path, &[]);
    assert_eq!(fresh.header("x-dpx-cache"), Some("miss"));
    assert_eq!(
        tags_of(&fresh),
        ["v1", "v2"],
        "past the TTL the list is asked again"
    );
    assert_eq!(hub.count(Route::TagsList), 2);

    for fault in [Fault::Outage, Fault::ConnectionReset] {
        hub.set_fault(fault);
        let stale = request(&serve.addr, "GET", path, &[]);
        assert_eq!(stale.status, 200, "{fault:?}: {}", stale.body_text());
        assert_eq!(stale.header("x-dpx-cache"), Some("stale"), "{fault:?}");
        assert_eq!(tags_of(&stale), ["v1", "v2"], "{fault:?}");
    }
    hub.set_fault(Fault::Outage);
    let never = request(&serve.addr, "GET", "/v2/library/unseen/tags/list", &[]);
    assert_eq!(never.status, 503, "{}", never.body_text());
    assert_eq!(never.error_code().as_deref(), Some("UNAVAILABLE"));
    let message = never.body_text();
    assert!(
        message.contains("not cached") && message.contains("unavailable"),
        "{message}"
    );
    hub.set_fault(Fault::None);
    let unknown = request(&serve.addr, "GET", "/v2/library/nosuch/tags/list", &[]);
    assert_eq!(
        (unknown.status, unknown.error_code().as_deref()),
        (404, Some("NAME_UNKNOWN")),
        "{}",
        unknown.body_text()
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

#[test]
fn skopeo_inspect_with_tags_works_through_dpx_serve_in_mirror_and_prefix_mode() {
    let reg = shared_registry();
    let layout = tempfile::tempdir().expect("tempdir");
    write_image(layout.path(), "v1", &[random_layer(50, 20_000)], "amd64");
    for tag in ["v1", "v2", "3.0"] {
        skopeo_push(
            layout.path(),
            "v1",
            &format!("{}/it-inspect/app:{tag}", reg.host),
            false,
        );
    }
    let upstream = skopeo_inspect_digest(&format!("{}/it-inspect/app:v1", reg.host));
    let dpx = Dpx::with_registries(&[("docker.io", &reg.url), ("reg.example", &reg.url)], "");
    let serve = dpx.serve();
    for image in ["it-inspect/app:v1", "reg.example/it-inspect/app:v1"] {
        // Plain inspect: it lists the repository's tags too.
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/{image}", serve.addr))
            .output()
            .expect("run skopeo");
        assert_success(&out, &format!("skopeo inspect {image} through dpx"));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
        assert_eq!(v["Digest"], upstream.as_str(), "{v}");
        assert_eq!(v["RepoTags"], serde_json::json!(["3.0", "v1", "v2"]), "{v}");
    }
    assert!(serve.log_shows("GET /v2/reg.example/it-inspect/app/tags/list 200"));
}

#[test]
fn invalid_tags_are_unknown_manifests_and_malformed_digests_invalid() {
    let hub = FakeHub::start();
    hub.add_image("library/inv", "v1", &[10], 42);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    for method in ["GET", "HEAD"] {
        let invalid = request(
            &serve.addr,
            method,
            "/v2/library/inv/manifests/.INVALID_MANIFEST_NAME",
            &[],
        );
        assert_eq!(invalid.status, 404, "{method}");
        let digest = request(
            &serve.addr,
            method,
            "/v2/library/inv/manifests/sha256:1234",
            &[],
        );
        assert_eq!(digest.status, 400, "{method}");
        if method == "GET" {
            assert_eq!(invalid.error_code().as_deref(), Some("MANIFEST_UNKNOWN"));
            assert!(
                invalid.body_text().contains("invalid tag"),
                "{}",
                invalid.body_text()
            );
            assert_eq!(digest.error_code().as_deref(), Some("DIGEST_INVALID"));
        }
    }
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
        0,
        "nothing that cannot exist is asked upstream"
    );
}

#[test]
fn a_repository_named_uploads_pulls_and_only_upload_routes_are_refused() {
    let hub = FakeHub::start();
    let lib = hub.add_image("library/uploads", "1", &[3000], 43);
    let org = hub.add_image("org/uploads", "1", &[4000], 44);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    for (path, digest) in [
        ("/v2/library/uploads/manifests/1", &lib),
        ("/v2/uploads/manifests/1", &lib),
        ("/v2/org/uploads/manifests/1", &org),
    ] {
        let m = request(&serve.addr, "GET", path, &[]);
        assert_eq!(m.status, 200, "{path}: {}", m.body_text());
        assert_eq!(m.header("docker-content-digest"), Some(digest.as_str()));
    }
    let manifest = json(&request(
        &serve.addr,
        "GET",
        "/v2/org/uploads/manifests/1",
        &[],
    ));
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let blob = request(
        &serve.addr,
        "GET",
        &format!("/v2/org/uploads/blobs/{layer}"),
        &[],
    );
    assert_eq!(blob.status, 200, "{}", blob.body_text());
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), layer);

    // A real client pulls it whole.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/library/uploads:1", serve.addr))
        .arg(format!("dir:{}", dir.path().join("img").display()))
        .output()
        .expect("run skopeo");
    assert_success(&out, "skopeo copy of library/uploads through dpx");

    for (method, path) in [
        ("POST", "/v2/org/uploads/blobs/uploads/"),
        ("GET", "/v2/org/uploads/blobs/uploads/some-upload-id"),
        ("PATCH", "/v2/library/uploads/blobs/uploads/some-upload-id"),
    ] {
        let r = request(&serve.addr, method, path, &[]);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (405, Some("UNSUPPORTED")),
            "{method} {path}"
        );
    }
}

#[test]
fn client_errors_carry_only_spec_error_codes() {
    let hub = FakeHub::start();
    hub.add_image("library/codes", "v1", &[10], 45);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let zero = format!("sha256:{}", "0".repeat(64));
    let mut cases: Vec<(&str, String)> = vec![
        ("GET", "/etc/passwd".into()),
        ("GET", "//v2/".into()),
        ("GET", "/v2/library/codes/unknown/x".into()),
        ("GET", "/v2/library/codes/tags/other".into()),
        ("GET", "/v2/library/codes/manifests/.bad".into()),
        ("GET", "/v2/library/codes/manifests/sha256:12".into()),
        ("GET", "/v2/library/codes/manifests/nosuch".into()),
        ("GET", format!("/v2/library/codes/manifests/{zero}")),
        ("GET", format!("/v2/library/codes/blobs/{zero}")),
        ("GET", "/v2/library/nosuch/tags/list".into()),
        ("GET", "/v2/library/codes/tags/list?n=x".into()),
        ("GET", "/v2/UPPER/manifests/v1".into()),
        ("PUT", "/v2/library/codes/manifests/v1".into()),
        ("DELETE", format!("/v2/library/codes/blobs/{zero}")),
    ];
    let check = |cases: &mut Vec<(&str, String)>| {
        for (method, path) in cases.drain(..) {
            let r = request(&serve.addr, method, &path, &[]);
            assert!(
                (400..500).contains(&r.status),
                "{method} {path}: {}",
                r.status
            );
            let code = r.error_code().unwrap_or_default();
            assert!(
                SPEC_CODES.contains(&code.as_str()),
                "{method} {path}: {} {code} is no spec code: {}",
                r.status,
                r.body_text()
            );
        }
    };
    check(&mut cases);

    // Not cached and the upstream down: a 404 (docker shows 4xx bodies) with
    // MANIFEST_UNKNOWN, and the message says why.
    hub.set_fault(Fault::Outage);
    let down = request(&serve.addr, "GET", "/v2/library/codes/manifests/v1", &[]);
    assert_eq!(
        (down.status, down.error_code().as_deref()),
        (404, Some("MANIFEST_UNKNOWN"))
    );
    assert!(
        down.body_text()
            .contains("upstream registry is unavailable"),
        "{}",
        down.body_text()
    );
    let head = request(&serve.addr, "HEAD", "/v2/library/codes/manifests/v1", &[]);
    assert_eq!(head.status, 404);
    cases.push(("GET", format!("/v2/library/codes/manifests/{zero}")));
    check(&mut cases);
    hub.set_fault(Fault::TooManyRequests);
    cases.push(("GET", "/v2/library/codes/manifests/v1".into()));
    check(&mut cases);
}

#[test]
fn ranges_of_another_unit_or_several_get_the_whole_blob() {
    let hub = FakeHub::start();
    let data = crate::support::hub::noise(46, 5000);
    let digest = hub.add_blob(data.clone());
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = format!("/v2/library/ranges/blobs/{digest}");
    // Cold (streamed while it downloads), then cached.
    for state in ["cold", "cached"] {
        for range in ["bytes=0-1,5-6", "items=0-1"] {
            let r = request(&serve.addr, "GET", &path, &[("Range", range)]);
            assert_eq!(r.status, 200, "{state} {range}: {}", r.body_text());
            assert_eq!(r.body, data, "{state} {range}");
            assert_eq!(r.header("content-range"), None);
        }
        let part = request(&serve.addr, "GET", &path, &[("Range", "bytes=10-19")]);
        assert_eq!(part.status, 206, "{state}");
        assert_eq!(part.body, &data[10..20]);
        let past = request(&serve.addr, "GET", &path, &[("Range", "bytes=6000-")]);
        assert_eq!(past.status, 416, "{state}");
        assert_eq!(past.header("content-range"), Some("bytes */5000"));
        // Stored once fsynced, a moment after the client's last byte.
        wait_for(
            "the blob stored",
            std::time::Duration::from_secs(10),
            || dpx.has_blob(&digest),
        );
    }
}

/// RFC 9110 §14.2: a Range that is not valid syntax is ignored (200 with the
/// whole body); only a valid range that cannot be satisfied earns a 416.
#[test]
fn malformed_ranges_are_ignored_and_get_the_whole_blob() {
    let hub = FakeHub::start();
    let data = crate::support::hub::noise(47, 3000);
    let digest = hub.add_blob(data.clone());
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = format!("/v2/library/badranges/blobs/{digest}");
    for state in ["cold", "cached"] {
        for range in [
            "bytes=a-b",
            "bytes=",
            "bytes",
            "bytes=-",
            "bytes=5-1",
            "bytes=+5-9",
            "bytes=0x10-",
        ] {
            let r = request(&serve.addr, "GET", &path, &[("Range", range)]);
            assert_eq!(r.status, 200, "{state} {range:?}: {}", r.body_text());
            assert_eq!(r.body, data, "{state} {range:?}");
            assert_eq!(r.header("content-range"), None, "{state} {range:?}");
        }
        // Valid but unsatisfiable: still 416.
        for range in ["bytes=3000-", "bytes=99999999999999999999999-"] {
            let r = request(&serve.addr, "GET", &path, &[("Range", range)]);
            assert_eq!(r.status, 416, "{state} {range:?}");
            assert_eq!(r.header("content-range"), Some("bytes */3000"));
        }
        // Stored once fsynced, a moment after the client's last byte.
        wait_for(
            "the blob stored",
            std::time::Duration::from_secs(10),
            || dpx.has_blob(&digest),
        );
    }
}

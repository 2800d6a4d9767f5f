//! `GET /v2/<name>/referrers/<digest>` through `dpx serve`: forwarded to an
//! upstream with the referrers API (the fake hub, switched on), read from the
//! referrers tag schema of one without it (docker-registry 2.8, Docker Hub
//! today), an empty index when nothing refers, cached with the tag TTL.

use crate::support::distribution::shared_registry;
use crate::support::dpx::{Dpx, sha256_hex};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, Fault, Route};
use crate::support::push::{push_blob, push_manifest};

const OM: &str = "application/vnd.oci.image.manifest.v1+json";
const OI: &str = "application/vnd.oci.image.index.v1+json";
const SIG: &str = "application/vnd.example.signature";
const SBOM: &str = "application/vnd.example.sbom";

fn referrers_path(repo: &str, subject: &str, artifact_type: Option<&str>) -> String {
    let mut path = format!("/v2/{repo}/referrers/{subject}");
    if let Some(t) = artifact_type {
        path.push_str("?artifactType=");
        path.push_str(&url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
    }
    path
}

/// The digests the answer lists, after checking it is an OCI image index.
fn listed(r: &RawResponse) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("content-type"), Some(OI));
    let index: serde_json::Value = serde_json::from_slice(&r.body).expect("an index");
    assert_eq!(index["schemaVersion"], 2);
    let mut digests: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests array")
        .iter()
        .map(|m| m["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    digests.sort();
    digests
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// An artifact manifest (empty config, one layer) whose subject is `subject`.
fn artifact(
    subject: &serde_json::Value,
    artifact_type: &str,
    layer: &serde_json::Value,
) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2, "mediaType": OM, "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": format!("sha256:{}", sha256_hex(b"{}")), "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer["digest"], "size": layer["size"]}],
        "subject": subject,
        "annotations": {"org.example.kind": artifact_type}
    })
    .to_string()
    .into_bytes()
}

#[test]
fn without_the_api_upstream_dpx_reads_the_referrers_tag_schema_and_caches_it() {
    let registry = shared_registry();
    let repo = "referrers/schema";
    let host = registry.host.as_str();
    let config = push_blob(host, repo, br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = push_blob(host, repo, b"referrers layer");
    push_blob(host, repo, b"{}");
    let image = serde_json::json!({
        "schemaVersion": 2, "mediaType": OM,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config["digest"], "size": config["size"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer["digest"], "size": layer["size"]}]
    });
    let subject = push_manifest(host, repo, "v1", OM, image.to_string().as_bytes());
    let subject_digest = subject["digest"].as_str().unwrap_or_default().to_string();
    let mut descriptors = Vec::new();
    for t in [SIG, SBOM] {
        let body = artifact(&subject, t, &layer);
        let digest = format!("sha256:{}", sha256_hex(&body));
        let mut desc = push_manifest(host, repo, &digest, OM, &body);
        desc["artifactType"] = t.into();
        desc["annotations"] = serde_json::json!({"org.example.kind": t});
        descriptors.push(desc);
    }
    // What a client does for a registry without the API: the sha256-<hex> tag.
    let schema_tag = format!("sha256-{}", subject_digest.trim_start_matches("sha256:"));
    let tag_index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OI, "manifests": descriptors});
    push_manifest(
        host,
        repo,
        &schema_tag,
        OI,
        tag_index.to_string().as_bytes(),
    );
    let both: Vec<String> = sorted(
        descriptors
            .iter()
            .map(|d| d["digest"].as_str().unwrap_or_default().to_string())
            .collect(),
    );
    // docker-registry itself has no referrers API: that is why dpx falls back.
    let direct = request(
        host,
        "GET",
        &referrers_path(repo, &subject_digest, None),
        &[],
    );
    assert_eq!(direct.status, 404);

    let dpx = Dpx::new(&registry.url);
    let serve = dpx.serve();
    let all = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject_digest, None),
        &[],
    );
    assert_eq!(listed(&all), both);
    assert_eq!(all.header("oci-filters-applied"), None);
    let head = request(
        &serve.addr,
        "HEAD",
        &referrers_path(repo, &subject_digest, None),
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some(OI));
    assert_eq!(
        head.header("content-length"),
        Some(all.body.len().to_string().as_str())
    );

    let sigs = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject_digest, Some(SIG)),
        &[],
    );
    assert_eq!(
        listed(&sigs),
        vec![
            descriptors[0]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        ]
    );
    assert_eq!(sigs.header("oci-filters-applied"), Some("artifactType"));
    let sig_entry: serde_json::Value = serde_json::from_slice(&sigs.body).unwrap();
    assert_eq!(
        sig_entry["manifests"][0]["annotations"]["org.example.kind"],
        SIG
    );

    let nothing = format!("sha256:{}", sha256_hex(b"refers to nothing"));
    let empty = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &nothing, None),
        &[],
    );
    assert_eq!(listed(&empty), Vec::<String>::new());
    assert_eq!(
        empty.body_text(),
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
    );

    // Cached like a tag: with the schema tag gone upstream, the answer within
    // the TTL is still the cached one.
    let gone = crate::support::http::request_exact(
        host,
        "DELETE",
        &format!("/v2/{repo}/manifests/{}", tag_index_digest(&tag_index)),
        &[],
    );
    assert_eq!(gone.status, 202, "{}", gone.body_text());
    let again = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject_digest, None),
        &[],
    );
    assert_eq!(listed(&again), both);
    assert_eq!(again.header("x-dpx-cache"), Some("hit"));
}

fn tag_index_digest(index: &serde_json::Value) -> String {
    format!("sha256:{}", sha256_hex(index.to_string().as_bytes()))
}

/// A hub image with a signature and an SBOM referring to it; returns
/// (subject digest, [signature digest, sbom digest]).
fn hub_with_referrers(hub: &FakeHub, repo: &str, seed: u64) -> (String, Vec<String>) {
    let subject_digest = hub.add_image(repo, "v1", &[100], seed);
    let layer = serde_json::json!({"digest": hub.add_blob(b"sig".to_vec()), "size": 3});
    hub.add_blob(b"{}".to_vec());
    let subject = serde_json::json!({"mediaType": OM, "digest": subject_digest, "size": 0});
    let artifacts = [SIG, SBOM]
        .iter()
        .map(|t| hub.add_manifest(repo, None, OM, artifact(&subject, t, &layer)))
        .collect();
    (subject_digest, artifacts)
}

#[test]
fn an_upstream_with_the_api_is_asked_once_per_ttl_and_served_stale_when_down() {
    let hub = FakeHub::start();
    hub.set_referrers_api(true);
    let repo = "org/signed";
    let (subject, artifacts) = hub_with_referrers(&hub, repo, 71);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();

    let first = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject, None),
        &[],
    );
    assert_eq!(listed(&first), sorted(artifacts.clone()));
    assert_eq!(first.header("x-dpx-cache"), Some("miss"));
    for _ in 0..3 {
        let again = request(
            &serve.addr,
            "GET",
            &referrers_path(repo, &subject, None),
            &[],
        );
        assert_eq!(again.body, first.body, "the upstream answer, byte for byte");
        assert_eq!(again.header("x-dpx-cache"), Some("hit"));
    }
    let sboms = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject, Some(SBOM)),
        &[],
    );
    assert_eq!(listed(&sboms), vec![artifacts[1].clone()]);
    assert_eq!(sboms.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(
        (
            hub.count(Route::ReferrersGet),
            hub.count(Route::ManifestGet),
            hub.count(Route::ManifestHead)
        ),
        (1, 0, 0),
        "one referrers request upstream, no tag-schema lookups"
    );

    // Past the TTL the upstream is asked again; down, the last answer is served.
    let stale_dpx =
        Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let stale_serve = stale_dpx.serve();
    let fetched = request(
        &stale_serve.addr,
        "GET",
        &referrers_path(repo, &subject, None),
        &[],
    );
    assert_eq!(listed(&fetched), sorted(artifacts.clone()));
    hub.set_fault(Fault::Outage);
    let stale = request(
        &stale_serve.addr,
        "GET",
        &referrers_path(repo, &subject, None),
        &[],
    );
    assert_eq!(listed(&stale), sorted(artifacts));
    assert_eq!(stale.header("x-dpx-cache"), Some("stale"));
    let never = format!("sha256:{}", sha256_hex(b"never asked"));
    let down = request(
        &stale_serve.addr,
        "GET",
        &referrers_path(repo, &never, None),
        &[],
    );
    assert_eq!(down.status, 404, "{}", down.body_text());
    assert!(
        down.body_text().contains("unavailable"),
        "{}",
        down.body_text()
    );
}

#[test]
fn docker_hub_without_the_api_is_read_through_the_schema_tag() {
    let hub = FakeHub::start();
    let repo = "org/hubsigned";
    let (subject, artifacts) = hub_with_referrers(&hub, repo, 72);
    let entries: Vec<serde_json::Value> = artifacts
        .iter()
        .map(|d| serde_json::json!({"mediaType": OM, "digest": d, "size": 1, "artifactType": SIG}))
        .collect();
    let schema_tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    hub.add_manifest(
        repo,
        Some(&schema_tag),
        OI,
        serde_json::json!({"schemaVersion": 2, "mediaType": OI, "manifests": entries})
            .to_string()
            .into_bytes(),
    );
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();

    let found = request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject, None),
        &[],
    );
    assert_eq!(listed(&found), sorted(artifacts));
    let other = format!("sha256:{}", sha256_hex(b"unsigned"));
    let none = request(&serve.addr, "GET", &referrers_path(repo, &other, None), &[]);
    assert_eq!(listed(&none), Vec::<String>::new());
    assert_eq!(
        (
            hub.count(Route::ReferrersGet),
            hub.count(Route::ManifestGet)
        ),
        (2, 2),
        "each subject: the 404 of the API, then its schema tag"
    );
    // Both answers are cached: within the TTL nothing goes upstream.
    hub.reset_counts();
    request(
        &serve.addr,
        "GET",
        &referrers_path(repo, &subject, None),
        &[],
    );
    request(&serve.addr, "GET", &referrers_path(repo, &other, None), &[]);
    assert_eq!(
        hub.count(Route::ReferrersGet)
            + hub.count(Route::ManifestGet)
            + hub.count(Route::ManifestHead),
        0
    );
}

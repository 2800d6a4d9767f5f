//! Content negotiation: `dpx serve` answers `Accept` as docker-registry
//! (distribution 2.8) does for the same content, compared cell by cell.

use crate::support::distribution::shared_registry;
use crate::support::dpx::Dpx;
use crate::support::http::{RawResponse, request_exact};
use crate::support::push::{push_blob, push_manifest};

const DM: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DL: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OM: &str = "application/vnd.oci.image.manifest.v1+json";
const OI: &str = "application/vnd.oci.image.index.v1+json";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The four manifests of the table, pushed byte for byte: tag -> descriptor.
struct Content {
    docker_manifest: serde_json::Value,
    oci_manifest: serde_json::Value,
    docker_list: serde_json::Value,
    oci_index: serde_json::Value,
}

fn push_content(host: &str, repo: &str) -> Content {
    // A config with history, so that distribution can rewrite the Docker
    // manifest into schema 1 as it does for old clients.
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "a".repeat(64))]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "test"}]
    })
    .to_string();
    let config = push_blob(host, repo, config.as_bytes());
    let layer = push_blob(host, repo, b"negotiate layer");
    let with_type = |d: &serde_json::Value, t: &str| {
        let mut d = d.clone();
        d["mediaType"] = t.into();
        d
    };
    let docker_manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": DM,
        "config": with_type(&config, "application/vnd.docker.container.image.v1+json"),
        "layers": [with_type(&layer, "application/vnd.docker.image.rootfs.diff.tar.gzip")]
    });
    let docker_manifest =
        push_manifest(host, repo, "dm", DM, docker_manifest.to_string().as_bytes());
    let oci_manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OM,
        "config": with_type(&config, "application/vnd.oci.image.config.v1+json"),
        "layers": [with_type(&layer, "application/vnd.oci.image.layer.v1.tar+gzip")]
    });
    let oci_manifest = push_manifest(host, repo, "om", OM, oci_manifest.to_string().as_bytes());
    let entry = |d: &serde_json::Value, arch: &str| {
        let mut d = d.clone();
        d["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
        d
    };
    let docker_list = serde_json::json!({
        "schemaVersion": 2, "mediaType": DL,
        "manifests": [entry(&oci_manifest, "arm64"), entry(&docker_manifest, "amd64")]
    });
    let docker_list = push_manifest(host, repo, "dl", DL, docker_list.to_string().as_bytes());
    let oci_index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OI,
        "manifests": [entry(&oci_manifest, "amd64")]
    });
    let oci_index = push_manifest(host, repo, "oi", OI, oci_index.to_string().as_bytes());
    Content {
        docker_manifest,
        oci_manifest,
        docker_list,
        oci_index,
    }
}

/// Status, Content-Type (successes only: error bodies differ in charset),
/// Docker-Content-Digest and error code of one answer.
#[derive(Debug, PartialEq, Eq)]
struct Cell {
    status: u16,
    content_type: Option<String>,
    digest: Option<String>,
    code: Option<String>,
}

fn cell(r: &RawResponse) -> Cell {
    let ok = r.status == 200;
    Cell {
        status: r.status,
        content_type: ok.then(|| r.header("content-type").unwrap_or("").to_string()),
        digest: ok.then(|| r.header("docker-content-digest").unwrap_or("").to_string()),
        code: r.error_code(),
    }
}

#[test]
fn accept_is_answered_like_docker_registry_for_every_manifest_type() {
    let registry = shared_registry();
    let repo = "negotiate/table";
    let content = push_content(&registry.host, repo);
    let dpx = Dpx::new(&registry.url);
    let serve = dpx.serve();

    let accepts: Vec<Vec<&str>> = vec![
        vec![],
        vec![DM],
        vec![DL],
        vec![OM],
        vec![OI],
        vec![SCHEMA1],
        vec!["*/*"],
        vec!["application/json"],
        vec![
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        ],
        vec!["application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"],
        vec![
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ],
        vec![
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        ],
        // Separate headers count together; parameters and case are ignored.
        vec![DM, "Application/VND.OCI.Image.Index.v1+json; q=0.1"],
        vec![SCHEMA1, "*/*;q=0.8", DL],
    ];
    let docker_manifest_digest = content.docker_manifest["digest"]
        .as_str()
        .unwrap_or_default();
    let mut references = Vec::new();
    for (tag, desc) in [
        ("dm", &content.docker_manifest),
        ("om", &content.oci_manifest),
        ("dl", &content.docker_list),
        ("oi", &content.oci_index),
    ] {
        references.push(tag.to_string());
        references.push(desc["digest"].as_str().unwrap_or_default().to_string());
    }

    let (mut compared, mut schema1, mut refused, mut rewritten) = (0, 0, 0, 0);
    for method in ["GET", "HEAD"] {
        for reference in &references {
            for accept in &accepts {
                let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
                let path = format!("/v2/{repo}/manifests/{reference}");
                let want = request_exact(&registry.host, method, &path, &headers);
                let got = request_exact(&serve.addr, method, &path, &headers);
                let (want, got) = (cell(&want), cell(&got));
                let case = format!("{method} {reference} Accept {accept:?}");
                if want.content_type.as_deref() == Some(SCHEMA1) {
                    // The one deliberate difference: dpx never makes schema 1;
                    // it serves the Docker schema 2 manifest instead (for a list,
                    // its linux/amd64 image, as distribution picks it).
                    assert_eq!(
                        got,
                        Cell {
                            status: 200,
                            content_type: Some(DM.into()),
                            digest: Some(docker_manifest_digest.into()),
                            code: None
                        },
                        "{case}"
                    );
                    schema1 += 1;
                    continue;
                }
                assert_eq!(got, want, "{case}: dpx differs from docker-registry");
                compared += 1;
                if want.status == 404 {
                    refused += 1;
                }
                let top = references.iter().position(|r| r == reference).unwrap_or(0) / 2;
                if want.status == 200
                    && top == 2
                    && want.digest.as_deref() == Some(docker_manifest_digest)
                {
                    rewritten += 1;
                }
            }
        }
    }
    // The table exercises every branch: plain answers, refusals of OCI types,
    // the list answered with its amd64 image, and the schema 1 cells.
    assert!(
        refused > 0 && rewritten > 0 && schema1 > 0,
        "{refused} {rewritten} {schema1}"
    );
    assert_eq!(compared + schema1, 2 * references.len() * accepts.len());
}

#[test]
fn the_amd64_image_of_a_list_is_fetched_once_by_digest_and_then_cached() {
    use crate::support::http::request;
    use crate::support::hub::{FakeHub, Route};
    let hub = FakeHub::start();
    let repo = "library/oldclient";
    let amd64 = hub.add_image(repo, "amd64-only", &[10], 81);
    let arm64 = hub.add_image(repo, "arm64-only", &[10], 82);
    let entry = |digest: &str, arch: &str| {
        serde_json::json!({"mediaType": OM, "digest": digest, "size": 1,
                           "platform": {"os": "linux", "architecture": arch}})
    };
    let list = serde_json::json!({"schemaVersion": 2, "mediaType": DL,
        "manifests": [entry(&arm64, "arm64"), entry(&amd64, "amd64")]});
    hub.add_manifest(repo, Some("multi"), DL, list.to_string().into_bytes());
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    hub.reset_counts();

    let path = format!("/v2/{repo}/manifests/multi");
    for round in 0..3 {
        let old = request(&serve.addr, "GET", &path, &[("Accept", DM)]);
        assert_eq!(old.status, 200, "{}", old.body_text());
        assert_eq!(old.header("docker-content-digest"), Some(amd64.as_str()));
        // As distribution: the image as it is, whatever the client listed.
        assert_eq!(old.header("content-type"), Some(OM));
        assert_eq!(
            format!("sha256:{}", crate::support::dpx::sha256_hex(&old.body)),
            amd64
        );
        assert_eq!(
            hub.count(Route::ManifestGet),
            2,
            "round {round}: the list and its amd64 image, each once"
        );
    }
    let by_digest = request(
        &serve.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{amd64}"),
        &[],
    );
    assert_eq!(by_digest.header("x-dpx-cache"), Some("hit"));
    let list_client = request(&serve.addr, "GET", &path, &[("Accept", DL)]);
    assert_eq!(list_client.header("content-type"), Some(DL));
    assert_eq!(hub.count(Route::ManifestGet), 2);
}

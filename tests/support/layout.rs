//! OCI image layouts written by the test (real tar.gz layers), pushed to a
//! registry with the real `skopeo`.

use std::path::Path;
use std::process::Command;

use std::io::Write;

use super::assert_success;
use super::dpx::sha256_hex;
use super::hub::noise;

#[derive(Clone)]
pub struct Layer {
    pub data: Vec<u8>,
    pub diff_id: String,
}

/// A layer holding one file of incompressible bytes, deterministic per seed.
pub fn random_layer(seed: u64, size: usize) -> Layer {
    file_layer(&format!("data-{seed}"), &noise(seed, size))
}

/// A real gzip'd tar layer with one file (fixed mtime: same input, same digest).
pub fn file_layer(name: &str, content: &[u8]) -> Layer {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, content)
        .expect("tar entry");
    let raw = tar.into_inner().expect("tar");
    let diff_id = format!("sha256:{}", sha256_hex(&raw));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    Layer {
        data: gz.finish().expect("gzip"),
        diff_id,
    }
}

fn put_blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let hex = sha256_hex(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&hex), data).expect("write blob");
    (format!("sha256:{hex}"), data.len())
}

/// Writes config + manifest for `layers`; returns the manifest descriptor JSON.
fn image(layout: &Path, layers: &[Layer], arch: &str) -> serde_json::Value {
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()}
    });
    let (cd, cs) = put_blob(layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers.iter().map(|l| {
            let (d, s) = put_blob(layout, &l.data);
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
        }).collect::<Vec<_>>()
    });
    let (md, ms) = put_blob(layout, manifest.to_string().as_bytes());
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "platform": {"os": "linux", "architecture": arch}
    })
}

fn write_index_json(layout: &Path, tag: &str, mut desc: serde_json::Value) {
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]});
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
}

/// A single-platform image; returns its manifest digest.
pub fn write_image(layout: &Path, tag: &str, layers: &[Layer], arch: &str) -> String {
    let desc = image(layout, layers, arch);
    let digest = desc["digest"].as_str().unwrap_or_default().to_string();
    write_index_json(layout, tag, desc);
    digest
}

/// A multi-arch OCI index; returns the index digest.
pub fn write_index(layout: &Path, tag: &str, images: &[(&str, Vec<Layer>)]) -> String {
    let manifests: Vec<_> = images
        .iter()
        .map(|(arch, layers)| image(layout, layers, arch))
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests
    });
    let (d, s) = put_blob(layout, index.to_string().as_bytes());
    write_index_json(
        layout,
        tag,
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s}),
    );
    d
}

/// `skopeo copy oci:LAYOUT:TAG docker://DEST`, digests preserved.
pub fn skopeo_push(layout: &Path, tag: &str, dest: &str, all: bool) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false", "--preserve-digests"]);
    if all {
        cmd.arg("--all");
    }
    let out = cmd
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("run skopeo");
    assert_success(&out, &format!("skopeo copy to {dest}"));
}

/// The digest of what the registry serves for `image` (host/repo:tag).
pub fn skopeo_inspect_digest(image: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{image}"))
        .output()
        .expect("run skopeo");
    assert_success(&out, &format!("skopeo inspect {image}"));
    format!("sha256:{}", sha256_hex(&out.stdout))
}

//! Writing cached images as an OCI image layout archive, with no network: an
//! image not fully cached is an error naming what is missing.
//!
//! A multi-arch index is written with its original bytes only when every
//! child is cached (rewriting it would change its digest); otherwise the
//! cached platforms are written as images of their own, and the summary says so.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;

use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::{Value, json};

use super::{CONTAINERD_NAME, Hashing, OCI_LAYOUT, REF_NAME};
use crate::cache::Cache;
use crate::oci::{self, Manifest, describe_platform};
use crate::reference::{Digest, Reference};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "{reference} is not fully cached ({missing}); dpx export does not use the network: run `dpx pull {reference}` first"
    )]
    NotCached { reference: String, missing: String },
    #[error(
        "blob {digest} in the cache does not match its digest; run `dpx cache verify`, then `dpx pull` the image again"
    )]
    Corrupt { digest: Digest },
    #[error("{0}")]
    Cache(#[from] crate::cache::CacheError),
    #[error("cannot write the archive: {0}")]
    Write(#[source] std::io::Error),
}

#[derive(Debug, Serialize)]
pub struct ExportedImage {
    pub reference: String,
    /// The name written in index.json, if any.
    pub name: Option<String>,
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExportSummary {
    pub images: Vec<ExportedImage>,
    pub blobs: usize,
    pub bytes: u64,
    /// What the user should know (platforms left out, names not written).
    pub notes: Vec<String>,
}

/// What goes in the archive.
#[derive(Default)]
struct Plan {
    /// index.json entries.
    entries: Vec<Value>,
    /// Every blob (manifests included) once, in the order first needed.
    blobs: Vec<(Digest, u64)>,
    seen: HashSet<Digest>,
    summary: ExportSummary,
}

impl Plan {
    fn add_blob(&mut self, digest: Digest, size: u64) {
        if self.seen.insert(digest.clone()) {
            self.summary.bytes = self.summary.bytes.saturating_add(size);
            self.blobs.push((digest, size));
        }
    }

    /// An image manifest, then its config and layers.
    fn add_image_blobs(&mut self, digest: Digest, image: Image) {
        self.add_blob(digest, image.bytes.len() as u64);
        for (d, size) in image.blobs {
            self.add_blob(d, size);
        }
    }
}

/// A cached image manifest: its bytes and the blobs it needs, or what is missing.
struct Image {
    bytes: Vec<u8>,
    blobs: Vec<(Digest, u64)>,
}

/// Writes `refs` from `cache` to `out` as an OCI image layout tar.
pub fn export(
    cache: &Cache,
    refs: &[Reference],
    out: impl Write,
    cancel: &AtomicBool,
) -> Result<ExportSummary, ExportError> {
    let mut plan = Plan::default();
    for r in refs {
        add_reference(cache, r, &mut plan)?;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_INDEX,
        "manifests": plan.entries,
    });
    let index = serde_json::to_vec(&index).map_err(|e| ExportError::Write(e.into()))?;

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let write = ExportError::Write;
    append_bytes(&mut tar, "oci-layout", OCI_LAYOUT).map_err(write)?;
    append_bytes(&mut tar, "index.json", &index).map_err(write)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())
            .map_err(write)?;
    }
    for (digest, _) in &plan.blobs {
        let Some((file, len)) = cache.open_blob(digest)? else {
            return Err(ExportError::NotCached {
                reference: "an image".into(),
                missing: format!("blob {digest} was removed while exporting"),
            });
        };
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(len);
        let mut reader = Hashing::new(file.take(len), cancel);
        tar.append_data(
            &mut header,
            format!("blobs/sha256/{}", digest.hex()),
            &mut reader,
        )
        .map_err(write)?;
        if reader.count != len || reader.hex() != digest.hex() {
            return Err(ExportError::Corrupt {
                digest: digest.clone(),
            });
        }
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(write)?;
    plan.summary.blobs = plan.blobs.len();
    Ok(plan.summary)
}

/// The reference being added: as the user wrote it (errors, summary) and
/// the name it gets in index.json.
struct Wanted {
    reference: String,
    name: String,
}

impl Wanted {
    fn not_cached(&self, missing: String) -> ExportError {
        ExportError::NotCached {
            reference: self.reference.clone(),
            missing,
        }
    }
}

/// One platform of an index whose image is fully cached.
struct CachedPlatform {
    desc: Descriptor,
    platform: String,
    digest: Digest,
    media_type: String,
    image: Image,
}

fn add_reference(cache: &Cache, r: &Reference, plan: &mut Plan) -> Result<(), ExportError> {
    let wanted = Wanted {
        reference: r.to_string(),
        name: ref_name(r),
    };
    let digest = manifest_digest(cache, r, &wanted)?;
    let Some((bytes, media_type)) = cache.get_manifest(&digest)? else {
        return Err(wanted.not_cached(format!("manifest {digest} is missing")));
    };
    let malformed = |e: oci::ManifestError| wanted.not_cached(format!("manifest {digest}: {e}"));
    match Manifest::parse(&media_type, &bytes).map_err(malformed)? {
        Manifest::Image(_) => {
            let image = cached_image(cache, &digest, &media_type, bytes)?
                .map_err(|m| wanted.not_cached(format!("{m} missing")))?;
            add_image(plan, wanted, digest, media_type, image);
        }
        Manifest::Index(index) => {
            let (cached, missing) = cached_platforms(cache, &index)?;
            if cached.is_empty() {
                return Err(wanted.not_cached(format!(
                    "none of its platforms ({}) is cached",
                    missing.join(", ")
                )));
            }
            if missing.is_empty() {
                let size = bytes.len() as u64;
                add_whole_index(plan, wanted, digest, media_type, size, cached);
            } else {
                add_cached_platforms(plan, wanted, cached, missing.len());
            }
        }
    }
    Ok(())
}

/// The manifest digest `r` names: its own, or its tag's cached record.
fn manifest_digest(cache: &Cache, r: &Reference, wanted: &Wanted) -> Result<Digest, ExportError> {
    match (&r.digest, &r.tag) {
        (Some(d), _) => Ok(d.clone()),
        (None, tag) => {
            let tag = tag.as_deref().unwrap_or("latest");
            match cache.read_tag(&r.registry, &r.repository, tag)? {
                Some(rec) => Ok(rec.digest),
                None => Err(wanted.not_cached(format!("no record of the tag {tag}"))),
            }
        }
    }
}

/// A single-platform image, named.
fn add_image(plan: &mut Plan, wanted: Wanted, digest: Digest, media_type: String, image: Image) {
    let size = image.bytes.len() as u64;
    plan.add_image_blobs(digest.clone(), image);
    name(plan, wanted, &digest, media_type, size, Vec::new());
}

/// The layout's `index.json` entry that names `digest`, and the summary's line for it.
fn name(
    plan: &mut Plan,
    wanted: Wanted,
    digest: &Digest,
    media_type: String,
    size: u64,
    platforms: Vec<String>,
) {
    plan.entries
        .push(entry(&media_type, digest, size, None, &wanted.name));
    plan.summary.images.push(ExportedImage {
        reference: wanted.reference,
        name: Some(wanted.name),
        digest: digest.to_string(),
        media_type,
        platforms,
    });
}

/// An index's platforms split into the fully cached ones and the
/// descriptions of the others.
fn cached_platforms(
    cache: &Cache,
    index: &oci_spec::image::ImageIndex,
) -> Result<(Vec<CachedPlatform>, Vec<String>), ExportError> {
    let mut cached = Vec::new();
    let mut missing = Vec::new();
    for child in index.manifests() {
        let platform = describe_platform(child);
        let found = match child.digest().to_string().parse::<Digest>() {
            Ok(d) => match cache.get_manifest(&d)? {
                Some((b, mt)) => cached_image(cache, &d, &mt, b)?
                    .ok()
                    .map(|img| (d, mt, img)),
                None => None,
            },
            Err(_) => None,
        };
        match found {
            Some((digest, media_type, image)) => cached.push(CachedPlatform {
                desc: child.clone(),
                platform,
                digest,
                media_type,
                image,
            }),
            None => missing.push(platform),
        }
    }
    Ok((cached, missing))
}

/// An index with every platform cached: its original bytes, named.
fn add_whole_index(
    plan: &mut Plan,
    wanted: Wanted,
    digest: Digest,
    media_type: String,
    size: u64,
    cached: Vec<CachedPlatform>,
) {
    let platforms: Vec<String> = cached.iter().map(|c| c.platform.clone()).collect();
    plan.add_blob(digest.clone(), size);
    for c in cached {
        plan.add_image_blobs(c.digest, c.image);
    }
    name(plan, wanted, &digest, media_type, size, platforms);
}

/// Not every platform is cached: the index itself can't go (its digest
/// covers the missing ones), so the cached platforms go alone, named only
/// when there is one (a name must be unique).
fn add_cached_platforms(
    plan: &mut Plan,
    wanted: Wanted,
    cached: Vec<CachedPlatform>,
    missing: usize,
) {
    let Wanted { reference, name } = wanted;
    let platforms: Vec<String> = cached.iter().map(|c| c.platform.clone()).collect();
    let named = cached.len() == 1;
    plan.summary.notes.push(format!(
        "{reference}: only {} of {} platforms are cached ({}); exported {} as {} (run `dpx pull --all-platforms {reference}` to export the whole index)",
        cached.len(),
        cached.len() + missing,
        platforms.join(", "),
        if named { "that platform's image" } else { "separate images without a name" },
        if named { name.clone() } else { "digests".into() },
    ));
    for c in cached {
        let size = c.image.bytes.len() as u64;
        plan.entries.push(entry(
            &c.media_type,
            &c.digest,
            size,
            Some(&c.desc),
            if named { &name } else { "" },
        ));
        plan.summary.images.push(ExportedImage {
            reference: reference.clone(),
            name: named.then(|| name.clone()),
            digest: c.digest.to_string(),
            media_type: c.media_type,
            platforms: vec![c.platform],
        });
        plan.add_image_blobs(c.digest, c.image);
    }
}

/// An image manifest with its config and layers, when all are cached;
/// `Err(description of what is missing)` otherwise.
fn cached_image(
    cache: &Cache,
    digest: &Digest,
    media_type: &str,
    bytes: Vec<u8>,
) -> Result<Result<Image, String>, ExportError> {
    let Ok(Manifest::Image(m)) = Manifest::parse(media_type, &bytes) else {
        return Ok(Err(format!("manifest {digest} is not an image manifest")));
    };
    let mut blobs = Vec::new();
    let mut missing = Vec::new();
    for d in std::iter::once(m.config()).chain(m.layers()) {
        match d.digest().to_string().parse::<Digest>() {
            Ok(b) if cache.has_blob(&b) => blobs.push((b, d.size())),
            Ok(b) => missing.push(b.to_string()),
            Err(_) => missing.push(d.digest().to_string()),
        }
    }
    if !missing.is_empty() {
        return Ok(Err(format!(
            "{} of its {} blobs are missing ({})",
            missing.len(),
            missing.len() + blobs.len(),
            missing.join(", ")
        )));
    }
    Ok(Ok(Image { bytes, blobs }))
}

/// The name written in index.json: the full reference, tag or digest.
fn ref_name(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (Some(t), _) => format!("{}/{}:{t}", r.registry, r.repository),
        (None, Some(d)) => format!("{}/{}@{d}", r.registry, r.repository),
        (None, None) => format!("{}/{}:latest", r.registry, r.repository),
    }
}

/// An index.json entry; `from` keeps a child's platform.
fn entry(
    media_type: &str,
    digest: &Digest,
    size: u64,
    from: Option<&Descriptor>,
    name: &str,
) -> Value {
    let mut e = json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if let Some(platform) = from.and_then(|d| d.platform().as_ref())
        && let Ok(p) = serde_json::to_value(platform)
    {
        e["platform"] = p;
    }
    if !name.is_empty() {
        let annotations: BTreeMap<&str, &str> = [(REF_NAME, name), (CONTAINERD_NAME, name)].into();
        e["annotations"] = json!(annotations);
    }
    e
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    tar.append_data(&mut header, path, data)
}

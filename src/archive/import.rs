//! Reading an OCI image layout archive into the cache: stage, then commit.
//!
//! Every blob is streamed into a cache temp file (a `BlobWriter`) and hashed
//! on the way; then index.json is walked and every descriptor checked (blob
//! present, size and digest right, manifests parseable). Only when the whole
//! archive checks out is anything moved into the store: blobs first, then
//! manifests, then tag records, so no record ever points at something absent.
//! An error or Ctrl-C drops the staged writers, which removes their temp files.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::image::{Descriptor, ImageIndex};
use serde::Serialize;

use super::{CONTAINERD_NAME, REF_NAME};
use crate::cache::{BlobWriter, Cache, CacheError, TagRecord};
use crate::oci::{self, Manifest, describe_platform};
use crate::printable::printable_max;
use crate::reference::{Digest, Reference};

/// Manifests and index.json are read into memory up to this size (as registries cap them).
const MAX_JSON: u64 = 4 << 20;
/// All JSON blobs kept in memory while staging, at most.
const MAX_JSON_TOTAL: u64 = 256 << 20;
const MANIFEST_TYPES: [&str; 4] = [
    oci::OCI_MANIFEST,
    oci::DOCKER_MANIFEST,
    oci::OCI_INDEX,
    oci::DOCKER_MANIFEST_LIST,
];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Open { path: String, source: io::Error },
    /// Holds names from the archive: shown escaped and capped.
    #[error("{}; nothing was imported", printable_max(.0, 2048))]
    Invalid(String),
    #[error("{0}; nothing was imported")]
    Cache(#[from] CacheError),
    #[error("interrupted; nothing was imported")]
    Interrupted,
}

fn invalid(msg: impl Into<String>) -> ImportError {
    ImportError::Invalid(msg.into())
}

#[derive(Debug, Serialize)]
pub struct ImportedImage {
    /// The full reference a tag record was written for, if the archive named one.
    pub name: Option<String>,
    pub digest: String,
    pub media_type: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub images: Vec<ImportedImage>,
    /// Blobs (manifests included) newly added to the cache.
    pub blobs_added: usize,
    /// Blobs the cache had already.
    pub blobs_present: usize,
    pub bytes_added: u64,
    pub notes: Vec<String>,
}

/// A blob read from the archive into a temp file in the cache.
struct Staged {
    writer: BlobWriter,
    size: u64,
    /// The bytes too, for what may be a manifest (small, starting with `{`).
    json: Option<Vec<u8>>,
}

pub fn import(
    cache: &Cache,
    archive: &Path,
    cancel: &AtomicBool,
) -> Result<ImportSummary, ImportError> {
    let file = std::fs::File::open(archive).map_err(|source| ImportError::Open {
        path: archive.display().to_string(),
        source,
    })?;
    // Staged blobs each hold a temp file open until the commit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (staged, index) = stage(cache, io::BufReader::new(file), cancel)?;
    let plan = check(&staged, &index)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(ImportError::Interrupted);
    }
    commit(cache, staged, plan)
}

/// Reads every entry: blobs into temp files, index.json into memory.
fn stage(
    cache: &Cache,
    reader: impl Read,
    cancel: &AtomicBool,
) -> Result<(HashMap<Digest, Staged>, Vec<u8>), ImportError> {
    let mut tar = tar::Archive::new(reader);
    let mut staged: HashMap<Digest, Staged> = HashMap::new();
    let mut index = None;
    let mut layout = false;
    let mut json_total: u64 = 0;
    let not_tar = |e: io::Error| invalid(format!("not a readable tar archive: {e}"));
    for entry in tar.entries().map_err(not_tar)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImportError::Interrupted);
        }
        let mut entry = entry.map_err(not_tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = safe_entry_path(&raw)?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(invalid(format!(
                    "the archive has a link {raw:?}: dpx import reads OCI image layout archives (from dpx export or skopeo copy oci-archive:), which have none"
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "the archive entry {raw:?} is not a regular file or directory"
                )));
            }
        }
        let size = entry.size();
        match path.as_str() {
            "index.json" => index = Some(read_small(&mut entry, "index.json")?),
            "oci-layout" => {
                let text = read_small(&mut entry, "oci-layout")?;
                let v: serde_json::Value = serde_json::from_slice(&text)
                    .map_err(|e| invalid(format!("oci-layout is not JSON: {e}")))?;
                if v["imageLayoutVersion"] != "1.0.0" {
                    return Err(invalid(format!(
                        "unsupported OCI image layout version {}",
                        v["imageLayoutVersion"]
                    )));
                }
                layout = true;
            }
            p => {
                let Some(hex) = p.strip_prefix("blobs/sha256/") else {
                    // Other files (docker save's manifest.json, ...) are not needed.
                    continue;
                };
                let digest = Digest::from_hex(hex)
                    .map_err(|_| invalid(format!("{raw:?} is not named by a sha256 digest")))?;
                if staged.contains_key(&digest) {
                    return Err(invalid(format!(
                        "blob {digest} appears twice in the archive"
                    )));
                }
                let blob = stage_blob(
                    cache,
                    &mut entry,
                    digest.clone(),
                    size,
                    cancel,
                    &mut json_total,
                )?;
                staged.insert(digest, blob);
            }
        }
    }
    if !layout {
        return Err(invalid(
            "not an OCI image layout archive: it has no oci-layout file",
        ));
    }
    let index =
        index.ok_or_else(|| invalid("not an OCI image layout archive: it has no index.json"))?;
    Ok((staged, index))
}

fn stage_blob(
    cache: &Cache,
    entry: &mut impl Read,
    digest: Digest,
    size: u64,
    cancel: &AtomicBool,
    json_total: &mut u64,
) -> Result<Staged, ImportError> {
    let mut writer = BlobWriter::create(cache, digest.clone(), Some(size))?;
    // The writer hashes what it stores: the bytes are read and hashed once.
    let mut json: Option<Vec<u8>> = None;
    let mut buf = vec![0; 1 << 20];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImportError::Interrupted);
        }
        let n = entry
            .read(&mut buf)
            .map_err(|e| invalid(format!("cannot read blob {digest} from the archive: {e}")))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if writer.written() == 0 && size <= MAX_JSON && chunk.first() == Some(&b'{') {
            count_json(json_total, size)?;
            json = Some(Vec::with_capacity(size as usize));
        }
        if let Some(j) = json.as_mut() {
            j.extend_from_slice(chunk);
        }
        writer.write(chunk)?;
    }
    let actual = writer.content_hex();
    if actual != digest.hex() {
        return Err(invalid(format!(
            "blob {digest} in the archive is corrupt: its content hashes to sha256:{actual}"
        )));
    }
    Ok(Staged { writer, size, json })
}

/// Counts a JSON blob's bytes against what staging keeps in memory.
fn count_json(total: &mut u64, size: u64) -> Result<(), ImportError> {
    *total = total.saturating_add(size);
    if *total > MAX_JSON_TOTAL {
        return Err(invalid(format!(
            "the archive has more than {MAX_JSON_TOTAL} bytes of JSON blobs"
        )));
    }
    Ok(())
}

/// What to commit once everything checks out.
#[derive(Default)]
struct Plan {
    blobs: HashSet<Digest>,
    /// digest -> media type, children before their index.
    manifests: Vec<(Digest, String)>,
    /// (name, the tag's manifest).
    tags: Vec<(Reference, String, Digest)>,
    /// Each named image's repository and every digest it reaches (manifests and blobs).
    members: Vec<(Reference, Vec<Digest>)>,
    images: Vec<ImportedImage>,
    notes: Vec<String>,
}

/// Walks index.json: every descriptor must be in the archive with the right size.
fn check(staged: &HashMap<Digest, Staged>, index: &[u8]) -> Result<Plan, ImportError> {
    let index = ImageIndex::from_reader(index)
        .map_err(|e| invalid(format!("index.json is not an OCI image index: {e}")))?;
    let mut plan = Plan::default();
    if index.manifests().is_empty() {
        return Err(invalid("index.json lists no images"));
    }
    for desc in index.manifests() {
        let mut reach = Vec::new();
        let digest = check_manifest(staged, desc, &mut plan, &mut reach, 0)?;
        let media_type = desc.media_type().to_string();
        let name = image_name(desc, &digest)?;
        if let Some((r, _)) = &name {
            plan.members.push((r.clone(), reach));
        }
        match &name {
            Some((r, shown)) if r.tag.is_some() => {
                plan.tags.push((r.clone(), shown.clone(), digest.clone()))
            }
            Some(_) => {}
            None => plan.notes.push(format!(
                "{digest} has no full image name (registry/repository:tag) in the archive: imported by digest only"
            )),
        }
        plan.images.push(ImportedImage {
            name: name.map(|(_, shown)| shown),
            digest: digest.to_string(),
            media_type,
        });
    }
    Ok(plan)
}

fn staged_blob<'a>(
    staged: &'a HashMap<Digest, Staged>,
    desc: &Descriptor,
) -> Result<(Digest, &'a Staged), ImportError> {
    let digest: Digest = desc
        .digest()
        .to_string()
        .parse()
        .map_err(|e| invalid(format!("descriptor {}: {e}", desc.digest())))?;
    let blob = staged.get(&digest).ok_or_else(|| {
        invalid(format!(
            "the archive names blob {digest} but does not contain it"
        ))
    })?;
    if blob.size != desc.size() {
        return Err(invalid(format!(
            "blob {digest} is {} bytes in the archive, its descriptor says {}",
            blob.size,
            desc.size()
        )));
    }
    Ok((digest, blob))
}

fn check_manifest(
    staged: &HashMap<Digest, Staged>,
    desc: &Descriptor,
    plan: &mut Plan,
    reach: &mut Vec<Digest>,
    depth: u8,
) -> Result<Digest, ImportError> {
    let media_type = desc.media_type().to_string();
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "{} has media type {media_type}, which is not an image manifest or index",
            desc.digest()
        )));
    }
    if depth > 2 {
        return Err(invalid("indexes nested more than two deep"));
    }
    let (digest, blob) = staged_blob(staged, desc)?;
    let bytes = blob
        .json
        .as_deref()
        .ok_or_else(|| invalid(format!("manifest {digest} is not JSON")))?;
    let bad = |e: oci::ManifestError| invalid(format!("manifest {digest}: {e}"));
    match Manifest::parse(&media_type, bytes).map_err(bad)? {
        Manifest::Image(m) => {
            for d in std::iter::once(m.config()).chain(m.layers()) {
                let (b, _) = staged_blob(staged, d)?;
                reach.push(b.clone());
                plan.blobs.insert(b);
            }
        }
        Manifest::Index(i) => {
            for child in i.manifests() {
                let present = child
                    .digest()
                    .to_string()
                    .parse::<Digest>()
                    .is_ok_and(|d| staged.contains_key(&d));
                if present {
                    check_manifest(staged, child, plan, reach, depth.saturating_add(1))?;
                } else {
                    plan.notes.push(format!(
                        "index {digest}: platform {} is not in the archive",
                        describe_platform(child)
                    ));
                }
            }
        }
    }
    reach.push(digest.clone());
    if !plan.manifests.iter().any(|(d, _)| d == &digest) {
        plan.manifests.push((digest.clone(), media_type));
    }
    Ok(digest)
}

/// The image's name from its annotations (containerd's full name first, then
/// the OCI ref name) when it is a full reference with a registry; a name that
/// looks like a reference but is malformed refuses the archive.
fn image_name(
    desc: &Descriptor,
    digest: &Digest,
) -> Result<Option<(Reference, String)>, ImportError> {
    let Some(annotations) = desc.annotations() else {
        return Ok(None);
    };
    for key in [CONTAINERD_NAME, REF_NAME] {
        let Some(name) = annotations.get(key) else {
            continue;
        };
        let first = name.split('/').next().unwrap_or("");
        let has_registry =
            name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if !has_registry {
            // A bare tag ("3.20", as docker save writes): no repository to file it under.
            continue;
        }
        let r: Reference = name
            .parse()
            .map_err(|e| invalid(format!("image name {name:?} in index.json: {e}")))?;
        if let Some(d) = &r.digest
            && d != digest
        {
            return Err(invalid(format!(
                "image name {name:?} names a digest other than its manifest {digest}"
            )));
        }
        return Ok(Some((r, name.clone())));
    }
    Ok(None)
}

fn commit(
    cache: &Cache,
    mut staged: HashMap<Digest, Staged>,
    plan: Plan,
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary {
        notes: plan.notes,
        ..ImportSummary::default()
    };
    for digest in &plan.blobs {
        let Some(blob) = staged.remove(digest) else {
            continue;
        };
        if cache.has_blob(digest) {
            summary.blobs_present += 1;
        } else {
            blob.writer.commit()?;
            summary.blobs_added += 1;
            summary.bytes_added = summary.bytes_added.saturating_add(blob.size);
        }
    }
    for (digest, media_type) in &plan.manifests {
        let Some(blob) = staged.remove(digest) else {
            continue;
        };
        let bytes = blob.json.unwrap_or_default();
        if cache.has_blob(digest) {
            summary.blobs_present += 1;
        } else {
            // The staged file is verified already: moved in, not written again.
            blob.writer.commit()?;
            summary.blobs_added += 1;
            summary.bytes_added = summary.bytes_added.saturating_add(blob.size);
        }
        // Only the media type is left to record (the blob is in place).
        cache.put_manifest(digest, media_type, &bytes)?;
    }
    // Every manifest and blob of an image belongs to its repository, recorded
    // before the tag so `dpx serve` answers them there with no upstream HEAD.
    for (r, digests) in &plan.members {
        cache.link(&r.registry, &r.repository, digests)?;
    }
    for (r, shown, digest) in &plan.tags {
        let tag = r.tag.as_deref().unwrap_or("latest");
        if let Some(old) = cache.read_tag(&r.registry, &r.repository, tag)?
            && old.digest != *digest
        {
            summary.notes.push(format!(
                "{shown} pointed at {} and now points at {digest}",
                old.digest
            ));
        }
        cache.write_tag(
            &r.registry,
            &r.repository,
            tag,
            &TagRecord::new(digest.clone()),
        )?;
    }
    summary.images = plan.images;
    // Blobs nothing in index.json reaches are dropped with their temp files.
    drop(staged);
    Ok(summary)
}

/// Refuses absolute paths and `..`; strips a leading `./`.
fn safe_entry_path(raw: &str) -> Result<String, ImportError> {
    let path = Path::new(raw);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(format!(
                    "the archive entry {raw:?} is an absolute path or climbs out with '..'"
                )));
            }
        }
    }
    Ok(parts.join("/"))
}

fn read_small(entry: &mut impl Read, what: &str) -> Result<Vec<u8>, ImportError> {
    let mut data = Vec::new();
    entry
        .take(MAX_JSON + 1)
        .read_to_end(&mut data)
        .map_err(|e| invalid(format!("cannot read {what} from the archive: {e}")))?;
    if data.len() as u64 > MAX_JSON {
        return Err(invalid(format!("{what} is larger than {MAX_JSON} bytes")));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(annotations: &str) -> (Descriptor, Digest) {
        let d = Digest::of(b"m");
        let json = format!(
            r#"{{"mediaType":"{}","digest":"{d}","size":1,"annotations":{annotations}}}"#,
            oci::OCI_MANIFEST
        );
        (serde_json::from_str(&json).unwrap(), d)
    }

    fn name(annotations: &str) -> Result<Option<String>, ImportError> {
        let (desc, d) = desc(annotations);
        image_name(&desc, &d).map(|n| n.map(|(r, _)| r.to_string()))
    }

    #[test]
    fn image_names_from_annotations() {
        let full = r#"{"org.opencontainers.image.ref.name":"docker.io/library/alpine:3.20"}"#;
        assert_eq!(
            name(full).unwrap().as_deref(),
            Some("docker.io/library/alpine:3.20")
        );
        // docker save: a bare tag in ref.name, the full name in containerd's.
        let saved = r#"{"org.opencontainers.image.ref.name":"3.20","io.containerd.image.name":"ghcr.io/o/app:3.20"}"#;
        assert_eq!(name(saved).unwrap().as_deref(), Some("ghcr.io/o/app:3.20"));
        // A bare tag alone has no repository: imported by digest only.
        assert_eq!(
            name(r#"{"org.opencontainers.image.ref.name":"3.20"}"#).unwrap(),
            None
        );
        assert_eq!(name("{}").unwrap(), None);
        // `localhost` is a registry without a dot or port; `library` is not.
        assert_eq!(
            name(r#"{"org.opencontainers.image.ref.name":"localhost/app:1"}"#)
                .unwrap()
                .as_deref(),
            Some("localhost/app:1")
        );
        assert_eq!(
            name(r#"{"org.opencontainers.image.ref.name":"library/alpine:3.20"}"#).unwrap(),
            None
        );
        for bad in [
            r#"{"org.opencontainers.image.ref.name":"docker.io/../x:1"}"#,
            r#"{"org.opencontainers.image.ref.name":"docker.io/a/b:../../c"}"#,
            r#"{"io.containerd.image.name":"localhost:5000/UPPER/x:1"}"#,
            r#"{"org.opencontainers.image.ref.name":"docker.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
        ] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            safe_entry_path("./blobs/sha256/ab").unwrap(),
            "blobs/sha256/ab"
        );
        for bad in ["../x", "/etc/passwd", "blobs/../../x"] {
            assert!(safe_entry_path(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod archive_proptests {
    use super::*;

    /// One entry of an archive as a hostile or broken tool might write it.
    #[derive(Debug, Clone)]
    pub(super) struct RawEntry {
        pub(super) name: Vec<u8>,
        pub(super) kind: u8,
        pub(super) data: Vec<u8>,
    }

    pub(super) fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            data: data.to_vec(),
        }
    }

    pub(super) fn blob(data: &[u8]) -> RawEntry {
        file(&format!("blobs/sha256/{}", Digest::of(data).hex()), data)
    }

    /// A whole image as `dpx export` writes it: oci-layout, config, layer,
    /// manifest and an index.json naming it `name`.
    pub(super) fn good_archive(name: &str) -> Vec<RawEntry> {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = b"layer bytes".as_slice();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(layer).to_string(), "size": layer.len()}],
        })
        .to_string();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_INDEX,
            "manifests": [{
                "mediaType": oci::OCI_MANIFEST,
                "digest": Digest::of(manifest.as_bytes()).to_string(),
                "size": manifest.len(),
                "annotations": {REF_NAME: name},
            }],
        })
        .to_string();
        vec![
            file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            blob(config),
            blob(layer),
            blob(manifest.as_bytes()),
            file("index.json", index.as_bytes()),
        ]
    }

    /// Writes entries into a tar with their names as given, byte for byte
    /// (tar's builder refuses `..` and absolute names; an attacker's tool does not).
    pub(super) fn tar_of(entries: &[RawEntry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let mut header = tar::Header::new_old();
            let name = &e.name[..e.name.len().min(99)];
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_size(e.data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::new(e.kind));
            header.set_cksum();
            builder
                .append(&header, e.data.as_slice())
                .expect("in memory");
        }
        builder.into_inner().expect("in memory")
    }

    /// Ways to spoil a good archive.
    #[derive(Debug, Clone)]
    enum Change {
        Drop(usize),
        Duplicate(usize),
        Flip(usize, usize),
        Truncate(usize, usize),
        Rename(usize, Vec<u8>),
        Kind(usize, u8),
        Add(RawEntry),
        Index(Vec<u8>),
    }

    fn change() -> impl Strategy<Value = Change> {
        let names = prop_oneof![
            Just(b"../index.json".to_vec()),
            Just(b"/etc/passwd".to_vec()),
            Just(b"blobs/../../x".to_vec()),
            Just(b"./blobs/sha256/../../../x".to_vec()),
            Just(b"blobs/sha256/abc".to_vec()),
            Just(b"blobs/sha512/abc".to_vec()),
            Just(b"index.json".to_vec()),
            Just(b"oci-layout".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ];
        prop_oneof![
            (0usize..8).prop_map(Change::Drop),
            (0usize..8).prop_map(Change::Duplicate),
            (0usize..8, any::<usize>()).prop_map(|(i, at)| Change::Flip(i, at)),
            (0usize..8, 0usize..20).prop_map(|(i, n)| Change::Truncate(i, n)),
            (0usize..8, names.clone()).prop_map(|(i, n)| Change::Rename(i, n)),
            (
                0usize..8,
                prop_oneof![
                    Just(b'1'),
                    Just(b'2'),
                    Just(b'3'),
                    Just(b'5'),
                    Just(b'6'),
                    Just(b'x')
                ]
            )
                .prop_map(|(i, k)| Change::Kind(i, k)),
            (names, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(name, data)| {
                Change::Add(RawEntry {
                    name,
                    kind: b'0',
                    data,
                })
            }),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..100),
                "\\{\"schemaVersion\":2,\"manifests\":\\[[ -~]{0,80}\\]\\}"
                    .prop_map(String::into_bytes),
            ]
            .prop_map(Change::Index),
        ]
    }

    fn apply(entries: &mut Vec<RawEntry>, change: &Change) {
        let n = entries.len();
        match change.clone() {
            Change::Drop(i) => {
                entries.remove(i % n);
            }
            Change::Duplicate(i) => entries.push(entries[i % n].clone()),
            Change::Flip(i, at) => {
                let data = &mut entries[i % n].data;
                if !data.is_empty() {
                    let at = at % data.len();
                    data[at] ^= 0x20;
                }
            }
            Change::Truncate(i, keep) => entries[i % n].data.truncate(keep),
            Change::Rename(i, name) => entries[i % n].name = name,
            Change::Kind(i, kind) => entries[i % n].kind = kind,
            Change::Add(e) => entries.push(e),
            Change::Index(data) => entries.push(file("index.json", &data)),
        }
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// Whatever an archive holds, the import either takes all of it or
        /// refuses it with nothing added to the cache; nothing panics.
        #[test]
        fn an_archive_is_imported_whole_or_not_at_all(
            name in prop_oneof![
                Just("docker.io/library/alpine:3.20".to_string()),
                Just("3.20".to_string()),
                "[a-z0-9.:/@_-]{0,30}",
            ],
            changes in proptest::collection::vec(change(), 0..3),
        ) {
            let mut entries = good_archive(&name);
            for c in &changes {
                apply(&mut entries, c);
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let cache = Cache::open(&dir.path().join("cache")).expect("cache");
            let archive = dir.path().join("image.tar");
            std::fs::write(&archive, tar_of(&entries)).expect("write archive");
            let result = import(&cache, &archive, &AtomicBool::new(false));
            let digests: Vec<Digest> = entries
                .iter()
                .filter_map(|e| std::str::from_utf8(&e.name).ok()?.strip_prefix("blobs/sha256/").map(str::to_string))
                .filter_map(|hex| Digest::from_hex(&hex).ok())
                .collect();
            match result {
                Ok(summary) => {
                    prop_assert!(!summary.images.is_empty());
                    for image in &summary.images {
                        let d: Digest = image.digest.parse().expect("a digest");
                        prop_assert!(cache.has_blob(&d), "{d}");
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                    for d in &digests {
                        prop_assert!(!cache.has_blob(d), "{d} was added by a refused import: {e}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod archive_generator_tests {
    // Keeps the property above honest: its unspoiled archive does import.
    #[test]
    fn the_unspoiled_archive_of_the_property_imports() {
        use super::archive_proptests::*;
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::cache::Cache::open(&dir.path().join("cache")).unwrap();
        let archive = dir.path().join("image.tar");
        std::fs::write(
            &archive,
            tar_of(&good_archive("docker.io/library/alpine:3.20")),
        )
        .unwrap();
        let summary =
            super::import(&cache, &archive, &std::sync::atomic::AtomicBool::new(false)).unwrap();
        assert_eq!(summary.images.len(), 1);
        assert_eq!(summary.blobs_added, 3);
    }
}

/// What an import decides, archive by archive: counts, names, tags, notes,
/// nesting, entry kinds and size limits.
#[cfg(test)]
mod decisions {
    use super::archive_proptests::{RawEntry, blob, file, good_archive, tar_of};
    use super::*;

    const NAME: &str = "docker.io/library/alpine:3.20";

    struct Imports {
        dir: tempfile::TempDir,
        cache: Cache,
        count: usize,
    }

    impl Imports {
        fn new() -> Imports {
            let dir = tempfile::tempdir().unwrap();
            let cache = Cache::open(&dir.path().join("cache")).unwrap();
            Imports {
                dir,
                cache,
                count: 0,
            }
        }

        fn import(&mut self, entries: &[RawEntry]) -> Result<ImportSummary, ImportError> {
            self.count += 1;
            let archive = self.dir.path().join(format!("{}.tar", self.count));
            std::fs::write(&archive, tar_of(entries)).unwrap();
            import(&self.cache, &archive, &AtomicBool::new(false))
        }

        fn tag(&self, repo: &str, tag: &str) -> Option<Digest> {
            let record = self.cache.read_tag("docker.io", repo, tag).unwrap();
            record.map(|r| r.digest)
        }
    }

    /// The image manifest among the entries (the one with a `layers` field): its digest and bytes.
    fn manifest_of(entries: &[RawEntry]) -> (Digest, Vec<u8>) {
        let e = entries
            .iter()
            .find(|e| e.data.windows(9).any(|w| w == b"\"layers\":"))
            .unwrap();
        (Digest::of(&e.data), e.data.clone())
    }

    fn index_json(children: &[(&str, &[u8])], name: Option<&str>) -> String {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|(media_type, bytes)| {
                let mut d = serde_json::json!({
                    "mediaType": media_type,
                    "digest": Digest::of(bytes).to_string(),
                    "size": bytes.len(),
                    "platform": {"os": "linux", "architecture": "amd64"},
                });
                if let Some(name) = name {
                    d["annotations"] = serde_json::json!({ REF_NAME: name });
                }
                d
            })
            .collect();
        serde_json::json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": manifests})
            .to_string()
    }

    /// `good_archive` with index.json replaced.
    fn with_index(mut entries: Vec<RawEntry>, index: &str) -> Vec<RawEntry> {
        entries.retain(|e| e.name != b"index.json");
        entries.push(file("index.json", index.as_bytes()));
        entries
    }

    #[test]
    fn an_import_counts_what_it_adds_and_what_was_there_and_tags_it() {
        let mut im = Imports::new();
        let entries = good_archive(NAME);
        let (manifest, _) = manifest_of(&entries);
        let blob_bytes: u64 = entries
            .iter()
            .filter(|e| e.name.starts_with(b"blobs/"))
            .map(|e| e.data.len() as u64)
            .sum();
        let s = im.import(&entries).unwrap();
        assert_eq!((s.blobs_added, s.blobs_present), (3, 0));
        assert_eq!(s.bytes_added, blob_bytes);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert_eq!(s.images.len(), 1);
        assert_eq!(s.images[0].name.as_deref(), Some(NAME));
        assert_eq!(s.images[0].digest, manifest.to_string());
        assert_eq!(s.images[0].media_type, oci::OCI_MANIFEST);
        assert_eq!(im.tag("library/alpine", "3.20"), Some(manifest.clone()));
        assert!(im.tag("library/alpine", "latest").is_none());
        assert_eq!(
            im.cache.get_manifest(&manifest).unwrap().map(|(_, t)| t),
            Some(oci::OCI_MANIFEST.to_string())
        );

        // Again: everything was there, and the tag still points where it did.
        let s = im.import(&entries).unwrap();
        assert_eq!((s.blobs_added, s.blobs_present, s.bytes_added), (0, 3, 0));
        assert!(s.notes.is_empty(), "{:?}", s.notes);

        // Another image under the same name: the move is noted.
        let mut other = good_archive(NAME);
        let layer = b"another layer".to_vec();
        let i = other.iter().position(|e| e.data == b"layer bytes").unwrap();
        other[i] = blob(&layer);
        let (_, old_manifest) = manifest_of(&other);
        let new_manifest = String::from_utf8(old_manifest.clone())
            .unwrap()
            .replace(
                &Digest::of(b"layer bytes").to_string(),
                &Digest::of(&layer).to_string(),
            )
            .replace("\"size\":11", &format!("\"size\":{}", layer.len()));
        let j = other.iter().position(|e| e.data == old_manifest).unwrap();
        other[j] = blob(new_manifest.as_bytes());
        let other = with_index(
            other,
            &index_json(&[(oci::OCI_MANIFEST, new_manifest.as_bytes())], Some(NAME)),
        );
        let s = im.import(&other).unwrap();
        assert_eq!((s.blobs_added, s.blobs_present), (2, 1));
        let moved = Digest::of(new_manifest.as_bytes());
        assert_eq!(
            s.notes,
            [format!(
                "{NAME} pointed at {manifest} and now points at {moved}"
            )]
        );
        assert_eq!(im.tag("library/alpine", "3.20"), Some(moved));
    }

    #[test]
    fn a_bare_tag_is_noted_and_a_name_by_digest_writes_no_tag() {
        let mut im = Imports::new();
        let s = im.import(&good_archive("3.20")).unwrap();
        assert_eq!(s.images[0].name, None);
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(
            s.notes[0].contains("imported by digest only"),
            "{:?}",
            s.notes
        );

        let mut im = Imports::new();
        let (manifest, _) = manifest_of(&good_archive(NAME));
        let by_digest = format!("docker.io/library/alpine@{manifest}");
        let s = im.import(&good_archive(&by_digest)).unwrap();
        assert_eq!(s.images[0].name.as_deref(), Some(by_digest.as_str()));
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert!(im.tag("library/alpine", "latest").is_none());
        assert!(im.cache.has_blob(&manifest));
    }

    /// index.json -> `depth` indexes -> the image manifest.
    fn nested(depth: usize) -> (Vec<RawEntry>, Vec<Digest>) {
        let mut entries = good_archive(NAME);
        let (_, mut child) = manifest_of(&entries);
        let mut child_type = oci::OCI_MANIFEST;
        let mut indexes = Vec::new();
        for _ in 0..depth {
            let index = index_json(&[(child_type, &child)], None);
            entries.push(blob(index.as_bytes()));
            indexes.push(Digest::of(index.as_bytes()));
            child = index.into_bytes();
            child_type = oci::OCI_INDEX;
        }
        let entries = with_index(entries, &index_json(&[(child_type, &child)], Some(NAME)));
        (entries, indexes)
    }

    #[test]
    fn indexes_nest_two_deep_and_no_deeper() {
        let mut im = Imports::new();
        let (entries, indexes) = nested(2);
        let s = im.import(&entries).unwrap();
        assert_eq!(s.images[0].media_type, oci::OCI_INDEX);
        assert_eq!(s.blobs_added, 5);
        for index in &indexes {
            assert_eq!(
                im.cache.get_manifest(index).unwrap().map(|(_, t)| t),
                Some(oci::OCI_INDEX.to_string()),
                "{index}"
            );
        }
        assert_eq!(im.tag("library/alpine", "3.20"), indexes.last().cloned());

        let (entries, indexes) = nested(3);
        let mut im = Imports::new();
        let err = im.import(&entries).unwrap_err().to_string();
        assert!(err.contains("nested more than two deep"), "{err}");
        assert!(indexes.iter().all(|i| !im.cache.has_blob(i)));
    }

    #[test]
    fn a_manifest_bigger_than_a_read_is_read_whole() {
        // A 3 MiB annotation of '{': wherever a read of the blob ends, the
        // next starts with '{', which must not start the manifest again.
        let mut entries = good_archive(NAME);
        let (_, small) = manifest_of(&entries);
        let mut m: serde_json::Value = serde_json::from_slice(&small).unwrap();
        m["annotations"] = serde_json::json!({"pad": "{".repeat(3 << 20)});
        let big = m.to_string().into_bytes();
        let i = entries.iter().position(|e| e.data == small).unwrap();
        entries[i] = blob(&big);
        let entries = with_index(
            entries,
            &index_json(&[(oci::OCI_MANIFEST, &big)], Some(NAME)),
        );
        let mut im = Imports::new();
        let s = im.import(&entries).unwrap();
        assert_eq!(s.images[0].digest, Digest::of(&big).to_string());
        assert_eq!(
            im.cache
                .get_manifest(&Digest::of(&big))
                .unwrap()
                .map(|(b, _)| b.len()),
            Some(big.len())
        );
    }

    #[test]
    fn small_files_are_read_up_to_the_limit() {
        let limit = usize::try_from(MAX_JSON).unwrap();
        let at = vec![b' '; limit];
        assert_eq!(read_small(&mut at.as_slice(), "x").unwrap().len(), limit);
        let over = vec![b' '; limit + 1];
        let err = read_small(&mut over.as_slice(), "index.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.json is larger than 4194304 bytes"),
            "{err}"
        );
    }

    #[test]
    fn json_blobs_are_kept_up_to_256_mib_in_all() {
        let mut total = 0;
        count_json(&mut total, MAX_JSON_TOTAL - 1).unwrap();
        count_json(&mut total, 1).unwrap();
        assert_eq!(total, MAX_JSON_TOTAL);
        let err = count_json(&mut total, 1).unwrap_err().to_string();
        assert!(
            err.contains("more than 268435456 bytes of JSON blobs"),
            "{err}"
        );
    }

    #[test]
    fn entry_kinds_and_the_layout_file() {
        let refused =
            |entries: &[RawEntry]| Imports::new().import(entries).unwrap_err().to_string();
        // A directory entry is skipped.
        let mut entries = good_archive(NAME);
        entries.insert(
            1,
            RawEntry {
                name: b"blobs/".to_vec(),
                kind: b'5',
                data: Vec::new(),
            },
        );
        assert!(Imports::new().import(&entries).is_ok());
        for (kind, says) in [
            (b'1', "has a link"),
            (b'2', "has a link"),
            (b'6', "is not a regular file or directory"),
        ] {
            let mut entries = good_archive(NAME);
            entries.push(RawEntry {
                name: b"extra".to_vec(),
                kind,
                data: Vec::new(),
            });
            let err = refused(&entries);
            assert!(err.contains(says), "{kind}: {err}");
        }
        let mut entries = good_archive(NAME);
        entries.retain(|e| e.name != b"oci-layout");
        assert!(refused(&entries).contains("it has no oci-layout file"));
        entries.push(file("oci-layout", br#"{"imageLayoutVersion":"2.0.0"}"#));
        assert!(refused(&entries).contains("unsupported OCI image layout version \"2.0.0\""));
        let mut entries = good_archive(NAME);
        entries.retain(|e| e.name != b"index.json");
        assert!(refused(&entries).contains("it has no index.json"));
    }
}

//! One walk of the cache: what it holds, how big, when last used, and which
//! content each tag reaches. Purge, `cache ls` and `cache du` all start here.
//!
//! Last use is a file's mtime (dpx touches blobs, manifests and tag records
//! when it uses them). The walk never follows a symlink: one planted in the
//! cache is listed in `skipped` and left alone.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::image::Descriptor;

use super::{Cache, CacheError, TagRecord};
use crate::oci::{Manifest, describe_platform};
use crate::reference::Digest;

/// A tag record: `registry/repo:tag` -> manifest digest.
#[derive(Debug, Clone)]
pub struct TagEntry {
    pub registry: String,
    pub repo: String,
    pub tag: String,
    pub digest: Digest,
    pub used: SystemTime,
    pub(super) path: PathBuf,
}

impl TagEntry {
    pub fn name(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repo, self.tag)
    }
}

/// One tag's image as listed: `Inventory::images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    pub platforms: Vec<String>,
    /// Bytes of everything the tag reaches that is stored.
    pub size: u64,
    /// False when content the image needs is gone.
    pub complete: bool,
    pub used: SystemTime,
}

/// A stored blob (manifests are blobs too, with a media-type sidecar).
#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub size: u64,
    pub used: SystemTime,
}

/// A stored manifest and what it references.
#[derive(Debug, Clone, Default)]
pub struct ManifestEntry {
    pub media_type: String,
    /// Per-platform manifests of an index.
    pub children: Vec<Digest>,
    /// `os/arch[/variant]` of each child of an index.
    pub platforms: Vec<String>,
    pub config: Option<Digest>,
    pub layers: Vec<Digest>,
    pub subject: Option<Digest>,
}

impl ManifestEntry {
    fn references(&self) -> impl Iterator<Item = &Digest> {
        self.children
            .iter()
            .chain(self.config.iter())
            .chain(self.layers.iter())
            .chain(self.subject.iter())
    }
}

/// A file in `tmp/`: a download in progress or a dead one's leftovers.
#[derive(Debug, Clone)]
pub struct TempEntry {
    pub name: String,
    pub size: u64,
    pub used: SystemTime,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub tags: Vec<TagEntry>,
    pub blobs: HashMap<Digest, BlobEntry>,
    /// Manifests whose blob is stored (a sidecar without its blob is in `orphan_sidecars`).
    pub manifests: HashMap<Digest, ManifestEntry>,
    pub orphan_sidecars: Vec<Digest>,
    pub temps: Vec<TempEntry>,
    /// Membership records (`index/<registry>/<repo>/_links/<hex>`) per digest:
    /// they go with the content.
    pub links: HashMap<Digest, Vec<PathBuf>>,
    /// Symlinks and files that are not ours; never touched.
    pub skipped: Vec<PathBuf>,
}

impl Inventory {
    /// Every stored digest `root` reaches (itself, an index's children, their
    /// configs, layers and subjects), each once.
    pub fn reach(&self, root: &Digest) -> Vec<Digest> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut todo = vec![root.clone()];
        while let Some(d) = todo.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            if let Some(m) = self.manifests.get(&d) {
                todo.extend(m.references().cloned());
            }
            if self.blobs.contains_key(&d) {
                out.push(d);
            }
        }
        out
    }

    /// How many pieces a tag's image lacks: its manifest, the config or a
    /// layer of a stored platform manifest, or every platform of an index
    /// (an index with some platforms stored is whole for those).
    pub fn missing(&self, root: &Digest) -> usize {
        let Some(m) = self.manifests.get(root) else {
            return 1;
        };
        if !m.children.is_empty() {
            let stored: Vec<&Digest> = m
                .children
                .iter()
                .filter(|c| self.manifests.contains_key(*c))
                .collect();
            if stored.is_empty() {
                return 1;
            }
            return stored.into_iter().map(|c| self.missing(c)).sum();
        }
        m.config
            .iter()
            .chain(m.layers.iter())
            .filter(|d| !self.blobs.contains_key(*d))
            .count()
    }

    /// Bytes of the given stored digests.
    pub fn size_of<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> u64 {
        digests
            .into_iter()
            .filter_map(|d| self.blobs.get(d))
            .fold(0u64, |sum, b| sum.saturating_add(b.size))
    }

    /// Bytes of all stored content.
    pub fn total_size(&self) -> u64 {
        self.blobs
            .values()
            .fold(0u64, |sum, b| sum.saturating_add(b.size))
    }

    /// Each tag's image: what it reaches, its platforms, whether it is whole.
    /// `cache ls` and the status page list these.
    pub fn images(&self, cache: &Cache) -> Vec<ImageSummary> {
        self.tags
            .iter()
            .map(|t| ImageSummary {
                registry: t.registry.clone(),
                repository: t.repo.clone(),
                tag: t.tag.clone(),
                digest: t.digest.clone(),
                platforms: self.platforms(cache, &t.digest),
                size: self.size_of(&self.reach(&t.digest)),
                complete: self.missing(&t.digest) == 0,
                used: t.used,
            })
            .collect()
    }

    /// The platforms a manifest covers: its index children's, or its config's.
    pub fn platforms(&self, cache: &Cache, digest: &Digest) -> Vec<String> {
        let Some(m) = self.manifests.get(digest) else {
            return Vec::new();
        };
        if !m.platforms.is_empty() {
            return m.platforms.clone();
        }
        m.config
            .as_ref()
            .and_then(|c| config_platform(cache, c))
            .into_iter()
            .collect()
    }
}

/// `os/arch[/variant]` from an image config blob.
fn config_platform(cache: &Cache, config: &Digest) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let (file, len) = cache.open_blob(config).ok().flatten()?;
    // Configs are small; a huge one is not worth reading for a label.
    if len > 4 * 1024 * 1024 {
        return None;
    }
    let c: Config = serde_json::from_reader(io::BufReader::new(file)).ok()?;
    let mut s = format!("{}/{}", c.os?, c.architecture?);
    if let Some(v) = c.variant {
        s.push('/');
        s.push_str(&v);
    }
    Some(s)
}

/// A directory that is a real directory, not a symlink to one.
pub(super) fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}

/// The files of a directory with their (not followed) metadata; non-regular
/// entries go to `skipped`.
fn regular_files(dir: &Path, skipped: &mut Vec<PathBuf>) -> Vec<(String, fs::Metadata)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // DirEntry::metadata does not follow symlinks.
        match (entry.metadata(), entry.file_name().into_string()) {
            (Ok(m), Ok(name)) if m.file_type().is_file() => out.push((name, m)),
            _ => skipped.push(path),
        }
    }
    out
}

fn mtime(m: &fs::Metadata) -> SystemTime {
    m.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

impl Cache {
    /// Walks the whole cache once; blob directories are read in parallel.
    pub fn inventory(&self) -> Result<Inventory, CacheError> {
        let blobs_dir = self.root.join("blobs/sha256");
        for dir in [self.root.join("blobs"), blobs_dir.clone()] {
            if !is_real_dir(&dir) {
                return Err(CacheError::Read {
                    path: dir,
                    source: io::Error::other(
                        "not a directory (a symlink?); dpx only manages a cache it owns",
                    ),
                });
            }
        }
        let mut inv = Inventory::default();
        let shards: Vec<PathBuf> = fs::read_dir(&blobs_dir)
            .map_err(|source| CacheError::Read {
                path: blobs_dir.clone(),
                source,
            })?
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    Some(p)
                } else {
                    inv.skipped.push(p);
                    None
                }
            })
            .collect();
        let (blobs, skipped) = walk_shards(&shards);
        inv.blobs = blobs;
        inv.skipped.extend(skipped);
        self.read_manifests(&mut inv);
        self.read_tags(&mut inv);
        for (name, m) in regular_files(&self.tmp_dir(), &mut inv.skipped) {
            inv.temps.push(TempEntry {
                name,
                size: m.len(),
                used: mtime(&m),
            });
        }
        Ok(inv)
    }

    fn read_manifests(&self, inv: &mut Inventory) {
        let dir = self.root.join("manifests/sha256");
        let sidecars = regular_files(&dir, &mut inv.skipped);
        let mut todo = Vec::new();
        for (name, _) in sidecars {
            let Some(digest) = name
                .strip_suffix(".json")
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                inv.skipped.push(dir.join(name));
                continue;
            };
            if inv.blobs.contains_key(&digest) {
                todo.push(digest);
            } else {
                inv.orphan_sidecars.push(digest);
            }
        }
        let parsed = parallel_map(&todo, |d| self.manifest_entry(d));
        inv.manifests = todo.into_iter().zip(parsed).collect();
    }

    /// A manifest's references; one we cannot parse references nothing (and
    /// is still listed, so purge can remove it).
    fn manifest_entry(&self, digest: &Digest) -> ManifestEntry {
        let Ok(Some((bytes, media_type))) = self.get_manifest(digest) else {
            return ManifestEntry::default();
        };
        let d = |desc: &Descriptor| desc.digest().to_string().parse::<Digest>().ok();
        let mut entry = ManifestEntry {
            media_type: media_type.clone(),
            ..ManifestEntry::default()
        };
        match Manifest::parse(&media_type, &bytes) {
            Ok(Manifest::Image(m)) => {
                entry.config = d(m.config());
                entry.layers = m.layers().iter().filter_map(d).collect();
                entry.subject = m.subject().as_ref().and_then(d);
            }
            Ok(Manifest::Index(i)) => {
                entry.children = i.manifests().iter().filter_map(d).collect();
                entry.platforms = i
                    .manifests()
                    .iter()
                    .filter(|m| m.platform().is_some())
                    .map(describe_platform)
                    .filter(|p| p != "unknown/unknown")
                    .collect();
                entry.subject = i.subject().as_ref().and_then(d);
            }
            Err(_) => {}
        }
        entry
    }

    /// Tag records under `index/<registry>/<repo...>/tags/<tag>.json`.
    fn read_tags(&self, inv: &mut Inventory) {
        let index = self.root.join("index");
        let mut stack = vec![index.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_symlink() {
                    inv.skipped.push(path);
                } else if ft.is_dir() {
                    stack.push(path);
                } else if let Some(digest) = link_digest(&path) {
                    inv.links.entry(digest).or_default().push(path);
                } else if let Some(tag) = tag_entry(&index, &path) {
                    inv.tags.push(tag);
                }
            }
        }
        inv.tags
            .sort_by(|a, b| (&a.registry, &a.repo, &a.tag).cmp(&(&b.registry, &b.repo, &b.tag)));
    }
}

/// The digest a membership record `.../_links/<hex>` is for.
fn link_digest(path: &Path) -> Option<Digest> {
    let parent = path.parent()?.file_name()?;
    if parent != "_links" {
        return None;
    }
    Digest::from_hex(path.file_name()?.to_str()?).ok()
}

/// Reads a tag record file, with its place in the tree telling whose it is.
fn tag_entry(index: &Path, path: &Path) -> Option<TagEntry> {
    let rel = path.strip_prefix(index).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    // registry, repo (one or more parts), "tags", "<tag>.json"
    let (file, dirs) = parts.split_last()?;
    let (tags, dirs) = dirs.split_last()?;
    let tag = file.strip_suffix(".json")?;
    if *tags != "tags" || dirs.len() < 2 {
        return None;
    }
    let meta = fs::symlink_metadata(path).ok()?;
    let record: TagRecord = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    Some(TagEntry {
        registry: dirs[0].to_string(),
        repo: dirs[1..].join("/"),
        tag: tag.to_string(),
        digest: record.digest,
        used: mtime(&meta),
        path: path.to_path_buf(),
    })
}

impl Cache {
    /// How many blobs the store holds and their bytes: `inventory`'s blob
    /// walk alone (no manifest or tag is read), for `GET /metrics`.
    pub fn blob_totals(&self) -> Result<(u64, u64), CacheError> {
        let blobs_dir = self.root.join("blobs/sha256");
        let shards: Vec<PathBuf> = fs::read_dir(&blobs_dir)
            .map_err(|source| CacheError::Read {
                path: blobs_dir.clone(),
                source,
            })?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        let (blobs, _) = walk_shards(&shards);
        let bytes = blobs
            .values()
            .fold(0u64, |sum, b| sum.saturating_add(b.size));
        Ok((blobs.len() as u64, bytes))
    }
}

/// Reads the shard directories on a few threads: stat is the cost, and a
/// cache of 10,000+ blobs should list in well under a second.
fn walk_shards(shards: &[PathBuf]) -> (HashMap<Digest, BlobEntry>, Vec<PathBuf>) {
    let results = parallel_map(shards, |shard| {
        let mut skipped = Vec::new();
        let mut blobs = Vec::new();
        let prefix = shard.file_name().and_then(|n| n.to_str()).unwrap_or("");
        for (name, m) in regular_files(shard, &mut skipped) {
            match Digest::from_hex(&name) {
                Ok(d) if name.starts_with(prefix) => blobs.push((
                    d,
                    BlobEntry {
                        size: m.len(),
                        used: mtime(&m),
                    },
                )),
                _ => skipped.push(shard.join(name)),
            }
        }
        (blobs, skipped)
    });
    let mut all = HashMap::new();
    let mut skipped = Vec::new();
    for (b, s) in results {
        all.extend(b);
        skipped.extend(s);
    }
    (all, skipped)
}

/// `f` over `items` on up to 8 scoped threads, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

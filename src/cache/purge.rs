//! Deciding what to remove from the cache (a plan, from one inventory) and
//! removing it safely.
//!
//! Safety: only regular files at the paths the cache itself builds are
//! removed, never through a symlink; a file whose mtime changed since the
//! inventory (used, or stored again, meanwhile) is left alone; temp and lock
//! files are the sweep's, which keeps those of live downloads. An evicted blob
//! that a client is streaming stays readable through its open handle (Unix).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::inventory::{Inventory, TagEntry, is_real_dir};
use super::{Cache, CacheError};
use crate::fsutil::{Access, Held, LockFile};
use crate::reference::Digest;

/// How old unreferenced content must be before `--unreferenced` takes it.
pub const UNREFERENCED_GRACE: Duration = Duration::from_secs(10 * 60);

/// Which images `--image` forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSelector {
    /// Every tag of a repository.
    Repository { registry: String, repo: String },
    Tag {
        registry: String,
        repo: String,
        tag: String,
    },
    /// A manifest by digest, and the repository's tags that point at it.
    Digest {
        registry: String,
        repo: String,
        digest: Digest,
    },
}

impl ImageSelector {
    fn matches(&self, t: &TagEntry) -> bool {
        match self {
            ImageSelector::Repository { registry, repo } => {
                &t.registry == registry && &t.repo == repo
            }
            ImageSelector::Tag {
                registry,
                repo,
                tag,
            } => &t.registry == registry && &t.repo == repo && &t.tag == tag,
            ImageSelector::Digest {
                registry,
                repo,
                digest,
            } => &t.registry == registry && &t.repo == repo && &t.digest == digest,
        }
    }
}

/// Policies combine: content goes when any of them selects it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub older_than: Option<Duration>,
    pub max_size: Option<u64>,
    pub images: Vec<ImageSelector>,
    pub unreferenced: bool,
    pub all: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("no cached image matches {0}; `dpx cache ls` lists what the cache holds")]
pub struct NoSuchImage(pub String);

/// One removal the plan makes.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// `tag`, `manifest` or `blob`.
    pub kind: &'static str,
    /// `registry/repo:tag` or a digest.
    pub name: String,
    /// Bytes freed (0 for a tag record).
    pub size: u64,
    #[serde(skip)]
    used: SystemTime,
    #[serde(skip)]
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Tag(std::path::PathBuf),
    Blob {
        digest: Digest,
        manifest: bool,
        links: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub removals: Vec<Removal>,
    pub size_before: u64,
    /// Whether the sweep of dead temp and lock files runs.
    pub sweep: bool,
    /// What `max_size` kept although the cache stays over it: the most
    /// recently used image (or blob), bigger than the budget by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_max_size: Option<String>,
    #[serde(skip)]
    orphan_sidecars: Vec<Digest>,
}

impl Plan {
    pub fn bytes(&self) -> u64 {
        self.removals
            .iter()
            .fold(0u64, |s, r| s.saturating_add(r.size))
    }
}

/// What a purge did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub tags: usize,
    pub manifests: usize,
    pub blobs: usize,
    pub bytes_reclaimed: u64,
    pub size_before: u64,
    pub size_after: u64,
    /// Planned removals left alone: used meanwhile, or no longer a plain file.
    pub kept_in_use: usize,
    pub temp_files_removed: usize,
    pub lock_files_removed: usize,
    /// See `Plan::over_max_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_max_size: Option<String>,
}

impl Summary {
    /// What a plan would do, without doing it.
    pub fn of_plan(plan: &Plan) -> Summary {
        let count = |k| plan.removals.iter().filter(|r| r.kind == k).count();
        let bytes = plan.bytes();
        Summary {
            tags: count("tag"),
            manifests: count("manifest"),
            blobs: count("blob"),
            bytes_reclaimed: bytes,
            size_before: plan.size_before,
            size_after: plan.size_before.saturating_sub(bytes),
            over_max_size: plan.over_max_size.clone(),
            ..Summary::default()
        }
    }
}

/// Decides what the policy removes from what `inv` holds; changes nothing.
pub fn plan(inv: &Inventory, policy: &Policy, now: SystemTime) -> Result<Plan, NoSuchImage> {
    let (dropped, forgotten) = dropped_tags(inv, policy, now)?;
    let kept: Vec<usize> = (0..inv.tags.len())
        .filter(|i| !dropped.contains(i))
        .collect();
    let reaches: HashMap<usize, Vec<Digest>> = kept
        .iter()
        .map(|&i| (i, inv.reach(&inv.tags[i].digest)))
        .collect();
    let mut refs = KeptRefs::count(&reaches);
    let mut chosen = Chosen {
        tags: dropped.into_iter().collect(),
        blobs: unreferenced_content(inv, policy, now, &refs, &forgotten),
    };
    let mut plan = Plan {
        size_before: inv.total_size(),
        sweep: policy.all || policy.unreferenced,
        ..Plan::default()
    };
    if let Some(max) = policy.max_size {
        plan.over_max_size =
            evict_least_recently_used(inv, max, plan.size_before, &kept, &mut refs, &mut chosen);
    }
    plan.removals = removals(inv, chosen);
    if plan.sweep {
        plan.orphan_sidecars = inv.orphan_sidecars.clone();
    }
    Ok(plan)
}

/// Whether `used` is `--older-than` ago or more.
fn is_older(policy: &Policy, now: SystemTime, used: SystemTime) -> bool {
    policy
        .older_than
        .is_some_and(|age| now.duration_since(used).is_ok_and(|d| d >= age))
}

/// The tags the policy drops by name, age or `--all`, and everything the
/// images `--image` forgets reach; an `--image` that matches nothing is an error.
fn dropped_tags(
    inv: &Inventory,
    policy: &Policy,
    now: SystemTime,
) -> Result<(HashSet<usize>, HashSet<Digest>), NoSuchImage> {
    let mut dropped_tags: Vec<usize> = Vec::new();
    let mut forgotten_roots: Vec<Digest> = Vec::new();
    for sel in &policy.images {
        let mut matched = false;
        for (i, t) in inv.tags.iter().enumerate() {
            if sel.matches(t) {
                matched = true;
                dropped_tags.push(i);
                forgotten_roots.push(t.digest.clone());
            }
        }
        if let ImageSelector::Digest { digest, .. } = sel
            && inv.blobs.contains_key(digest)
        {
            matched = true;
            forgotten_roots.push(digest.clone());
        }
        if !matched {
            return Err(NoSuchImage(describe(sel)));
        }
    }
    for (i, t) in inv.tags.iter().enumerate() {
        if policy.all || is_older(policy, now, t.used) {
            dropped_tags.push(i);
        }
    }
    let forgotten = forgotten_roots.iter().flat_map(|r| inv.reach(r)).collect();
    Ok((dropped_tags.into_iter().collect(), forgotten))
}

/// What the kept tags reach (by tag index), and how many of them reach
/// each digest.
struct KeptRefs<'a> {
    reaches: &'a HashMap<usize, Vec<Digest>>,
    counts: HashMap<&'a Digest, usize>,
}

impl<'a> KeptRefs<'a> {
    fn count(reaches: &'a HashMap<usize, Vec<Digest>>) -> KeptRefs<'a> {
        let mut counts: HashMap<&Digest, usize> = HashMap::new();
        for ds in reaches.values() {
            for d in ds {
                *counts.entry(d).or_default() += 1;
            }
        }
        KeptRefs { reaches, counts }
    }

    fn is_referenced(&self, d: &Digest) -> bool {
        self.counts.contains_key(d)
    }
}

/// What the plan removes so far: tags (by index) and stored content.
struct Chosen<'a> {
    tags: Vec<usize>,
    blobs: HashSet<&'a Digest>,
}

/// Content no kept tag reaches that the policy takes: all of it, what has
/// settled (`--unreferenced`), what is old, or what a forgotten image reached.
fn unreferenced_content<'a>(
    inv: &'a Inventory,
    policy: &Policy,
    now: SystemTime,
    refs: &KeptRefs,
    forgotten: &HashSet<Digest>,
) -> HashSet<&'a Digest> {
    // A pull stores its manifest and blobs before its tag record: content
    // that new is not "unreferenced" yet (git's prune expiry, in short).
    let settled = |used: SystemTime| {
        now.duration_since(used)
            .is_ok_and(|d| d >= UNREFERENCED_GRACE)
    };
    inv.blobs
        .iter()
        .filter(|(d, b)| {
            !refs.is_referenced(d)
                && (policy.all
                    || (policy.unreferenced && settled(b.used))
                    || is_older(policy, now, b.used)
                    || forgotten.contains(*d))
        })
        .map(|(d, _)| d)
        .collect()
}

/// `--max-size`: the least recently used first (a tag, with whatever only it
/// reaches, or a blob no kept tag reaches) until the rest fits. Returns what
/// was kept although the cache stays over `max`.
fn evict_least_recently_used<'a>(
    inv: &'a Inventory,
    max: u64,
    size_before: u64,
    kept: &[usize],
    refs: &mut KeptRefs<'a>,
    chosen: &mut Chosen<'a>,
) -> Option<String> {
    let mut size = size_before.saturating_sub(inv.size_of(chosen.blobs.iter().copied()));
    enum Lru<'a> {
        Tag(usize),
        Blob(&'a Digest),
    }
    let mut queue: Vec<(SystemTime, Lru)> = kept
        .iter()
        .map(|&i| (inv.tags[i].used, Lru::Tag(i)))
        .chain(
            inv.blobs
                .iter()
                .filter(|(d, _)| !refs.is_referenced(d) && !chosen.blobs.contains(d))
                .map(|(d, b)| (b.used, Lru::Blob(d))),
        )
        .collect();
    queue.sort_by_key(|(t, _)| *t);
    // The most recently used entry stays, even when it alone is over
    // the budget: evicting everything for an image that cannot fit
    // would only empty the cache for nothing on every pass.
    let newest = queue.pop();
    for (_, item) in queue {
        if size <= max {
            break;
        }
        match item {
            Lru::Blob(d) => {
                if chosen.blobs.insert(d) {
                    size = size.saturating_sub(inv.size_of([d]));
                }
            }
            Lru::Tag(i) => {
                chosen.tags.push(i);
                for d in refs.reaches.get(&i).into_iter().flatten() {
                    let n = refs.counts.entry(d).or_default();
                    *n = n.saturating_sub(1);
                    if *n == 0 && chosen.blobs.insert(d) {
                        size = size.saturating_sub(inv.size_of([d]));
                    }
                }
            }
        }
    }
    if size > max {
        newest.map(|(_, item)| match item {
            Lru::Tag(i) => inv.tags[i].name(),
            Lru::Blob(d) => d.to_string(),
        })
    } else {
        None
    }
}

/// The removals in the order they run: tag records first; then manifests
/// before what they reference, oldest first.
fn removals(inv: &Inventory, chosen: Chosen) -> Vec<Removal> {
    let Chosen { mut tags, blobs } = chosen;
    tags.sort_unstable();
    let mut out: Vec<Removal> = tags
        .into_iter()
        .map(|i| {
            let t = &inv.tags[i];
            Removal {
                kind: "tag",
                name: t.name(),
                size: 0,
                used: t.used,
                target: Target::Tag(t.path.clone()),
            }
        })
        .collect();
    let mut objects: Vec<&Digest> = blobs.into_iter().collect();
    objects.sort_by_key(|d| (!inv.manifests.contains_key(*d), inv.blobs[*d].used));
    for d in objects {
        let manifest = inv.manifests.contains_key(d);
        let b = &inv.blobs[d];
        out.push(Removal {
            kind: if manifest { "manifest" } else { "blob" },
            name: d.to_string(),
            size: b.size,
            used: b.used,
            target: Target::Blob {
                digest: d.clone(),
                manifest,
                links: inv.links.get(d).cloned().unwrap_or_default(),
            },
        });
    }
    out
}

fn describe(sel: &ImageSelector) -> String {
    match sel {
        ImageSelector::Repository { registry, repo } => format!("{registry}/{repo}"),
        ImageSelector::Tag {
            registry,
            repo,
            tag,
        } => format!("{registry}/{repo}:{tag}"),
        ImageSelector::Digest {
            registry,
            repo,
            digest,
        } => format!("{registry}/{repo}@{digest}"),
    }
}

/// Whether `path` is a regular file (not a symlink) still last used at `used`.
fn unchanged_file(path: &Path, used: SystemTime) -> bool {
    fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_file() && m.modified().is_ok_and(|t| t == used))
}

impl Cache {
    /// Carries out a plan; `on_removed` hears each removal done.
    pub fn execute(&self, plan: &Plan, mut on_removed: impl FnMut(&Removal)) -> Summary {
        // Between a removal's last-use check and the removal, no tag record
        // may come to lean on the file (`keep_manifest_of_record`).
        let _removing = match self.removal_lock(Access::Exclusive) {
            Ok(held) => Some(held),
            Err(e) => {
                tracing::warn!("purging without the removal lock: {e}");
                None
            }
        };
        let mut summary = Summary {
            size_before: plan.size_before,
            ..Summary::default()
        };
        let index = self.root.join("index");
        for r in &plan.removals {
            let removed = match &r.target {
                Target::Tag(path) => {
                    path.starts_with(&index)
                        && unchanged_file(path, r.used)
                        && fs::remove_file(path).is_ok()
                        && {
                            remove_empty_dirs(path, &index);
                            true
                        }
                }
                Target::Blob {
                    digest,
                    manifest,
                    links,
                } => {
                    let removed = self.remove_blob(digest, *manifest, r.used);
                    if removed {
                        // In this process too (serve's evictor), so a download
                        // of it again writes its links again.
                        self.members.forget(digest.hex());
                        // Membership records go with the content (plain files under index/ only).
                        for link in links.iter().filter(|l| l.starts_with(&index)) {
                            if fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_file()) {
                                let _ = fs::remove_file(link);
                            }
                        }
                    }
                    removed
                }
            };
            if !removed {
                summary.kept_in_use += 1;
                continue;
            }
            self.generation.bump();
            match r.kind {
                "tag" => summary.tags += 1,
                "manifest" => summary.manifests += 1,
                _ => summary.blobs += 1,
            }
            summary.bytes_reclaimed = summary.bytes_reclaimed.saturating_add(r.size);
            on_removed(r);
        }
        for d in &plan.orphan_sidecars {
            if !self.blob_path(d).exists() {
                let _ = fs::remove_file(self.manifest_meta_path(d));
            }
        }
        if plan.sweep {
            match self.sweep() {
                Ok(swept) => {
                    summary.temp_files_removed = swept.temp_files;
                    summary.lock_files_removed = swept.lock_files;
                }
                Err(e) => tracing::warn!("cannot sweep temp and lock files: {e}"),
            }
        }
        summary.size_after = summary.size_before.saturating_sub(summary.bytes_reclaimed);
        summary.over_max_size = plan.over_max_size.clone();
        summary
    }

    /// Removes a stored blob (and a manifest's sidecar) unless it was used
    /// since `used` or its path is not a plain file inside the cache.
    fn remove_blob(&self, digest: &Digest, manifest: bool, used: SystemTime) -> bool {
        let path = self.blob_path(digest);
        let shard_ok = path.parent().is_some_and(is_real_dir)
            && is_real_dir(&self.root.join("blobs/sha256"))
            && is_real_dir(&self.root.join("blobs"));
        if !shard_ok || !unchanged_file(&path, used) || fs::remove_file(&path).is_err() {
            return false;
        }
        if manifest {
            let _ = fs::remove_file(self.manifest_meta_path(digest));
        }
        true
    }

    /// Makes sure the manifest a tag record just written names is cached and
    /// marked used, so that no purge takes it from under the record: a purge
    /// that ran meanwhile is made good by storing it again, and one about to
    /// run sees a use newer than its inventory and keeps it. Held under the
    /// removal lock, so a purge is never between its check and its removal.
    pub fn keep_manifest_of_record(
        &self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), CacheError> {
        let _held = self.removal_lock(Access::Shared)?;
        let path = self.blob_path(digest);
        let used = fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
        match used {
            Ok(()) if self.manifest_meta_path(digest).is_file() => Ok(()),
            _ => self.put_manifest(digest, media_type, bytes),
        }
    }

    /// The lock purges hold (exclusive) while removing and tag writers hold
    /// (shared) while making sure their manifest stays.
    fn removal_lock(&self, access: Access) -> Result<Held, CacheError> {
        let path = self.root.join("locks").join("removal.lock");
        loop {
            let held = LockFile::open(&path)
                .and_then(|file| file.lock(access))
                .map_err(|e| CacheError::write(&path, e))?;
            // The sweep removes free lock files: one no longer at `path` is no lock.
            if super::locks::is_at(held.file(), &path) {
                return Ok(held);
            }
        }
    }

    /// Plans and executes `policy` in one go (what `serve`'s evictor does).
    pub fn purge(
        &self,
        policy: &Policy,
        on_removed: impl FnMut(&Removal),
    ) -> Result<Summary, PurgeError> {
        let inv = self.inventory()?;
        let plan = plan(&inv, policy, SystemTime::now())?;
        Ok(self.execute(&plan, on_removed))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    NoSuchImage(#[from] NoSuchImage),
}

/// Removes the now empty directories between a removed tag record and `index/`.
fn remove_empty_dirs(path: &Path, index: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == index || !d.starts_with(index) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Blobs stored by this process so far: `serve`'s evictor checks the budget
/// again only once something new came in.
static STORED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(super) fn note_stored() {
    STORED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

pub fn stored_count() -> u64 {
    STORED.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::TagRecord;

    use crate::cache::testing::store_blob as store;

    fn set_age(path: &Path, age: Duration) {
        fs::File::open(path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    /// An image (manifest, config, layer) tagged `registry/a:1`; returns the digests.
    fn image(cache: &Cache, seed: &str, shared: &Digest) -> Vec<Digest> {
        let config = store(cache, seed.as_bytes());
        let layer = store(cache, format!("layer {seed}").as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::oci::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": seed.len()},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": shared.to_string(), "size": 6},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 6 + seed.len()}
            ]
        })
        .to_string();
        let m = Digest::of(manifest.as_bytes());
        cache
            .put_manifest(&m, crate::oci::OCI_MANIFEST, manifest.as_bytes())
            .unwrap();
        cache
            .write_tag("example.com", seed, "1", &TagRecord::new(m.clone()))
            .unwrap();
        vec![m, config, layer]
    }

    fn removed(plan: &Plan) -> Vec<String> {
        let mut v: Vec<String> = plan.removals.iter().map(|r| r.name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn unreferenced_spares_new_content_and_never_what_a_tag_reaches() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let shared = store(&cache, b"shared");
        let a = image(&cache, "a", &shared);
        let loose = store(&cache, b"pulled by digest, no tag");
        let policy = Policy {
            unreferenced: true,
            ..Policy::default()
        };
        let inv = cache.inventory().unwrap();
        assert_eq!(inv.reach(&a[0]).len(), 4, "manifest, config, two layers");
        assert!(
            plan(&inv, &policy, SystemTime::now())
                .unwrap()
                .removals
                .is_empty()
        );
        // Once settled, the loose blob goes; the tagged image's never do.
        for d in a.iter().chain([&shared, &loose]) {
            set_age(&cache.blob_path(d), UNREFERENCED_GRACE * 2);
        }
        let inv = cache.inventory().unwrap();
        let p = plan(&inv, &policy, SystemTime::now()).unwrap();
        assert_eq!(removed(&p), [loose.to_string()]);
    }

    #[test]
    fn forgetting_an_image_keeps_what_another_needs_and_an_unknown_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let shared = store(&cache, b"shared");
        let a = image(&cache, "a", &shared);
        image(&cache, "b", &shared);
        // Membership records (the boundary's layout) go with their content.
        let links = dir.path().join("index/example.com/a/_links");
        cache
            .link("example.com", "a", &[a[2].clone(), shared.clone()])
            .unwrap();
        let inv = cache.inventory().unwrap();
        let forget = |repo: &str| Policy {
            images: vec![ImageSelector::Repository {
                registry: "example.com".into(),
                repo: repo.into(),
            }],
            ..Policy::default()
        };
        let p = plan(&inv, &forget("a"), SystemTime::now()).unwrap();
        let mut want: Vec<String> = a.iter().map(Digest::to_string).collect();
        want.push("example.com/a:1".into());
        want.sort();
        assert_eq!(removed(&p), want);
        assert!(plan(&inv, &forget("nope"), SystemTime::now()).is_err());
        // Executing it leaves b whole.
        let s = cache.execute(&p, |_| {});
        assert_eq!((s.tags, s.manifests, s.blobs), (1, 1, 2));
        assert_eq!(s.size_before, p.size_before);
        assert!(s.size_before > 0);
        assert!(cache.blob_path(&shared).is_file());
        assert!(!links.join(a[2].hex()).exists());
        // ... and from what this process knows, so a new download links it again.
        assert!(!cache.links_known("example.com", "a", std::slice::from_ref(&a[2])));
        assert!(cache.links_known("example.com", "a", std::slice::from_ref(&shared)));
        assert!(links.join(shared.hex()).exists());
        let inv = cache.inventory().unwrap();
        assert_eq!(inv.tags.len(), 1);
        assert_eq!(inv.reach(&inv.tags[0].digest).len(), 4);
    }

    #[test]
    fn a_max_size_below_one_image_keeps_the_most_recently_used_image() {
        let (dir, cache) = crate::cache::testing::temp_cache();
        let shared = store(&cache, b"shared");
        let old = image(&cache, "old", &shared);
        let new = image(&cache, "new", &shared);
        let loose = store(&cache, b"loose, newer than every tag");
        for (repo, age) in [("old", 7200), ("new", 60)] {
            let tag = dir
                .path()
                .join(format!("index/example.com/{repo}/tags/1.json"));
            set_age(&tag, Duration::from_secs(age));
        }
        let policy = Policy {
            max_size: Some(1),
            ..Policy::default()
        };
        let inv = cache.inventory().unwrap();
        let p = plan(&inv, &policy, SystemTime::now()).unwrap();
        // The loose blob is the most recently used entry: it alone stays.
        let mut want: Vec<String> = old
            .iter()
            .chain(&new)
            .chain([&shared])
            .map(Digest::to_string)
            .collect();
        want.extend(["example.com/new:1".into(), "example.com/old:1".into()]);
        want.sort();
        assert_eq!(removed(&p), want);
        assert_eq!(p.over_max_size, Some(loose.to_string()));
        // Without it, the newest image stays whole, never the whole cache.
        set_age(&cache.blob_path(&loose), Duration::from_secs(9000));
        let inv = cache.inventory().unwrap();
        let p = plan(&inv, &policy, SystemTime::now()).unwrap();
        let mut want: Vec<String> = old.iter().map(Digest::to_string).collect();
        want.extend([loose.to_string(), "example.com/old:1".into()]);
        want.sort();
        assert_eq!(removed(&p), want);
        assert_eq!(p.over_max_size.as_deref(), Some("example.com/new:1"));
        // A budget the newest image fits in is no warning.
        let fits = Policy {
            max_size: Some(inv.total_size()),
            ..Policy::default()
        };
        assert_eq!(
            plan(&inv, &fits, SystemTime::now()).unwrap().over_max_size,
            None
        );
    }

    #[test]
    fn a_blob_used_after_the_plan_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = store(&cache, b"x");
        set_age(&cache.blob_path(&d), Duration::from_secs(3600));
        let inv = cache.inventory().unwrap();
        let p = plan(
            &inv,
            &Policy {
                all: true,
                ..Policy::default()
            },
            SystemTime::now(),
        )
        .unwrap();
        // Used (touched) between the plan and its execution.
        set_age(&cache.blob_path(&d), Duration::ZERO);
        let s = cache.execute(&p, |_| {});
        assert_eq!((s.blobs, s.kept_in_use), (0, 1));
        assert!(cache.blob_path(&d).is_file());
    }
    #[test]
    fn a_manifest_a_record_leans_on_after_the_plan_is_kept_or_stored_again() {
        let (_dir, cache) = crate::cache::testing::temp_cache();
        let shared = store(&cache, b"shared");
        let a = image(&cache, "a", &shared);
        let (bytes, media_type) = cache.get_manifest(&a[0]).unwrap().unwrap();
        set_age(&cache.blob_path(&a[0]), Duration::from_secs(3600));
        let forget = Policy {
            images: vec![ImageSelector::Repository {
                registry: "example.com".into(),
                repo: "a".into(),
            }],
            ..Policy::default()
        };
        // A pull rewrites the tag's record after the purge planned: the
        // manifest it names is marked used, so the purge leaves it.
        let p = plan(&cache.inventory().unwrap(), &forget, SystemTime::now()).unwrap();
        cache
            .write_tag("example.com", "a", "1", &TagRecord::new(a[0].clone()))
            .unwrap();
        cache
            .keep_manifest_of_record(&a[0], &media_type, &bytes)
            .unwrap();
        cache.execute(&p, |_| {});
        assert!(cache.blob_path(&a[0]).is_file(), "the manifest stays");
        assert!(cache.get_manifest(&a[0]).unwrap().is_some());
        // After a purge that took it, it is stored again.
        set_age(&cache.blob_path(&a[0]), Duration::from_secs(3600));
        let p = plan(&cache.inventory().unwrap(), &forget, SystemTime::now()).unwrap();
        cache.execute(&p, |_| {});
        assert!(!cache.blob_path(&a[0]).exists());
        cache
            .keep_manifest_of_record(&a[0], &media_type, &bytes)
            .unwrap();
        assert_eq!(
            cache.get_manifest(&a[0]).unwrap(),
            Some((bytes, media_type))
        );
    }

    /// Plans made on inventories built in memory, with exact sizes and last uses.
    mod on_paper {
        use super::*;
        use crate::cache::inventory::{BlobEntry, ManifestEntry};
        use std::path::PathBuf;

        const REGISTRY: &str = "r.example";

        fn now() -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
        }

        fn ago(secs: u64) -> SystemTime {
            now() - Duration::from_secs(secs)
        }

        fn d(name: &str) -> Digest {
            Digest::of(name.as_bytes())
        }

        #[derive(Default)]
        struct Paper {
            inv: Inventory,
            /// Digest -> the name the test gave the content.
            names: HashMap<String, String>,
        }

        impl Paper {
            fn blob(mut self, name: &str, size: u64, age: u64) -> Paper {
                self.inv.blobs.insert(
                    d(name),
                    BlobEntry {
                        size,
                        used: ago(age),
                    },
                );
                self.names.insert(d(name).to_string(), name.to_string());
                self
            }

            fn manifest(self, name: &str, size: u64, age: u64, layers: &[&str]) -> Paper {
                let mut p = self.blob(name, size, age);
                p.inv.manifests.insert(
                    d(name),
                    ManifestEntry {
                        layers: layers.iter().map(|l| d(l)).collect(),
                        ..ManifestEntry::default()
                    },
                );
                p
            }

            fn tag(mut self, repo: &str, manifest: &str, age: u64) -> Paper {
                self.inv.tags.push(TagEntry {
                    registry: REGISTRY.into(),
                    repo: repo.into(),
                    tag: "1".into(),
                    digest: d(manifest),
                    used: ago(age),
                    path: PathBuf::from(format!("{repo}/1.json")),
                });
                self
            }

            fn plan(&self, policy: &Policy) -> Result<Plan, NoSuchImage> {
                plan(&self.inv, policy, now())
            }

            /// The removals in plan order: `repo:1` for tags, names for content.
            fn removed_in_order(&self, policy: &Policy) -> Vec<String> {
                let p = self.plan(policy).unwrap();
                p.removals
                    .iter()
                    .map(|r| match r.kind {
                        "tag" => r.name.trim_start_matches("r.example/").to_string(),
                        _ => self.names[&r.name].clone(),
                    })
                    .collect()
            }

            fn removed(&self, policy: &Policy) -> Vec<String> {
                let mut v = self.removed_in_order(policy);
                v.sort();
                v
            }
        }

        fn forget(repo: &str) -> Policy {
            Policy {
                images: vec![ImageSelector::Repository {
                    registry: REGISTRY.into(),
                    repo: repo.into(),
                }],
                ..Policy::default()
            }
        }

        fn older_than(secs: u64) -> Policy {
            Policy {
                older_than: Some(Duration::from_secs(secs)),
                ..Policy::default()
            }
        }

        fn max_size(max: u64) -> Policy {
            Policy {
                max_size: Some(max),
                ..Policy::default()
            }
        }

        /// a:1 and b:1 share a layer; a 10 + 100 + 1000 bytes, b 20 + 1000.
        fn two_images() -> Paper {
            Paper::default()
                .manifest("ma", 10, 50, &["la", "shared"])
                .blob("la", 100, 50)
                .blob("shared", 1000, 50)
                .manifest("mb", 20, 50, &["shared"])
                .tag("a", "ma", 50)
                .tag("b", "mb", 50)
        }

        #[test]
        fn selectors_match_on_every_part() {
            let t = TagEntry {
                registry: REGISTRY.into(),
                repo: "a".into(),
                tag: "1".into(),
                digest: d("m"),
                used: now(),
                path: PathBuf::from("a/1.json"),
            };
            let repo = |registry: &str, repo: &str| ImageSelector::Repository {
                registry: registry.into(),
                repo: repo.into(),
            };
            assert!(repo(REGISTRY, "a").matches(&t));
            assert!(!repo("q.example", "a").matches(&t));
            assert!(!repo(REGISTRY, "b").matches(&t));
            let tag = |registry: &str, repo: &str, tag: &str| ImageSelector::Tag {
                registry: registry.into(),
                repo: repo.into(),
                tag: tag.into(),
            };
            assert!(tag(REGISTRY, "a", "1").matches(&t));
            assert!(!tag("q.example", "a", "1").matches(&t));
            assert!(!tag(REGISTRY, "b", "1").matches(&t));
            assert!(!tag(REGISTRY, "a", "2").matches(&t));
            let digest = |registry: &str, repo: &str, digest: &str| ImageSelector::Digest {
                registry: registry.into(),
                repo: repo.into(),
                digest: d(digest),
            };
            assert!(digest(REGISTRY, "a", "m").matches(&t));
            assert!(!digest("q.example", "a", "m").matches(&t));
            assert!(!digest(REGISTRY, "b", "m").matches(&t));
            assert!(!digest(REGISTRY, "a", "n").matches(&t));
        }

        #[test]
        fn a_plans_summary_counts_each_kind_and_what_stays() {
            let paper = two_images();
            let mut p = paper.plan(&forget("a")).unwrap();
            assert_eq!(paper.removed(&forget("a")), ["a:1", "la", "ma"]);
            assert_eq!((p.size_before, p.bytes()), (1130, 110));
            assert!(!p.sweep);
            p.over_max_size = Some("r.example/b:1".into());
            let s = Summary::of_plan(&p);
            assert_eq!((s.tags, s.manifests, s.blobs), (1, 1, 1));
            assert_eq!(
                (s.bytes_reclaimed, s.size_before, s.size_after),
                (110, 1130, 1020)
            );
            assert_eq!(s.over_max_size.as_deref(), Some("r.example/b:1"));
            assert_eq!(s.kept_in_use, 0);
        }

        #[test]
        fn only_all_and_unreferenced_sweep() {
            let paper = two_images();
            for (policy, sweep) in [
                (Policy::default(), false),
                (older_than(1), false),
                (
                    Policy {
                        all: true,
                        ..Policy::default()
                    },
                    true,
                ),
                (
                    Policy {
                        unreferenced: true,
                        ..Policy::default()
                    },
                    true,
                ),
            ] {
                assert_eq!(paper.plan(&policy).unwrap().sweep, sweep, "{policy:?}");
            }
            assert!(paper.removed(&Policy::default()).is_empty());
            assert!(
                paper
                    .removed(&Policy {
                        unreferenced: true,
                        ..Policy::default()
                    })
                    .is_empty()
            );
        }

        #[test]
        fn older_than_counts_the_boundary_and_spares_what_a_kept_tag_reaches() {
            let paper = Paper::default()
                .manifest("ma", 10, 3600, &["la"])
                .blob("la", 100, 3600)
                .tag("a", "ma", 3600)
                // Old content, but b:1 was used a second too recently.
                .manifest("mb", 10, 7200, &["lb"])
                .blob("lb", 100, 7200)
                .tag("b", "mb", 3599)
                .blob("old loose", 5, 3600)
                .blob("new loose", 5, 3599);
            assert_eq!(
                paper.removed(&older_than(3600)),
                ["a:1", "la", "ma", "old loose"]
            );
            assert!(paper.removed(&older_than(7201)).is_empty());
        }

        #[test]
        fn each_policy_alone_takes_unreferenced_content() {
            let grace = UNREFERENCED_GRACE.as_secs();
            let paper = Paper::default()
                .manifest("ma", 10, 0, &["la"])
                .blob("la", 100, 0)
                .tag("a", "ma", 0)
                .blob("settled", 5, grace)
                .blob("not yet", 5, grace - 1);
            let unreferenced = Policy {
                unreferenced: true,
                ..Policy::default()
            };
            assert_eq!(paper.removed(&unreferenced), ["settled"]);
            // `--all` takes everything, however new.
            let all = Policy {
                all: true,
                ..Policy::default()
            };
            assert_eq!(
                paper.removed(&all),
                ["a:1", "la", "ma", "not yet", "settled"]
            );
            // Settled is not old: `--older-than` alone leaves it.
            assert!(paper.removed(&older_than(grace + 1)).is_empty());
            assert_eq!(paper.removed(&older_than(grace)), ["settled"]);
        }

        #[test]
        fn forgetting_by_digest_takes_an_untagged_image_and_unknown_images_are_named() {
            let paper = two_images().manifest("mx", 1, 0, &["lx"]).blob("lx", 2, 0);
            let by_digest = |repo: &str, name: &str| Policy {
                images: vec![ImageSelector::Digest {
                    registry: REGISTRY.into(),
                    repo: repo.into(),
                    digest: d(name),
                }],
                ..Policy::default()
            };
            // Pulled by digest, no tag: the digest alone names it.
            assert_eq!(paper.removed(&by_digest("a", "mx")), ["lx", "mx"]);
            // By a tag's digest: that tag goes, the shared layer stays.
            assert_eq!(paper.removed(&by_digest("a", "ma")), ["a:1", "la", "ma"]);
            let err = paper.plan(&by_digest("a", "nothing")).unwrap_err();
            assert_eq!(err.0, format!("r.example/a@{}", d("nothing")));
            let err = paper.plan(&forget("nope")).unwrap_err();
            assert_eq!(err.0, "r.example/nope");
            let tag = Policy {
                images: vec![ImageSelector::Tag {
                    registry: REGISTRY.into(),
                    repo: "a".into(),
                    tag: "2".into(),
                }],
                ..Policy::default()
            };
            assert_eq!(paper.plan(&tag).unwrap_err().0, "r.example/a:2");
        }

        #[test]
        fn max_size_evicts_the_least_recently_used_until_it_fits_exactly() {
            let paper = Paper::default()
                .manifest("mo", 10, 300, &["lo", "shared"])
                .blob("lo", 100, 300)
                .manifest("mm", 10, 200, &["lm", "shared"])
                .blob("lm", 100, 200)
                .blob("shared", 1000, 300)
                .manifest("mn", 10, 100, &["ln"])
                .blob("ln", 100, 100)
                .tag("old", "mo", 300)
                .tag("mid", "mm", 200)
                .tag("new", "mn", 100);
            // 1330 bytes; evicting old:1 frees only mo and lo (mid:1 needs shared).
            let p = paper.plan(&max_size(1220)).unwrap();
            assert_eq!(paper.removed(&max_size(1220)), ["lo", "mo", "old:1"]);
            assert_eq!(p.over_max_size, None, "1220 fits exactly");
            // One byte less: mid:1 goes too, and shared with it.
            assert_eq!(
                paper.removed(&max_size(1219)),
                ["lm", "lo", "mid:1", "mm", "mo", "old:1", "shared"]
            );
            assert_eq!(paper.plan(&max_size(1219)).unwrap().over_max_size, None);
            // Everything fits: nothing goes.
            assert!(paper.removed(&max_size(1330)).is_empty());
            // Not even the newest fits: it stays, named.
            assert_eq!(
                paper.plan(&max_size(109)).unwrap().over_max_size.as_deref(),
                Some("r.example/new:1")
            );
        }

        #[test]
        fn max_size_takes_an_old_loose_blob_before_a_tag_and_never_a_kept_tags_layer() {
            let paper = Paper::default()
                .manifest("ma", 10, 100, &["ancient layer"])
                .blob("ancient layer", 100, 9000)
                .tag("a", "ma", 100)
                .manifest("mb", 10, 50, &["lb"])
                .blob("lb", 100, 50)
                .tag("b", "mb", 50)
                .blob("loose", 30, 1000);
            assert_eq!(paper.removed(&max_size(220)), ["loose"]);
            assert_eq!(
                paper.removed(&max_size(219)),
                ["a:1", "ancient layer", "loose", "ma"]
            );
        }

        #[test]
        fn removals_run_tags_then_manifests_then_blobs_oldest_first() {
            let paper = Paper::default()
                .manifest("ma", 10, 50, &["la"])
                .blob("la", 100, 10)
                .manifest("mb", 20, 500, &["lb"])
                .blob("lb", 200, 1000)
                .tag("b", "mb", 0)
                .tag("a", "ma", 0);
            let all = Policy {
                all: true,
                ..Policy::default()
            };
            assert_eq!(
                paper.removed_in_order(&all),
                ["b:1", "a:1", "mb", "ma", "lb", "la"]
            );
            let p = paper.plan(&all).unwrap();
            let kinds: Vec<(&str, u64)> = p.removals.iter().map(|r| (r.kind, r.size)).collect();
            assert_eq!(
                kinds,
                [
                    ("tag", 0),
                    ("tag", 0),
                    ("manifest", 20),
                    ("manifest", 10),
                    ("blob", 200),
                    ("blob", 100)
                ]
            );
        }
    }
}

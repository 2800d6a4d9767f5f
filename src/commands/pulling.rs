//! The pulling engine `dpx pull` and `dpx prefetch` share: images in
//! parallel, blobs of an image in parallel, each blob once per run, and the
//! rendering of what came of each image. Not a command itself: both commands
//! call it, so neither imports the other.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use super::{Context, Output};
use crate::cache::PullCounts;
use crate::cli::PlatformArgs;
use crate::fetch::{BlobFetch, BlobState, FetchError, Fetcher, PullPolicy, default_choice};
use crate::oci::PlatformChoice;
use crate::progress::Progress;
use crate::reference::{Digest, Reference};
use crate::registry::{DEFAULT_RETRIES, RateLimit};
use crate::units::human_bytes;

/// Blob downloads at once within one image.
const BLOBS_PER_IMAGE: usize = 4;

/// `dpx pull` revalidates tags every time: a HEAD is free, and a user who
/// asks to pull expects the tag's current digest.
const PULL_TAG_TTL: Duration = Duration::ZERO;

pub struct Job {
    pub reference: Reference,
    pub choice: PlatformChoice,
}

#[derive(Debug, Serialize)]
pub struct ImageOutcome {
    pub reference: String,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub platforms: Vec<String>,
    /// hit, miss, revalidated or stale
    pub manifest: Option<&'static str>,
    pub blobs: usize,
    pub blobs_fetched: usize,
    pub blobs_cached: usize,
    pub bytes_fetched: u64,
    pub error: Option<String>,
    /// Not pulled: the run stopped to save the pull quota (`error` says why).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub images: Vec<ImageOutcome>,
    pub images_ok: usize,
    pub images_failed: usize,
    /// Distinct blobs downloaded in this run (a shared layer counts once).
    pub blobs_fetched: usize,
    pub blobs_cached: usize,
    pub bytes_fetched: u64,
    pub seconds: f64,
    /// The last pull-quota figures each registry reported (Docker Hub's `ratelimit-*`).
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// This run's manifest requests: answered from the cache, and sent upstream.
    pub manifest_requests: PullCounts,
    /// Why the run stopped early to save the pull quota, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

pub fn platform_choice(args: &PlatformArgs) -> PlatformChoice {
    default_choice(args.platform.clone(), args.all_platforms)
}

/// Pulls every job, `parallel` images at a time; one failure doesn't stop the others.
pub async fn pull_all(ctx: &Context, jobs: Vec<Job>, parallel: usize) -> anyhow::Result<Summary> {
    pull_all_with(ctx, jobs, parallel, PullPolicy::default()).await
}

/// `pull_all`, spending the pull quota as `policy` says.
pub async fn pull_all_with(
    ctx: &Context,
    jobs: Vec<Job>,
    parallel: usize,
    policy: PullPolicy,
) -> anyhow::Result<Summary> {
    let fetcher = ctx.fetcher_with(DEFAULT_RETRIES, policy)?;
    // What the run prints as pulled must be in the cache.
    fetcher.require_stored();
    fetcher.spawn_sweep();
    let progress = Progress::new(ctx.output == Output::Human);
    let run = Run {
        fetcher,
        progress,
        output: ctx.output,
        counted: Mutex::default(),
        stopped: Mutex::default(),
    };
    let started = Instant::now();
    let registries: Vec<String> = jobs.iter().map(|j| j.reference.registry.clone()).collect();
    let images: Vec<ImageOutcome> = futures_util::stream::iter(jobs)
        .map(|job| run.pull_one(job))
        .buffered(parallel.max(1))
        .collect()
        .await;
    run.fetcher.flush_usage().await;
    let counted = run.counted.lock().map(|c| c.clone()).unwrap_or_default();
    let images_failed = images.iter().filter(|i| i.error.is_some()).count();
    let rate_limits = registries
        .into_iter()
        .filter_map(|r| Some((r.clone(), run.fetcher.client().rate_limit(&r)?)))
        .collect();
    let stopped = run.stopped.lock().ok().and_then(|s| s.clone());
    Ok(Summary {
        rate_limits,
        manifest_requests: run.fetcher.pull_counts(),
        stopped,
        images_ok: images.len() - images_failed,
        images_failed,
        blobs_fetched: counted.fetched.len(),
        blobs_cached: counted.seen.len() - counted.fetched.len(),
        bytes_fetched: counted.fetched.values().sum(),
        seconds: started.elapsed().as_secs_f64(),
        images,
    })
}

/// Every blob the run touched, and which of them it downloaded. Counted by
/// digest, so that a layer shared by images counts once, however the images'
/// requests interleave: an image may find in the cache a layer that another
/// image of the same run has just downloaded.
#[derive(Default, Clone)]
struct Counted {
    seen: HashSet<Digest>,
    fetched: HashMap<Digest, u64>,
}

struct Run {
    fetcher: Arc<Fetcher>,
    progress: Progress,
    output: Output,
    counted: Mutex<Counted>,
    /// The first reason an image was not pulled to save the quota.
    stopped: Mutex<Option<String>>,
}

enum BlobOutcome {
    Cached,
    Fetched,
}

impl Run {
    async fn pull_one(&self, job: Job) -> ImageOutcome {
        let reference = job.reference.to_string();
        let mut outcome = ImageOutcome {
            reference: reference.clone(),
            digest: None,
            media_type: None,
            platforms: Vec::new(),
            manifest: None,
            blobs: 0,
            blobs_fetched: 0,
            blobs_cached: 0,
            bytes_fetched: 0,
            error: None,
            stopped: false,
        };
        let resolved = match self
            .fetcher
            .resolve_pull(&job.reference, &job.choice, PULL_TAG_TTL)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Held back to save the quota, or the upstream's own 429: the quota stopped it.
                let quota = match (e.quota_stop(), e.registry()) {
                    (Some(stop), _) => Some(stop.to_string()),
                    (None, Some(r @ crate::registry::RegistryError::RateLimited { .. })) => {
                        Some(r.to_string())
                    }
                    _ => None,
                };
                if let Some(why) = quota {
                    outcome.stopped = true;
                    if let Ok(mut first) = self.stopped.lock() {
                        first.get_or_insert(why);
                    }
                }
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        outcome.digest = Some(resolved.top.digest.to_string());
        outcome.media_type = Some(resolved.top.media_type.clone());
        outcome.manifest = Some(resolved.top.freshness.as_str());
        outcome.platforms = resolved
            .images
            .iter()
            .filter_map(|i| i.platform.clone())
            .collect();
        tracing::info!(
            "{reference}: manifest {} ({}), platforms [{}]",
            resolved.top.digest,
            resolved.top.freshness.as_str(),
            outcome.platforms.join(", ")
        );
        match resolved.top.freshness {
            crate::fetch::Freshness::Stale => self.say(&format!(
                "{reference}: upstream unavailable, using the cached manifest"
            )),
            crate::fetch::Freshness::Spared(spare) => self.say(&format!(
                "{reference}: using the cached manifest to save the pull quota ({})",
                spare.as_str()
            )),
            _ => {}
        }
        let blobs = resolved.blobs();
        outcome.blobs = blobs.len();
        let image = &job.reference;
        let results: Vec<(u64, Result<BlobOutcome, FetchError>)> =
            futures_util::stream::iter(blobs)
                .map(|(digest, size)| async move { (size, self.blob(image, &digest, size).await) })
                .buffer_unordered(BLOBS_PER_IMAGE)
                .collect()
                .await;
        for (size, r) in results {
            match r {
                Ok(BlobOutcome::Cached) => outcome.blobs_cached += 1,
                Ok(BlobOutcome::Fetched) => {
                    outcome.blobs_fetched += 1;
                    outcome.bytes_fetched += size;
                }
                Err(e) if outcome.error.is_none() => outcome.error = Some(e.to_string()),
                Err(_) => {}
            }
        }
        outcome
    }

    async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobOutcome, FetchError> {
        // Which image the blob is for: bars of several images run at once.
        let short = format!("{} {}", image_label(reference), &digest.hex()[..12]);
        tracing::debug!("{reference}: blob {digest} ({size} bytes)");
        match self
            .fetcher
            .blob(
                &reference.registry,
                &reference.repository,
                digest,
                Some(size),
            )
            .await
        {
            BlobFetch::Cached => {
                if self.count(digest, size, false) {
                    self.say(&format!("{short}: already cached ({})", human_bytes(size)));
                }
                Ok(BlobOutcome::Cached)
            }
            BlobFetch::InFlight(mut rx) => {
                let bar = self.progress.blob_bar(&short, size);
                let result = loop {
                    match &*rx.borrow_and_update() {
                        BlobState::Done => break Ok(()),
                        BlobState::Failed(e) => break Err(FetchError::Shared(e.clone())),
                        BlobState::Downloading { written, .. } => bar.set_position(*written),
                        BlobState::Queued | BlobState::Verified { .. } => {}
                    }
                    if rx.changed().await.is_err() {
                        break crate::fetch::wait_blob(rx).await;
                    }
                };
                bar.finish_and_clear();
                result?;
                if self.count(digest, size, true) {
                    self.say(&format!("{short}: fetched ({})", human_bytes(size)));
                }
                Ok(BlobOutcome::Fetched)
            }
        }
    }

    /// Records a blob for the run's summary; true the first time this run sees it.
    fn count(&self, digest: &Digest, size: u64, fetched: bool) -> bool {
        let Ok(mut c) = self.counted.lock() else {
            return false;
        };
        if fetched {
            c.fetched.insert(digest.clone(), size);
        }
        c.seen.insert(digest.clone())
    }

    fn say(&self, line: &str) {
        if self.output == Output::Human {
            self.progress.println(line);
        }
    }
}

/// An image as people write it, short enough for a progress bar's label:
/// `alpine:3.20`, `ghcr.io/org/app:1`, the digest cut to 12 hex digits.
fn image_label(reference: &Reference) -> String {
    let mut name = match reference.registry.as_str() {
        crate::reference::DOCKER_HUB => reference
            .repository
            .strip_prefix("library/")
            .unwrap_or(&reference.repository)
            .to_string(),
        registry => format!("{registry}/{}", reference.repository),
    };
    if let Some(tag) = &reference.tag {
        name.push(':');
        name.push_str(tag);
    } else if let Some(digest) = &reference.digest {
        name.push('@');
        name.push_str(&digest.hex()[..12]);
    }
    // The end (repository name and tag) says the most.
    let chars = name.chars().count();
    if chars > MAX_LABEL {
        let tail: String = name.chars().skip(chars - (MAX_LABEL - 1)).collect();
        name = format!("…{tail}");
    }
    name
}

/// Characters of an image's name in a progress bar's label.
const MAX_LABEL: usize = 28;

/// Prints per-image results (and, for prefetch, the summary); picks the exit code.
pub fn render(output: Output, summary: &Summary, with_summary: bool) -> anyhow::Result<ExitCode> {
    // On stderr in every form (in JSON they are in the document as well):
    // no failure goes unsaid.
    for img in &summary.images {
        let Some(e) = img.error.as_ref() else {
            continue;
        };
        if !img.stopped {
            eprintln!("error: {}", image_error(&img.reference, e));
        } else if !with_summary {
            // `dpx prefetch` lists the images left for the quota once, itself.
            eprintln!(
                "error: {}\n  hint: not asked upstream to save the pull quota; `dpx ratelimit` shows what is left, and the pull works again once quota shows",
                image_error(&img.reference, e)
            );
        }
    }
    crate::stdout::with_stdout(|out| match output {
        Output::Json => crate::stdout::write_json(out, summary),
        Output::Human | Output::Quiet => {
            for img in &summary.images {
                let Some(d) = img.digest.as_ref().filter(|_| img.error.is_none()) else {
                    continue;
                };
                if output == Output::Quiet {
                    writeln!(out, "{}@{d}", strip_tag(&img.reference))?;
                    continue;
                }
                let platforms = if img.platforms.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", img.platforms.join(", "))
                };
                writeln!(
                    out,
                    "{}: {d}{platforms} (manifest {}, {} blobs: {} fetched, {} cached, {})",
                    img.reference,
                    img.manifest.unwrap_or("?"),
                    img.blobs,
                    img.blobs_fetched,
                    img.blobs_cached,
                    human_bytes(img.bytes_fetched)
                )?;
            }
            if with_summary && output == Output::Human {
                // Images left for the quota did not fail: say how many and why.
                let left = summary.images.iter().filter(|i| i.stopped).count();
                let failed = summary.images_failed.saturating_sub(left);
                let left = match (&summary.stopped, left) {
                    (Some(why), 1..) => format!(", {left} left to save the pull quota: {why}"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{} images ({} failed{left}), {} blobs fetched, {} already cached, {} in {:.1}s",
                    summary.images.len(),
                    failed,
                    summary.blobs_fetched,
                    summary.blobs_cached,
                    human_bytes(summary.bytes_fetched),
                    summary.seconds
                )?;
            }
            Ok(())
        }
    })?;
    Ok(if summary.images_failed > 0 {
        ExitCode::from(crate::exit::FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// `REF: message`, unless the message already starts with the reference.
fn image_error(reference: &str, error: &str) -> String {
    if error.starts_with(reference) {
        error.to_string()
    } else {
        format!("{reference}: {error}")
    }
}

/// `docker.io/library/a:1` -> `docker.io/library/a` for `name@digest` output.
fn strip_tag(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].find(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    }
}

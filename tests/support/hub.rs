//! A fake Docker Hub: the registry API over content the test adds, the token
//! endpoint (anonymous or Basic), rate-limit headers, blob GETs redirected to a
//! second "CDN" listener, per-route request counters, and fault knobs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest as _, Sha256};

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 503 UNAVAILABLE on every registry route.
    Outage,
    /// 429 TOOMANYREQUESTS like Docker Hub's.
    TooManyRequests,
    /// Blob bodies sent in 64 KiB chunks with this pause between them.
    SlowBody(Duration),
    /// Blob bodies end halfway (full Content-Length advertised).
    TruncatedBody,
    /// Blob bodies with flipped bytes, same length.
    CorruptBody,
    /// The connection is closed without an answer.
    ConnectionReset,
    /// Blob bodies send their first half, then wait until `release()`.
    StallHalfway,
    /// Blob bodies send this many bytes, then nothing more (until the hub drops).
    StallAfter(usize),
    /// The request is read and never answered (until the hub drops).
    NoAnswer,
    /// Blob bodies without Content-Length (chunked) that never end; a HEAD
    /// answers without Content-Length too.
    EndlessBody,
    /// 403 DENIED whose message holds terminal escapes (clear screen, window
    /// title, bell) and is 100 KB long: [`HOSTILE_MESSAGE_START`] and padding.
    HostileError,
}

/// How a [`Fault::HostileError`] message begins.
pub const HOSTILE_MESSAGE_START: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31mdenied";

fn hostile_error() -> Response<Body> {
    let message = format!("{HOSTILE_MESSAGE_START}{}", "\u{1b}[1mA".repeat(20_000));
    error(StatusCode::FORBIDDEN, "DENIED", &message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Ping,
    Token,
    ManifestGet,
    ManifestHead,
    BlobGet,
    BlobHead,
    /// `GET /v2/<repo>/tags/list`, one per page.
    TagsList,
    CdnBlobGet,
    /// `GET /v2/<name>/referrers/<digest>`, answered or not (`set_referrers_api`).
    ReferrersGet,
    /// Registry requests answered 401 (no or wrong token).
    Unauthorized,
}

impl Route {
    /// Every route the fake hub counts.
    pub const ALL: [Route; 10] = [
        Route::Ping,
        Route::Token,
        Route::ManifestGet,
        Route::ManifestHead,
        Route::BlobGet,
        Route::BlobHead,
        Route::TagsList,
        Route::CdnBlobGet,
        Route::ReferrersGet,
        Route::Unauthorized,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    Standard,
    XPrefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStyle {
    Token,
    AccessToken,
    Both,
}

struct RateLimit {
    limit: u64,
    remaining: u64,
    window: u64,
    style: HeaderStyle,
    /// `set_ratelimit_refill`: the quota comes back `window` seconds after
    /// it ran out (`exhausted`), and 429s say when in `Retry-After`.
    refill: bool,
    exhausted: Option<Instant>,
    /// `set_ratelimit_rolling`: each counted GET stops counting this long
    /// after it was made (Docker Hub's rolling window, shortened).
    rolling: Option<Duration>,
    /// The counted GETs still in the rolling window, oldest first.
    pulls: std::collections::VecDeque<Instant>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, Bytes>,
    /// digest -> (media type, bytes)
    manifests: HashMap<String, (String, Bytes)>,
    /// (repo, tag) -> digest
    tags: HashMap<(String, String), String>,
    /// token -> repositories it grants
    tokens: HashMap<String, Vec<String>>,
    fault: Option<(Fault, Option<usize>)>,
    basic: Option<(String, String)>,
    last_basic_user: Option<String>,
    rate: Option<RateLimit>,
    token_style: Option<(TokenStyle, Option<u64>)>,
    no_redirect: bool,
    cdn_saw_auth: bool,
    /// Tag lists in pages of this many, with a `Link` to the next.
    tag_page_size: Option<usize>,
    /// Faults apply only to requests whose path contains this.
    fault_path: Option<String>,
    /// Sent with 503 and 429 answers.
    retry_after: Option<String>,
    /// Manifest GET bodies sent one byte per this interval.
    manifest_drip: Option<Duration>,
    /// Blob GETs whose path contains this redirect to themselves.
    redirect_loop: Option<String>,
    /// Blob GETs whose path contains this answer with a 1 MiB header.
    huge_head: Option<String>,
    /// 503 and 429 answers stream an error body that never ends.
    endless_error_bodies: bool,
    /// Bytes of padding added to token replies.
    token_padding: usize,
    /// Manifest GETs wait this long before answering.
    manifest_delay: Option<Duration>,
    /// Manifest HEADs wait this long before answering.
    manifest_head_delay: Option<Duration>,
    /// Blob GETs answer 200 with the whole body whatever their Range.
    ignore_range: bool,
    /// A pause between the 64 KiB chunks of every blob body (faults or not).
    body_pause: Option<Duration>,
    /// Whether the referrers API exists (Docker Hub today: no, 404).
    referrers_api: bool,
    /// Repositories that have no blobs and no manifests by digest (only
    /// their tags resolve), like a repository that never had them pushed.
    bare_repos: std::collections::HashSet<String>,
    /// Every token request, in order.
    token_requests: Vec<TokenRequest>,
    /// token -> the user it was issued to (Basic auth), for `docker-ratelimit-source`.
    issued_to: HashMap<String, String>,
    /// Token requests answer 429 TOOMANYREQUESTS.
    token_too_many: bool,
    /// Sent as they are on manifest replies (GET and HEAD) and on 429/503 answers.
    raw_ratelimit_headers: Vec<(String, String)>,
    /// Repositories are served only under `/v2/<prefix>/<repo>/...` (a
    /// GitLab Dependency Proxy group path, a Harbor proxy project).
    path_prefix: Option<String>,
    /// The token realm is GitLab's `/jwt/auth` (service `dependency_proxy`)
    /// and hands out JWT-shaped tokens.
    gitlab_realm: bool,
    /// An account the token endpoint knows: anonymous tokens are still
    /// given, but Basic credentials that are not this one get a 401.
    account: Option<(String, String)>,
    /// Per authorized registry request: its route and its token's user.
    served_as: Vec<(Route, Option<String>)>,
    /// The registry challenges with Basic (no token service) and takes only this user:password.
    basic_registry: Option<(String, String)>,
    /// Manifest requests (GET and HEAD) answer `200 text/html` with a login
    /// page, as a captive portal or a proxy's sign-in page does.
    captive_portal: bool,
    /// Manifest replies carry this Content-Type instead of the manifest's.
    manifest_content_type: Option<String>,
    // fault matrix
    /// `set_reply_on`: (path part, reply, times left or `None`: always).
    matrix: Option<(String, Reply, Option<usize>)>,
    /// `set_token_reply`: how the token endpoint misbehaves.
    token_reply: Option<TokenReply>,
    /// Replies the two knobs above changed (faults injected).
    matrix_injected: usize,
}

/// One request to the token endpoint, as the hub saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Whether it carried an `Authorization` header at all.
    pub authorized: bool,
    /// The Basic user, when it carried Basic credentials.
    pub user: Option<String>,
    pub scopes: Vec<String>,
}

/// What slow and stalled bodies watch between chunks.
struct BodyGate {
    /// `Fault::StallHalfway` bodies wait while this is set (`release` clears it).
    stalled: AtomicBool,
    /// Set on drop: bodies stop instead of arming timers on a runtime that is
    /// shutting down (which tokio reports as a panic).
    closing: AtomicBool,
}

impl BodyGate {
    fn holds(&self) -> bool {
        self.stalled.load(Ordering::SeqCst) && !self.closing.load(Ordering::SeqCst)
    }
}

struct Shared {
    gate: Arc<BodyGate>,
    state: Mutex<State>,
    counts: Mutex<HashMap<Route, usize>>,
    /// Every counted request: its route, path and arrival.
    log: Mutex<Vec<(Route, String, Instant)>>,
    url: String,
    cdn_url: String,
    next_token: AtomicUsize,
}

pub struct FakeHub {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    /// The accept loops of the API and CDN listeners (`stop_listening` ends them).
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake hub runtime");
        let (api, cdn) = runtime.block_on(async {
            (
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind hub"),
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind cdn"),
            )
        });
        let shared = Arc::new(Shared {
            gate: Arc::new(BodyGate {
                stalled: AtomicBool::new(true),
                closing: AtomicBool::new(false),
            }),
            state: Mutex::default(),
            counts: Mutex::default(),
            log: Mutex::default(),
            url: format!("http://{}", api.local_addr().expect("addr")),
            cdn_url: format!("http://{}", cdn.local_addr().expect("addr")),
            next_token: AtomicUsize::new(1),
        });
        let listeners = [(api, false), (cdn, true)]
            .into_iter()
            .map(|(listener, is_cdn)| runtime.spawn(serve(listener, Arc::clone(&shared), is_cdn)))
            .collect();
        FakeHub {
            shared,
            runtime: Some(runtime),
            listeners,
        }
    }

    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_blob(&self, data: Vec<u8>) -> String {
        let d = digest_of(&data);
        self.state().blobs.insert(d.clone(), Bytes::from(data));
        d
    }

    pub fn add_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        body: Vec<u8>,
    ) -> String {
        let d = digest_of(&body);
        let mut st = self.state();
        st.manifests
            .insert(d.clone(), (media_type.to_string(), Bytes::from(body)));
        if let Some(t) = tag {
            st.tags.insert((repo.to_string(), t.to_string()), d.clone());
        }
        d
    }

    /// The length of a stored manifest (for an index's descriptors).
    pub fn manifest_len(&self, digest: &str) -> usize {
        self.state()
            .manifests
            .get(digest)
            .map_or(0, |(_, b)| b.len())
    }

    /// Random layers of the given sizes (deterministic from `seed`), a config
    /// and an OCI image manifest; returns the manifest digest.
    pub fn add_image(&self, repo: &str, tag: &str, layer_sizes: &[usize], seed: u64) -> String {
        let layers: Vec<Vec<u8>> = layer_sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| noise(seed.wrapping_mul(1000).wrapping_add(i as u64), n))
            .collect();
        self.add_image_layers(repo, tag, layers, seed)
    }

    /// Like `add_image`, with a first layer shared by every image given the same base seed and size.
    pub fn add_image_with_base(
        &self,
        repo: &str,
        tag: &str,
        base_size: usize,
        base_seed: u64,
        sizes: &[usize],
        seed: u64,
    ) -> String {
        let mut layers = vec![noise(base_seed.wrapping_mul(7919), base_size)];
        layers.extend(
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| noise(seed.wrapping_mul(1000).wrapping_add(i as u64), n)),
        );
        self.add_image_layers(repo, tag, layers, seed)
    }

    fn add_image_layers(&self, repo: &str, tag: &str, layers: Vec<Vec<u8>>, seed: u64) -> String {
        let descs: Vec<_> = layers
            .into_iter()
            .map(|l| {
                let size = l.len();
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self.add_blob(l), "size": size
                })
            })
            .collect();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "seed": seed,
            "rootfs": {"type": "layers", "diff_ids": descs.iter().map(|d| d["digest"].clone()).collect::<Vec<_>>()}
        })
        .to_string()
        .into_bytes();
        let config_size = config.len();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.add_blob(config), "size": config_size},
            "layers": descs
        });
        self.add_manifest(
            repo,
            Some(tag),
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().into_bytes(),
        )
    }

    /// The layer digests of an image manifest added with `add_image`.
    pub fn layers(&self, manifest: &str) -> Vec<String> {
        let bytes = self
            .state()
            .manifests
            .get(manifest)
            .map(|(_, b)| b.clone())
            .expect("manifest added");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest json");
        v["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest").to_string())
            .collect()
    }

    /// Forgets every token handed out, as an expiry would: the next request
    /// with an old token gets a 401 challenge.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Serves other bytes under the manifest `digest` (its tag and the
    /// Docker-Content-Digest header still name `digest`).
    pub fn tamper_manifest(&self, digest: &str) {
        if let Some((_, bytes)) = self.state().manifests.get_mut(digest) {
            let mut changed = bytes.to_vec();
            changed.push(b'\n');
            *bytes = Bytes::from(changed);
        }
    }

    /// Lets stalled bodies (`Fault::StallHalfway`) finish.
    pub fn release(&self) {
        self.shared.gate.stalled.store(false, Ordering::SeqCst);
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = Some((fault, None));
    }

    /// The fault for the next `times` matching requests only.
    pub fn set_fault_for(&self, fault: Fault, times: usize) {
        self.state().fault = Some((fault, Some(times)));
    }

    /// Like `set_fault_for` (`times: None`: always), only for request paths
    /// containing `path_part` (e.g. `/cdn/<digest>` for one blob at the CDN).
    pub fn set_fault_on(&self, path_part: &str, fault: Fault, times: Option<usize>) {
        let mut st = self.state();
        st.fault = Some((fault, times));
        st.fault_path = Some(path_part.to_string());
    }

    /// A `Retry-After` value for every 503 and 429 answer.
    pub fn set_retry_after(&self, value: Option<&str>) {
        self.state().retry_after = value.map(str::to_string);
    }

    /// 503 and 429 answers carry an error body that never ends.
    pub fn set_endless_error_bodies(&self, on: bool) {
        self.state().endless_error_bodies = on;
    }

    /// Token replies padded with `bytes` of whitespace-free filler.
    pub fn set_token_padding(&self, bytes: usize) {
        self.state().token_padding = bytes;
    }

    /// Manifest GET bodies trickle one byte per `interval`.
    pub fn set_manifest_drip(&self, interval: Option<Duration>) {
        self.state().manifest_drip = interval;
    }

    /// Blob GETs of paths containing `path_part` redirect to themselves forever.
    pub fn set_redirect_loop(&self, path_part: Option<&str>) {
        self.state().redirect_loop = path_part.map(str::to_string);
    }

    /// Blob GETs of paths containing `path_part` answer with a head larger than
    /// any client accepts.
    pub fn set_huge_head(&self, path_part: Option<&str>) {
        self.state().huge_head = path_part.map(str::to_string);
    }

    /// Manifest requests (GET and HEAD) answer `200 text/html` with a login
    /// page and no Docker-Content-Digest, as a captive portal does; `false`
    /// serves the manifests again.
    pub fn set_captive_portal(&self, on: bool) {
        self.state().captive_portal = on;
    }

    /// Manifest replies (GET and HEAD) carry this Content-Type instead of the
    /// manifest's own (`None`: the manifest's again).
    pub fn set_manifest_content_type(&self, content_type: Option<&str>) {
        self.state().manifest_content_type = content_type.map(str::to_string);
    }

    /// Arrival times of the requests on `route` whose path contains `path_part`.
    pub fn request_times(&self, route: Route, path_part: &str) -> Vec<Instant> {
        self.shared
            .log
            .lock()
            .map(|log| {
                log.iter()
                    .filter(|(r, p, _)| *r == route && p.contains(path_part))
                    .map(|(_, _, at)| *at)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many requests on `route` had a path containing `path_part`.
    pub fn count_path(&self, route: Route, path_part: &str) -> usize {
        self.request_times(route, path_part).len()
    }

    /// Like Docker Hub: anonymous tokens are given, and so are tokens for
    /// this user with this password; any other Basic credentials get a 401.
    pub fn set_account(&self, user: &str, pass: &str) {
        self.state().account = Some((user.to_string(), pass.to_string()));
    }

    /// The user whose token each authorized request on `route` carried
    /// (`None`: an anonymous token), in arrival order.
    pub fn served_as(&self, route: Route) -> Vec<Option<String>> {
        self.state()
            .served_as
            .iter()
            .filter(|(r, _)| *r == route)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// Makes the registry API itself Basic-protected, as some private
    /// registries are: `WWW-Authenticate: Basic`, and only this user:password
    /// is let in (recorded in `served_as`).
    pub fn set_basic_registry(&self, user: &str, pass: &str) {
        self.state().basic_registry = Some((user.to_string(), pass.to_string()));
    }

    pub fn require_basic(&self, user: &str, pass: &str) {
        self.state().basic = Some((user.to_string(), pass.to_string()));
    }

    /// Every manifest GET spends one unit (HEAD doesn't); at 0, manifest GETs get 429.
    pub fn set_ratelimit(&self, limit: u64, remaining: u64, window_secs: u64, style: HeaderStyle) {
        self.state().rate = Some(RateLimit {
            limit,
            remaining,
            window: window_secs,
            style,
            refill: false,
            exhausted: None,
            rolling: None,
            pulls: std::collections::VecDeque::new(),
        });
    }

    /// Docker Hub's rolling window, shortened: every manifest GET counted
    /// from now on stops counting `window` after it was made, so quota comes
    /// back one pull at a time. The remaining count is `set_ratelimit`'s
    /// limit less the GETs in the window; at 0, GETs get 429 with the quota
    /// headers and no `Retry-After` (unless `set_retry_after`), as Docker
    /// Hub's do. The headers' `w=` stays `set_ratelimit`'s `window_secs`.
    pub fn set_ratelimit_rolling(&self, window: Duration) {
        if let Some(rl) = self.state().rate.as_mut() {
            rl.rolling = Some(window);
            // Pulls already spent count as made now.
            let spent = rl.limit.saturating_sub(rl.remaining);
            rl.pulls = (0..spent).map(|_| Instant::now()).collect();
        }
    }

    /// Sets the remaining count of `set_ratelimit`'s quota.
    pub fn set_rate_remaining(&self, remaining: u64) {
        if let Some(rl) = self.state().rate.as_mut() {
            rl.remaining = remaining;
            rl.exhausted = None;
        }
    }

    /// Docker Hub's window, shortened: once `set_ratelimit`'s quota runs out,
    /// manifest GETs get 429 with `Retry-After` (the seconds left) and the
    /// quota headers, until the window (its `window_secs`) has passed since;
    /// then the quota is whole again.
    pub fn set_ratelimit_refill(&self, on: bool) {
        if let Some(rl) = self.state().rate.as_mut() {
            rl.refill = on;
        }
    }

    /// Manifest HEADs answer after `delay`: concurrent checks overlap.
    pub fn set_manifest_head_delay(&self, delay: Duration) {
        self.state().manifest_head_delay = Some(delay);
    }

    /// Pages tag lists (`n` tags each, `Link: <...>; rel="next"`), as
    /// registries with large repositories do.
    pub fn set_tag_page_size(&self, n: Option<usize>) {
        self.state().tag_page_size = n;
    }

    /// Moves or adds a tag to an existing manifest.
    pub fn tag(&self, repo: &str, tag: &str, digest: &str) {
        self.state()
            .tags
            .insert((repo.to_string(), tag.to_string()), digest.to_string());
    }

    /// Manifest GETs (not HEADs) answer after `delay`: concurrent fetches overlap.
    /// Blobs and manifests by digest in `repo` answer 404 (`BLOB_UNKNOWN`,
    /// `MANIFEST_UNKNOWN`): content cached through another repository is not
    /// this one's.
    pub fn make_bare(&self, repo: &str) {
        self.shared.state().bare_repos.insert(repo.to_string());
    }

    pub fn set_manifest_delay(&self, delay: Duration) {
        self.state().manifest_delay = Some(delay);
    }

    /// Blob GETs ignore `Range` and send the whole body with 200, as some CDNs do.
    pub fn set_ignore_range(&self, on: bool) {
        self.state().ignore_range = on;
    }

    /// Every blob body pauses this long between its 64 KiB chunks, whatever the fault.
    pub fn set_body_pause(&self, pause: Duration) {
        self.state().body_pause = Some(pause);
    }

    pub fn set_redirect_blobs(&self, on: bool) {
        self.state().no_redirect = !on;
    }

    /// Turns the referrers API on (answered from the manifests' `subject`
    /// fields) or off (404, as Docker Hub answers today; the default).
    pub fn set_referrers_api(&self, on: bool) {
        self.state().referrers_api = on;
    }

    pub fn set_token_response(&self, style: TokenStyle, expires_in: Option<u64>) {
        self.state().token_style = Some((style, expires_in));
    }

    pub fn count(&self, route: Route) -> usize {
        self.shared
            .counts
            .lock()
            .map(|c| c.get(&route).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        if let Ok(mut c) = self.shared.counts.lock() {
            c.clear();
        }
        if let Ok(mut log) = self.shared.log.lock() {
            log.clear();
        }
    }

    pub fn cdn_saw_authorization(&self) -> bool {
        self.state().cdn_saw_auth
    }

    /// Every token request so far: whether it was authenticated, and for what.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().token_requests.clone()
    }

    /// The token endpoint answers 429 TOOMANYREQUESTS (with `set_retry_after`'s value).
    pub fn set_token_too_many(&self, on: bool) {
        self.state().token_too_many = on;
    }

    /// Rate-limit headers sent verbatim (odd spellings and forms) on every
    /// manifest reply, HEAD included, and on 429/503 answers; `&[]` stops them.
    /// Unlike `set_ratelimit`, nothing is counted down.
    pub fn set_raw_ratelimit_headers(&self, headers: &[(&str, &str)]) {
        self.state().raw_ratelimit_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// `ratelimitpreview/test:latest`, the image Docker documents for checking
    /// the quota with a HEAD.
    pub fn add_ratelimit_preview(&self) -> String {
        self.add_image("ratelimitpreview/test", "latest", &[64], 0x4a7e)
    }

    /// Serves repositories only under `/v2/<prefix>/...`, as GitLab's
    /// Dependency Proxy (`my-group/dependency_proxy/containers`) or a Harbor
    /// proxy project does; content is still added under the plain names.
    pub fn set_path_prefix(&self, prefix: Option<&str>) {
        self.state().path_prefix = prefix.map(|p| p.trim_matches('/').to_string());
    }

    /// A GitLab-like token realm: `/jwt/auth` with service `dependency_proxy`,
    /// JWT-shaped tokens. With `require_basic` it refuses anonymous and wrong
    /// credentials (401), as GitLab does.
    pub fn set_gitlab_realm(&self, on: bool) {
        self.state().gitlab_realm = on;
    }

    /// Who asked for each token so far: the Basic user, `None` when anonymous.
    pub fn token_users(&self) -> Vec<Option<String>> {
        let st = self.state();
        st.token_requests.iter().map(|t| t.user.clone()).collect()
    }

    /// Closes the listeners (API and CDN): new connections are refused, as
    /// from a host that is down.
    pub fn stop_listening(&self) {
        for task in &self.listeners {
            task.abort();
        }
        // Wait until the listening sockets are really closed.
        let addr = self.shared.url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    // fault matrix: knobs for faults the older ones do not make (tests/it/fault_matrix.rs).

    /// Requests (registry API or CDN) whose path contains `path_part` get
    /// `reply` instead of their answer, the next `times` of them (`None`:
    /// always). Body faults (`Short` .. `Drip`) apply to GETs only; a HEAD is
    /// answered as usual. `None` for `reply` turns the knob off.
    pub fn set_reply_on(&self, path_part: &str, reply: Option<Reply>, times: Option<usize>) {
        self.state().matrix = reply.map(|r| (path_part.to_string(), r, times));
    }

    /// How the token endpoint misbehaves (`None`: it answers again).
    pub fn set_token_reply(&self, reply: Option<TokenReply>) {
        self.state().token_reply = reply;
    }

    /// How many replies `set_reply_on` and `set_token_reply` changed so far.
    pub fn matrix_injected(&self) -> usize {
        self.state().matrix_injected
    }

    // --- raw HTTP and load (issue 19) ---

    /// Every counted request since the last `reset_counts`: route and path.
    pub fn requests(&self) -> Vec<(Route, String)> {
        self.shared
            .log
            .lock()
            .map(|log| log.iter().map(|(r, p, _)| (*r, p.clone())).collect())
            .unwrap_or_default()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shared.gate.closing.store(true, Ordering::SeqCst);
        if let Some(rt) = self.runtime.take() {
            // Let bodies parked in a timer notice `closing` before the timers go.
            std::thread::sleep(Duration::from_millis(30));
            rt.shutdown_background();
        }
    }
}

/// Pseudo-random, incompressible bytes, deterministic per seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, is_cdn: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(&shared, req, is_cdn).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Sentinel: the handler wants the connection dropped without an answer.
fn reset() -> Response<Body> {
    let body = StreamBody::new(futures_util::stream::once(async {
        Err::<Frame<Bytes>, _>(std::io::Error::other("reset"))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "1000")
        .body(BodyExt::boxed(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

impl Shared {
    fn bump(&self, route: Route) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(route).or_insert(0) += 1;
        }
    }

    fn bump_path(&self, route: Route, path: &str) {
        self.bump(route);
        if let Ok(mut log) = self.log.lock() {
            log.push((route, path.to_string(), Instant::now()));
        }
    }

    /// A 503 or 429 answer, with the configured `Retry-After`.
    fn unavailable(&self, resp: Response<Body>) -> Response<Body> {
        let mut resp = resp;
        let (retry_after, endless) = {
            let st = self.state();
            add_headers(&mut resp, &st.raw_ratelimit_headers);
            (st.retry_after.clone(), st.endless_error_bodies)
        };
        if let Some(v) = retry_after
            && let Ok(v) = http::HeaderValue::from_str(&v)
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if endless {
            let gate = Arc::clone(&self.gate);
            let filler = Bytes::from(vec![b'x'; 1024]);
            let stream = futures_util::stream::unfold((), move |()| {
                let (gate, filler) = (Arc::clone(&gate), filler.clone());
                async move {
                    (!gate.closing.load(Ordering::SeqCst))
                        .then(|| (Ok::<_, std::io::Error>(Frame::data(filler)), ()))
                }
            });
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, BodyExt::boxed(StreamBody::new(stream)));
        }
        resp
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the current fault if it applies (`body`: whether this reply
    /// carries blob bytes), counting down a `set_fault_for`.
    fn take_fault(&self, body: bool, path: &str) -> Fault {
        let mut st = self.state();
        if st.fault_path.as_ref().is_some_and(|p| !path.contains(p)) {
            return Fault::None;
        }
        let applies = |f: Fault| {
            body || matches!(
                f,
                Fault::Outage
                    | Fault::TooManyRequests
                    | Fault::ConnectionReset
                    | Fault::NoAnswer
                    | Fault::HostileError
            )
        };
        match st.fault {
            Some((f, None)) if applies(f) => f,
            Some((f, Some(n))) if n > 0 && applies(f) => {
                st.fault = Some((f, Some(n - 1)));
                f
            }
            _ => Fault::None,
        }
    }

    fn challenge(&self, repo: Option<&str>) -> Response<Body> {
        let mut value = if self.state().gitlab_realm {
            format!(
                "Bearer realm=\"{}/jwt/auth\",service=\"dependency_proxy\"",
                self.url
            )
        } else {
            format!("Bearer realm=\"{}/token\",service=\"fakehub\"", self.url)
        };
        if let Some(r) = repo {
            value.push_str(&format!(",scope=\"repository:{r}:pull\""));
        }
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }

    /// Like Docker Hub, pulls count against the account a token was issued to
    /// (`docker-ratelimit-source: account-<user>`), else the client's IP.
    fn counted_against(&self, req: &Request<Incoming>, mut resp: Response<Body>) -> Response<Body> {
        let user = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| self.state().issued_to.get(t).cloned());
        if let Some(user) = user
            && resp.headers().contains_key("docker-ratelimit-source")
            && let Ok(v) = http::HeaderValue::try_from(format!("account-{user}"))
        {
            resp.headers_mut().insert("docker-ratelimit-source", v);
        }
        resp
    }

    /// Notes whose token an authorized request carried.
    fn record_identity(&self, req: &Request<Incoming>, route: Route) {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let mut st = self.state();
        let user = st.issued_to.get(token).cloned();
        st.served_as.push((route, user));
    }

    /// For a Basic-protected registry (`set_basic_registry`): whether the
    /// request carries its user:password.
    fn basic_registry_allows(&self, req: &Request<Incoming>) -> Option<bool> {
        let (user, pass) = self.state().basic_registry.clone()?;
        let expected = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{user}:{pass}")
            )
        );
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Some(given == Some(expected.as_str()))
    }

    fn basic_challenge(&self) -> Response<Body> {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"fakehub\""),
        );
        resp
    }

    fn authorized(&self, req: &Request<Incoming>, repo: Option<&str>) -> bool {
        let Some(token) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let st = self.state();
        match (st.tokens.get(token), repo) {
            (Some(_), None) => true,
            (Some(repos), Some(r)) => repos.iter().any(|x| x == r),
            (None, _) => false,
        }
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>, is_cdn: bool) -> Response<Body> {
    let path = req.uri().path().to_string();
    let head = req.method() == http::Method::HEAD;
    if is_cdn {
        shared.bump_path(Route::CdnBlobGet, &path);
        if req.headers().contains_key(header::AUTHORIZATION) {
            shared.state().cdn_saw_auth = true;
        }
        if let Some(resp) = matrix_reply(shared, &path, head).await {
            return resp;
        }
        let digest = path.trim_start_matches("/cdn/").to_string();
        return blob_response(shared, &req, &path, &digest, head).await;
    }
    if path == "/token" || (path == "/jwt/auth" && shared.state().gitlab_realm) {
        shared.bump(Route::Token);
        if let Some(resp) = token_fault(shared).await {
            return resp;
        }
        return token(shared, &req);
    }
    if path == "/v2/" || path == "/v2" {
        shared.bump(Route::Ping);
        match shared.take_fault(false, &path) {
            Fault::Outage => {
                return shared.unavailable(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "down",
                ));
            }
            Fault::TooManyRequests => return shared.unavailable(too_many()),
            Fault::ConnectionReset => return reset(),
            _ => {}
        }
        match shared.basic_registry_allows(&req) {
            Some(true) => return full_json("{}"),
            Some(false) => return shared.basic_challenge(),
            None => {}
        }
        if !shared.authorized(&req, None) {
            return shared.challenge(None);
        }
        return full_json("{}");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no route");
    };
    let prefix = shared.state().path_prefix.clone();
    if let Some(i) = rest.rfind("/referrers/") {
        let (repo, subject) = (&rest[..i], &rest[i + 11..]);
        if !shared.authorized(&req, Some(repo)) {
            shared.bump(Route::Unauthorized);
            return shared.challenge(Some(repo));
        }
        shared.bump(Route::ReferrersGet);
        if unprefixed(prefix.as_deref(), repo).is_none() {
            return name_unknown();
        }
        match shared.take_fault(false, &path) {
            Fault::Outage => return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "down"),
            Fault::TooManyRequests => return too_many(),
            Fault::ConnectionReset => return reset(),
            _ => {}
        }
        return referrers(shared, subject);
    }
    let (repo, kind, reference) = match (
        rest.rfind("/manifests/"),
        rest.rfind("/blobs/"),
        rest.strip_suffix("/tags/list"),
    ) {
        (Some(i), _, _) => (&rest[..i], "manifests", &rest[i + 11..]),
        (None, Some(i), _) => (&rest[..i], "blobs", &rest[i + 7..]),
        (None, None, Some(repo)) => (repo, "tags", "list"),
        _ => return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no route"),
    };
    let route = match (kind, head) {
        ("manifests", false) => Route::ManifestGet,
        ("manifests", true) => Route::ManifestHead,
        ("tags", _) => Route::TagsList,
        (_, false) => Route::BlobGet,
        (_, true) => Route::BlobHead,
    };
    // Like Docker Hub, a request turned away for want of a token is not a
    // pull: it is counted apart, so the route counters mean real requests.
    if let Some(allowed) = shared.basic_registry_allows(&req) {
        if !allowed {
            shared.bump(Route::Unauthorized);
            return shared.basic_challenge();
        }
        let user = shared.state().basic_registry.clone().map(|(u, _)| u);
        shared.state().served_as.push((route, user));
    } else if !shared.authorized(&req, Some(repo)) {
        shared.bump(Route::Unauthorized);
        return shared.challenge(Some(repo));
    } else {
        shared.record_identity(&req, route);
    }
    shared.bump_path(route, &path);
    if let Some(resp) = matrix_reply(shared, &path, head).await {
        return resp;
    }
    // The token covered the name as asked; the content is under the plain name.
    let Some(repo) = unprefixed(prefix.as_deref(), repo) else {
        return name_unknown();
    };
    let redirect = kind == "blobs" && !head && !shared.state().no_redirect;
    // Body faults belong to the hop that sends the bytes.
    let fault = shared.take_fault(kind == "blobs" && !redirect, &path);
    match fault {
        Fault::Outage => {
            return shared.unavailable(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the fake hub is down",
            ));
        }
        Fault::TooManyRequests => return shared.unavailable(too_many()),
        Fault::ConnectionReset => return reset(),
        Fault::NoAnswer => return silence(shared).await,
        Fault::HostileError => return hostile_error(),
        _ => {}
    }
    let by_digest = kind == "blobs" || (kind == "manifests" && reference.starts_with("sha256:"));
    if by_digest && shared.state().bare_repos.contains(repo) {
        return if kind == "blobs" {
            error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "blob unknown to repository",
            )
        } else {
            error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            )
        };
    }
    if kind == "manifests" {
        let (delay, drip) = {
            let st = shared.state();
            (st.manifest_delay, st.manifest_drip)
        };
        if let Some(d) = delay.filter(|_| !head) {
            tokio::time::sleep(d).await;
        }
        let head_delay = shared.state().manifest_head_delay;
        if let Some(d) = head_delay.filter(|_| head) {
            tokio::time::sleep(d).await;
        }
        let resp = shared.counted_against(&req, manifest(shared, repo, reference, head));
        return match drip.filter(|_| !head) {
            Some(interval) => dripping(shared, resp, interval).await,
            None => resp,
        };
    }
    if let Some(resp) = blob_trap(shared, &path, head) {
        return resp;
    }
    if kind == "tags" {
        return tags_list(shared, repo, req.uri().query());
    }
    if redirect {
        let location = format!("{}/cdn/{reference}?sig=fake", shared.cdn_url);
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, location)
            .body(full(""))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    blob_with_fault(shared, &req, reference, head, fault).await
}

/// Adds `(name, value)` pairs to a reply, skipping any that are not valid HTTP.
fn add_headers(resp: &mut Response<Body>, headers: &[(String, String)]) {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::try_from(k.as_str()),
            http::HeaderValue::try_from(v.as_str()),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
}

/// `repo` without the hub's path prefix; `None` when it lacks it.
fn unprefixed<'a>(prefix: Option<&str>, repo: &'a str) -> Option<&'a str> {
    match prefix {
        None => Some(repo),
        Some(p) => repo.strip_prefix(p).and_then(|r| r.strip_prefix('/')),
    }
}

fn name_unknown() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        "repository name not known to registry",
    )
}

fn too_many() -> Response<Body> {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading",
    )
}

/// A 429 as Docker Hub sends it when the quota is spent: the figures, and
/// when to come back.
fn refused_with_quota(rl: &RateLimit, left: Duration) -> Response<Body> {
    let mut resp = too_many();
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let headers = [
        ("retry-after", secs.max(1).to_string()),
        ("ratelimit-limit", format!("{};w={}", rl.limit, rl.window)),
        ("ratelimit-remaining", format!("0;w={}", rl.window)),
        ("docker-ratelimit-source", "127.0.0.1".to_string()),
    ];
    for (k, v) in headers {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// A 429 of the rolling window: the figures (none left), `Retry-After` only when set.
fn refused_rolling(rl: &RateLimit, retry_after: Option<&str>) -> Response<Body> {
    let mut resp = too_many();
    let mut headers = vec![
        ("ratelimit-limit", format!("{};w={}", rl.limit, rl.window)),
        ("ratelimit-remaining", format!("0;w={}", rl.window)),
        ("docker-ratelimit-source", "127.0.0.1".to_string()),
    ];
    if let Some(v) = retry_after {
        headers.push(("retry-after", v.to_string()));
    }
    for (k, v) in headers {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn full_json(s: &str) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(s.to_string()))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn token(shared: &Shared, req: &Request<Incoming>) -> Response<Body> {
    if shared.state().token_too_many {
        return shared.unavailable(too_many());
    }
    let query = req.uri().query().unwrap_or("");
    let repos: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, v)| {
            v.strip_prefix("repository:")
                .and_then(|s| s.rsplit_once(':'))
                .map(|(r, _)| r.to_string())
        })
        .collect();
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    let mut st = shared.state();
    if let Some((u, _)) = &basic {
        st.last_basic_user = Some(u.clone());
    }
    st.token_requests.push(TokenRequest {
        authorized: req.headers().contains_key(header::AUTHORIZATION),
        user: basic.as_ref().map(|(u, _)| u.clone()),
        scopes: url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .collect(),
    });
    if let Some(required) = &st.basic
        && basic.as_ref() != Some(required)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "incorrect username or password",
        );
    }
    if let (Some(account), Some(given)) = (&st.account, &basic)
        && account != given
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "incorrect username or password",
        );
    }
    let n = shared.next_token.fetch_add(1, Ordering::Relaxed);
    let token = if st.gitlab_realm {
        // Opaque to clients, but shaped like GitLab's: header.claims.signature.
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln{n}",
            b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            b64(serde_json::json!({"jti": n, "user": basic.as_ref().map(|(u, _)| u.clone())}))
        )
    } else {
        format!("tok{n}")
    };
    st.tokens.insert(token.clone(), repos);
    if let Some((u, _)) = &basic {
        st.issued_to.insert(token.clone(), u.clone());
    }
    let (style, expires) = st.token_style.unwrap_or((TokenStyle::Both, Some(300)));
    let mut body = serde_json::json!({"issued_at": "2026-11-25T00:00:00Z"});
    if matches!(style, TokenStyle::Token | TokenStyle::Both) {
        body["token"] = token.clone().into();
    }
    if matches!(style, TokenStyle::AccessToken | TokenStyle::Both) {
        body["access_token"] = token.into();
    }
    if let Some(e) = expires {
        body["expires_in"] = e.into();
    }
    if st.token_padding > 0 {
        body["padding"] = "p".repeat(st.token_padding).into();
    }
    full_json(&body.to_string())
}

/// The referrers API: an image index of every manifest whose `subject` is
/// `digest`, or 404 when the API is off.
fn referrers(shared: &Shared, digest: &str) -> Response<Body> {
    let st = shared.state();
    if !st.referrers_api {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route");
    }
    let mut found: Vec<serde_json::Value> = st
        .manifests
        .iter()
        .filter_map(|(d, (media_type, bytes))| {
            let m: serde_json::Value = serde_json::from_slice(bytes).ok()?;
            (m["subject"]["digest"].as_str() == Some(digest)).then(|| {
                let artifact_type = m
                    .get("artifactType")
                    .unwrap_or(&m["config"]["mediaType"])
                    .clone();
                let mut desc = serde_json::json!({
                    "mediaType": media_type, "digest": d, "size": bytes.len(),
                    "artifactType": artifact_type
                });
                if let Some(a) = m.get("annotations") {
                    desc["annotations"] = a.clone();
                }
                desc
            })
        })
        .collect();
    found.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": found
    })
    .to_string();
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/vnd.oci.image.index.v1+json",
        )
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn manifest(shared: &Shared, repo: &str, reference: &str, head: bool) -> Response<Body> {
    let mut st = shared.state();
    if st.captive_portal {
        let page = "<!DOCTYPE html><html><head><title>Sign in</title></head>\
            <body><form action=\"/login\">Please sign in to use this network.</form></body></html>";
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .header(header::CONTENT_LENGTH, page.len())
            .body(if head { full("") } else { full(page) })
            .unwrap_or_else(|_| Response::new(full("")));
    }
    let digest = if reference.starts_with("sha256:") {
        reference.to_string()
    } else {
        match st.tags.get(&(repo.to_string(), reference.to_string())) {
            Some(d) => d.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                );
            }
        }
    };
    let Some((media_type, bytes)) = st.manifests.get(&digest).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    let mut rl_headers = Vec::new();
    let retry_after = st.retry_after.clone();
    if let Some(rl) = st.rate.as_mut() {
        if let Some(window) = rl.rolling {
            while rl.pulls.front().is_some_and(|t| t.elapsed() >= window) {
                rl.pulls.pop_front();
            }
            rl.remaining = rl.limit.saturating_sub(rl.pulls.len() as u64);
            if !head {
                if rl.remaining == 0 {
                    return refused_rolling(rl, retry_after.as_deref());
                }
                rl.pulls.push_back(Instant::now());
            }
        }
        if rl.refill
            && let Some(at) = rl.exhausted
            && at.elapsed() >= Duration::from_secs(rl.window)
        {
            rl.remaining = rl.limit;
            rl.exhausted = None;
        }
        if !head {
            if rl.remaining == 0 && rl.refill {
                let at = *rl.exhausted.get_or_insert_with(Instant::now);
                let left = Duration::from_secs(rl.window).saturating_sub(at.elapsed());
                return refused_with_quota(rl, left);
            }
            if rl.remaining == 0 {
                return too_many();
            }
            rl.remaining -= 1;
        }
        let (l, r) = match rl.style {
            HeaderStyle::Standard => ("ratelimit-limit", "ratelimit-remaining"),
            HeaderStyle::XPrefixed => ("X-RateLimit-Limit", "X-RateLimit-Remaining"),
        };
        rl_headers.push((l, format!("{};w={}", rl.limit, rl.window)));
        rl_headers.push((r, format!("{};w={}", rl.remaining, rl.window)));
        rl_headers.push(("docker-ratelimit-source", "127.0.0.1".to_string()));
    }
    let raw = st.raw_ratelimit_headers.clone();
    let media_type = st.manifest_content_type.clone().unwrap_or(media_type);
    drop(st);
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("docker-content-digest", &digest);
    for (k, v) in rl_headers {
        b = b.header(k, v);
    }
    for (k, v) in raw {
        b = b.header(k, v);
    }
    b.body(if head { full("") } else { full(bytes) })
        .unwrap_or_else(|_| Response::new(full("")))
}

/// The repository's tags, sorted, paged from `last` when the hub pages
/// (the page size knob) or the client asks (`n`), as the distribution registry does.
fn tags_list(shared: &Shared, repo: &str, query: Option<&str>) -> Response<Body> {
    let st = shared.state();
    let mut tags: Vec<String> = st
        .tags
        .keys()
        .filter(|(r, _)| r == repo)
        .map(|(_, t)| t.clone())
        .collect();
    if tags.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    }
    tags.sort();
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if let Some(last) = params.get("last") {
        tags.retain(|t| t > last);
    }
    let page_size = params
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .or(st.tag_page_size);
    let mut link = None;
    if let Some(n) = page_size
        && n > 0
        && n < tags.len()
    {
        tags.truncate(n);
        let name = match &st.path_prefix {
            Some(p) => format!("{p}/{repo}"),
            None => repo.to_string(),
        };
        link = Some(format!(
            "</v2/{name}/tags/list?last={}&n={n}>; rel=\"next\"",
            tags[n - 1]
        ));
    }
    let body = serde_json::json!({"name": repo, "tags": tags}).to_string();
    let mut b = Response::builder().header(header::CONTENT_TYPE, "application/json");
    if let Some(l) = link {
        b = b.header(header::LINK, l);
    }
    b.body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Holds the request unanswered until the hub drops.
async fn silence(shared: &Shared) -> Response<Body> {
    while !shared.gate.closing.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reset()
}

/// The redirect loop and oversized head knobs, for blob GETs they name.
fn blob_trap(shared: &Shared, path: &str, head: bool) -> Option<Response<Body>> {
    if head {
        return None;
    }
    let (looping, huge) = {
        let st = shared.state();
        let hits = |p: &Option<String>| p.as_ref().is_some_and(|p| path.contains(p));
        (hits(&st.redirect_loop), hits(&st.huge_head))
    };
    if looping {
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, path)
            .body(full(""))
            .ok();
    }
    if huge {
        return Response::builder()
            .header("x-padding", "a".repeat(1024 * 1024))
            .body(full("never read"))
            .ok();
    }
    None
}

/// The same answer with its body sent one byte per `interval`.
async fn dripping(shared: &Shared, resp: Response<Body>, interval: Duration) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return Response::new(full(""));
    };
    let gate = Arc::clone(&shared.gate);
    let stream = futures_util::stream::unfold(0usize, move |next| {
        let (gate, bytes) = (Arc::clone(&gate), bytes.clone());
        async move {
            if next >= bytes.len() || gate.closing.load(Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(interval).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(bytes.slice(next..next + 1))),
                next + 1,
            ))
        }
    });
    Response::from_parts(parts, BodyExt::boxed(StreamBody::new(stream)))
}

async fn blob_response(
    shared: &Shared,
    req: &Request<Incoming>,
    path: &str,
    digest: &str,
    head: bool,
) -> Response<Body> {
    let fault = shared.take_fault(true, path);
    match fault {
        Fault::Outage => {
            return shared.unavailable(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the fake cdn is down",
            ));
        }
        Fault::TooManyRequests => return shared.unavailable(too_many()),
        Fault::ConnectionReset => return reset(),
        _ => {}
    }
    blob_with_fault(shared, req, digest, head, fault).await
}

async fn blob_with_fault(
    shared: &Shared,
    req: &Request<Incoming>,
    digest: &str,
    head: bool,
    fault: Fault,
) -> Response<Body> {
    let Some(data) = shared.state().blobs.get(digest).cloned() else {
        return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
    };
    let total = data.len();
    if fault == Fault::EndlessBody {
        return endless(shared, &data, digest, head);
    }
    let ignore_range = shared.state().ignore_range;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let start: usize = a.parse().ok()?;
            let end = if b.is_empty() {
                total
            } else {
                b.parse::<usize>().ok()? + 1
            };
            (start < end && end <= total).then_some((start, end))
        })
        .filter(|_| !ignore_range);
    let (start, end) = range.unwrap_or((0, total));
    let mut body_bytes = data.slice(start..end);
    if fault == Fault::CorruptBody && !body_bytes.is_empty() {
        let mut v = body_bytes.to_vec();
        for b in v.iter_mut().step_by(997) {
            *b ^= 0xff;
        }
        body_bytes = Bytes::from(v);
    }
    let mut b = Response::builder()
        .status(if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest);
    if range.is_some() {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", end - 1),
        );
    }
    if head {
        return b.body(full("")).unwrap_or_else(|_| Response::new(full("")));
    }
    let body_pause = shared.state().body_pause;
    let (send_len, pause) = match fault {
        Fault::TruncatedBody => (body_bytes.len() / 2, body_pause),
        Fault::SlowBody(d) => (body_bytes.len(), Some(d)),
        _ => (body_bytes.len(), body_pause),
    };
    let truncated = send_len < body_bytes.len();
    let stall_at = (fault == Fault::StallHalfway).then_some(send_len / 2);
    let gate = Arc::clone(&shared.gate);
    if let Fault::StallAfter(n) = fault {
        // Nothing follows until the hub drops: the body just stops.
        let first = body_bytes.slice(..n.min(send_len));
        let gate = Arc::clone(&gate);
        let stream = futures_util::stream::once(async move { Ok(Frame::data(first)) }).chain(
            futures_util::stream::unfold((), move |()| {
                let gate = Arc::clone(&gate);
                async move {
                    while !gate.closing.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    None::<(Result<Frame<Bytes>, std::io::Error>, ())>
                }
            }),
        );
        return b
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    let chunks: Vec<Bytes> = (0..send_len)
        .step_by(64 * 1024)
        .map(|i| body_bytes.slice(i..(i + 64 * 1024).min(send_len)))
        .collect();
    // (chunks, index of the next chunk, finished)
    let stream =
        futures_util::stream::unfold((chunks, 0usize, false), move |(chunks, next, done)| {
            let gate = Arc::clone(&gate);
            async move {
                if done || gate.closing.load(Ordering::SeqCst) {
                    return None;
                }
                let Some(c) = chunks.get(next).cloned() else {
                    return truncated.then(|| {
                        (
                            Err(std::io::Error::other("truncated")),
                            (chunks, next, true),
                        )
                    });
                };
                if let Some(d) = pause {
                    tokio::time::sleep(d).await;
                }
                if stall_at.is_some_and(|at| next * 64 * 1024 >= at) {
                    while gate.holds() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Some((Ok(Frame::data(c)), (chunks, next + 1, false)))
            }
        });
    b.body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// A chunked body repeating `data` forever (until the hub closes).
fn endless(shared: &Shared, data: &Bytes, digest: &str, head: bool) -> Response<Body> {
    let b = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", digest);
    if head {
        // A body of unknown length, so no Content-Length is added for it.
        let none = futures_util::stream::empty::<Result<Frame<Bytes>, std::io::Error>>();
        return b
            .body(BodyExt::boxed(StreamBody::new(none)))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    let gate = Arc::clone(&shared.gate);
    let chunk = if data.is_empty() {
        Bytes::from_static(b"x")
    } else {
        data.clone()
    };
    let stream = futures_util::stream::unfold((), move |()| {
        let (gate, chunk) = (Arc::clone(&gate), chunk.clone());
        async move {
            if gate.closing.load(Ordering::SeqCst) {
                return None;
            }
            // Yield now and then so the runtime stays responsive.
            tokio::task::yield_now().await;
            Some((Ok(Frame::data(chunk)), ()))
        }
    });
    b.body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| Response::new(full("")))
}

// fault matrix: the replies of `set_reply_on` and `set_token_reply`.

/// A reply `set_reply_on` puts in place of a manifest's or blob's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// This status, with a distribution error body.
    Status(u16),
    /// The full Content-Length, half the body, then the connection closes.
    Short,
    /// The body and 1 MiB more, with a Content-Length that says so.
    Long,
    /// Chunked, no Content-Length, never ending.
    Endless,
    /// As many bytes as the body, each one flipped.
    Wrong,
    /// Half the body, then nothing more (until the hub drops).
    StallHalfway,
    /// The body, one byte per this interval.
    Drip(Duration),
    /// `200 text/html`: a sign-in page.
    Html,
    /// A redirect to itself.
    RedirectLoop,
    /// A 1 MiB header.
    HugeHead,
}

/// How `set_token_reply` makes the token endpoint misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenReply {
    /// 503 UNAVAILABLE.
    Down,
    /// The request is read and never answered (until the hub drops).
    Hang,
    /// `200 application/json` whose body is no JSON.
    Garbage,
    /// The token, after this delay.
    Slow(Duration),
}

/// The bytes a manifest or blob path names (a manifest by tag or digest,
/// `/v2/<repo>/manifests/<ref>`; a blob at the API or the CDN), with the
/// Content-Type and Docker-Content-Digest of its answer.
fn body_for(shared: &Shared, path: &str) -> Option<(Bytes, String, String)> {
    let st = shared.state();
    let rest = path.strip_prefix("/v2/").unwrap_or(path);
    if let Some(i) = rest.rfind("/manifests/") {
        let (repo, reference) = (&rest[..i], &rest[i + 11..]);
        let digest = if reference.starts_with("sha256:") {
            reference.to_string()
        } else {
            st.tags
                .get(&(repo.to_string(), reference.to_string()))?
                .clone()
        };
        let (media_type, bytes) = st.manifests.get(&digest)?.clone();
        return Some((bytes, media_type, digest));
    }
    let digest = path.rsplit('/').next()?.split('?').next()?.to_string();
    let bytes = st.blobs.get(&digest)?.clone();
    Some((bytes, "application/octet-stream".into(), digest))
}

/// `set_reply_on`'s reply for this request, when it applies (counted).
async fn matrix_reply(shared: &Shared, path: &str, head: bool) -> Option<Response<Body>> {
    let reply = {
        let mut st = shared.state();
        let (part, reply, times) = st.matrix.clone()?;
        let body_fault = !matches!(
            reply,
            Reply::Status(_) | Reply::Html | Reply::RedirectLoop | Reply::HugeHead
        );
        if !path.contains(&part) || (head && body_fault) || times == Some(0) {
            return None;
        }
        st.matrix = Some((part, reply, times.map(|n| n - 1)));
        st.matrix_injected += 1;
        reply
    };
    let (data, content_type, digest) = body_for(shared, path).unwrap_or_default();
    let ok = || {
        Response::builder()
            .header(header::CONTENT_TYPE, content_type.as_str())
            .header("docker-content-digest", digest.as_str())
    };
    let gate = Arc::clone(&shared.gate);
    let resp = match reply {
        Reply::Status(code) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "UNKNOWN",
            "the fake hub failed",
        ),
        Reply::Html => {
            let page = "<!DOCTYPE html><html><body>Please sign in.</body></html>";
            Response::builder()
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .header(header::CONTENT_LENGTH, page.len())
                .body(full(if head { "" } else { page }))
                .ok()?
        }
        Reply::RedirectLoop => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, path)
            .body(full(""))
            .ok()?,
        Reply::HugeHead => ok()
            .header("x-padding", "a".repeat(1024 * 1024))
            .body(full(""))
            .ok()?,
        Reply::Wrong => {
            let flipped: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
            ok().header(header::CONTENT_LENGTH, flipped.len())
                .body(full(flipped))
                .ok()?
        }
        Reply::Long => {
            let mut longer = data.to_vec();
            longer.extend(std::iter::repeat_n(b'x', 1024 * 1024));
            ok().header(header::CONTENT_LENGTH, longer.len())
                .body(full(longer))
                .ok()?
        }
        Reply::Short => {
            let half = data.slice(..data.len() / 2);
            let stream = futures_util::stream::iter([
                Ok(Frame::data(half)),
                Err(std::io::Error::other("cut short")),
            ]);
            ok().header(header::CONTENT_LENGTH, data.len())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .ok()?
        }
        Reply::StallHalfway => {
            let half = data.slice(..data.len() / 2);
            let stream = futures_util::stream::once(async move { Ok(Frame::data(half)) }).chain(
                futures_util::stream::unfold((), move |()| {
                    let gate = Arc::clone(&gate);
                    async move {
                        while !gate.closing.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        None::<(Result<Frame<Bytes>, std::io::Error>, ())>
                    }
                }),
            );
            ok().header(header::CONTENT_LENGTH, data.len())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .ok()?
        }
        Reply::Endless => {
            let chunk = if data.is_empty() {
                Bytes::from_static(b"x")
            } else {
                data
            };
            let stream = futures_util::stream::unfold((), move |()| {
                let (gate, chunk) = (Arc::clone(&gate), chunk.clone());
                async move {
                    if gate.closing.load(Ordering::SeqCst) {
                        return None;
                    }
                    tokio::task::yield_now().await;
                    Some((Ok::<_, std::io::Error>(Frame::data(chunk)), ()))
                }
            });
            ok().body(BodyExt::boxed(StreamBody::new(stream))).ok()?
        }
        Reply::Drip(interval) => {
            let resp = ok()
                .header(header::CONTENT_LENGTH, data.len())
                .body(full(data))
                .ok()?;
            return Some(dripping(shared, resp, interval).await);
        }
    };
    Some(resp)
}

/// `set_token_reply`'s answer for a token request, when the knob is on (counted).
async fn token_fault(shared: &Shared) -> Option<Response<Body>> {
    let reply = {
        let mut st = shared.state();
        let reply = st.token_reply?;
        st.matrix_injected += 1;
        reply
    };
    match reply {
        TokenReply::Down => Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the token service is down",
        )),
        TokenReply::Hang => Some(silence(shared).await),
        TokenReply::Garbage => Some(
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(full("<html>502 Bad Gateway</html>"))
                .ok()?,
        ),
        TokenReply::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

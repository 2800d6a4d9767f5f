//! Finding image references in files: plain lists (`-f`), and `--from` a
//! Dockerfile, a compose file, a `.gitlab-ci.yml`, a GitHub Actions workflow,
//! or a directory holding such files under their usual names.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// One image a file asks for, with the platform it was pinned to, if any,
/// and where it was found (for `prefetch --dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub reference: String,
    pub platform: Option<String>,
    pub origin: Option<Origin>,
}

/// `FILE:LINE` of an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    /// 1-based; `None` when the line could not be told.
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        Ok(())
    }
}

/// What a file yields: the images, and references it had to skip (each
/// already says which and why) so one bad entry does not stop the rest.
#[derive(Debug, Default)]
pub struct Found {
    pub specs: Vec<ImageSpec>,
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageListError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{0}: cannot tell what kind of file this is; --from understands Dockerfiles, compose files, .gitlab-ci.yml and GitHub workflows"
    )]
    UnknownFormat(PathBuf),
    #[error(
        "{0}: no Dockerfile, Containerfile, *.Dockerfile, compose.yaml, docker-compose.yml, .gitlab-ci.yml or .github/workflows/*.yml in this directory"
    )]
    NothingFound(PathBuf),
}

/// `-f images.txt`: one reference per line; `#` starts a comment.
pub fn list_from_file(path: &Path) -> Result<Vec<ImageSpec>, ImageListError> {
    let text = read(path)?;
    let mut specs = parse_list(&text);
    for s in &mut specs {
        if let Some(o) = &mut s.origin {
            o.path = path.to_path_buf();
        }
    }
    Ok(specs)
}

/// One reference per line; `#` starts a comment.
pub fn parse_list(text: &str) -> Vec<ImageSpec> {
    let specs = text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.split_once('#').map_or(l, |(before, _)| before).trim();
        (!l.is_empty()).then(|| spec(l, None, i + 1))
    });
    dedup(specs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dockerfile,
    Compose,
    GitlabCi,
    GithubWorkflow,
}

/// `--from PATH`: a file (format from its name, else its content) or a
/// directory (the files in it with the usual names).
pub fn images_from_path(path: &Path) -> Result<Found, ImageListError> {
    if !path.is_dir() {
        return images_from_file(path);
    }
    let files = known_files(path)?;
    if files.is_empty() {
        return Err(ImageListError::NothingFound(path.to_path_buf()));
    }
    let mut found = Found::default();
    for f in files {
        let more = images_from_file(&f)?;
        found.specs.extend(more.specs);
        found.skipped.extend(more.skipped);
    }
    found.specs = dedup(found.specs);
    Ok(found)
}

/// The files of `dir` (and its `.github/workflows/`) that `--from` knows by name, sorted.
fn known_files(dir: &Path) -> Result<Vec<PathBuf>, ImageListError> {
    let list = |d: &Path| -> Result<Vec<PathBuf>, ImageListError> {
        let entries = std::fs::read_dir(d).map_err(|source| ImageListError::Read {
            path: d.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    };
    let mut out: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| is_known_name(p))
        .collect();
    let workflows = dir.join(".github").join("workflows");
    if workflows.is_dir() {
        out.extend(
            list(&workflows)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml")),
        );
    }
    Ok(out)
}

fn is_known_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "dockerfile"
            | "containerfile"
            | "compose.yaml"
            | "compose.yml"
            | "docker-compose.yaml"
            | "docker-compose.yml"
            | ".gitlab-ci.yml"
            | ".gitlab-ci.yaml"
    ) || lower.ends_with(".dockerfile")
        || lower.starts_with("dockerfile.")
}

/// `--from FILE`: the format comes from the file name, else from its content.
pub fn images_from_file(path: &Path) -> Result<Found, ImageListError> {
    let text = read(path)?;
    let format = format_from_name(path)
        .or_else(|| sniff(&text))
        .ok_or_else(|| ImageListError::UnknownFormat(path.to_path_buf()))?;
    let parsed = match format {
        Format::Dockerfile => from_dockerfile(&text).map(|specs| Found {
            specs,
            skipped: Vec::new(),
        }),
        Format::Compose => {
            let dotenv = compose_dotenv(path);
            let env = |name: &str| {
                std::env::var(name)
                    .ok()
                    .or_else(|| dotenv.get(name).cloned())
            };
            from_compose(&text, &env)
        }
        Format::GitlabCi => from_gitlab_ci(&text).map(|specs| Found {
            specs,
            skipped: Vec::new(),
        }),
        Format::GithubWorkflow => from_github_workflow(&text).map(|specs| Found {
            specs,
            skipped: Vec::new(),
        }),
    };
    let mut found = parsed.map_err(|message| ImageListError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    for s in &mut found.specs {
        if let Some(o) = &mut s.origin {
            o.path = path.to_path_buf();
        }
    }
    for s in &mut found.skipped {
        *s = format!("{}{s}", path.display());
    }
    Ok(found)
}

fn read(path: &Path) -> Result<String, ImageListError> {
    crate::operator_files::read_to_string(path).map_err(|source| ImageListError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The `.env` beside a compose file, as compose reads it (missing: empty).
fn compose_dotenv(compose_file: &Path) -> HashMap<String, String> {
    let dir = compose_file.parent().unwrap_or(Path::new("."));
    let Ok(iter) = dotenvy::from_path_iter(dir.join(".env")) else {
        return HashMap::new();
    };
    iter.filter_map(Result::ok).collect()
}

fn format_from_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let full = path.to_string_lossy().replace('\\', "/");
    if name == "dockerfile"
        || name == "containerfile"
        || name.starts_with("dockerfile.")
        || name.ends_with(".dockerfile")
    {
        Some(Format::Dockerfile)
    } else if name.ends_with("gitlab-ci.yml") || name.ends_with("gitlab-ci.yaml") {
        Some(Format::GitlabCi)
    } else if full.contains(".github/workflows/") {
        Some(Format::GithubWorkflow)
    } else if name.contains("compose") && (name.ends_with(".yml") || name.ends_with(".yaml")) {
        Some(Format::Compose)
    } else {
        None
    }
}

fn sniff(text: &str) -> Option<Format> {
    if let Ok(Value::Mapping(top)) = serde_norway::from_str::<Value>(text) {
        let has = |k: &str| top.contains_key(Value::from(k));
        if has("jobs") {
            return Some(Format::GithubWorkflow);
        }
        if has("services") && !has("stages") && !has("image") {
            return Some(Format::Compose);
        }
        if has("stages") || has("image") || has("services") {
            return Some(Format::GitlabCi);
        }
    }
    text.lines()
        .any(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .then_some(Format::Dockerfile)
}

/// `FROM [--platform=P] image [AS name]`, `COPY --from=image` and
/// `RUN --mount=...,from=image`, with `ARG` defaults substituted; `scratch`
/// and build stages (by name or index) are skipped.
pub fn from_dockerfile(text: &str) -> Result<Vec<ImageSpec>, String> {
    let mut args: HashMap<String, Option<String>> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (line_no, line) in logical_lines(text) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        let image_arg = |image: &str, args: &HashMap<String, Option<String>>| {
            let image = substitute(image, args).map_err(|var| {
                format!("line {line_no}: ARG {var} has no default; give it one or name the image directly")
            })?;
            if image.is_empty() {
                return Err(format!("line {line_no}: the image name is empty"));
            }
            Ok(image)
        };
        match instruction.to_ascii_uppercase().as_str() {
            "ARG" => {
                for a in rest {
                    let (k, v) = match a.split_once('=') {
                        Some((k, v)) => (k, Some(v.trim_matches('"').to_string())),
                        None => (a, None),
                    };
                    args.insert(k.to_string(), v);
                }
            }
            "FROM" => {
                let mut platform = None;
                let mut image = None;
                let mut stage = None;
                let mut iter = rest.iter();
                while let Some(w) = iter.next() {
                    if let Some(p) = w.strip_prefix("--platform=") {
                        platform = substitute(p, &args).ok().filter(|p| !p.contains('$'));
                    } else if w.starts_with("--") {
                        continue;
                    } else if image.is_none() {
                        image = Some(*w);
                    } else if w.eq_ignore_ascii_case("as") {
                        stage = iter.next().map(|n| n.to_ascii_lowercase());
                    }
                }
                let Some(image) = image else {
                    return Err(format!("line {line_no}: FROM without an image"));
                };
                let image = image_arg(image, &args)?;
                // Only stages named on earlier lines can be built upon.
                let is_stage = stages.contains(&image.to_ascii_lowercase());
                stages.extend(stage);
                if is_stage || image.eq_ignore_ascii_case("scratch") {
                    continue;
                }
                out.push(spec(&image, platform, line_no));
            }
            "COPY" | "RUN" => {
                for source in rest.iter().filter_map(|w| from_flag(w)) {
                    let image = image_arg(source, &args)?;
                    let is_stage = stages.contains(&image.to_ascii_lowercase())
                        || image.parse::<usize>().is_ok();
                    if !is_stage {
                        out.push(spec(&image, None, line_no));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(dedup(out))
}

/// The source of `--from=SRC` (COPY) or `--mount=type=...,from=SRC,...` (RUN).
fn from_flag(word: &str) -> Option<&str> {
    if let Some(src) = word.strip_prefix("--from=") {
        return Some(src);
    }
    word.strip_prefix("--mount=")?
        .split(',')
        .find_map(|opt| opt.strip_prefix("from="))
}

/// Joins `\` continuations and drops comments; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if current.is_empty() {
            start = i + 1;
            if line.starts_with('#') {
                continue;
            }
        }
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

/// `$NAME`, `${NAME}` and `${NAME:-default}`; `Err(name)` for an unset ARG.
fn substitute(s: &str, args: &HashMap<String, Option<String>>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, default, len) = if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                return Err(after.to_string());
            };
            let body = &inner[..end];
            match body.split_once(":-") {
                Some((n, d)) => (n, Some(d), end + 2),
                None => (body, None, end + 2),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], None, end)
        };
        match args
            .get(name)
            .cloned()
            .flatten()
            .or(default.map(str::to_string))
        {
            Some(v) => out.push_str(&v),
            None if args.contains_key(name) || !is_build_platform_var(name) => {
                return Err(name.to_string());
            }
            None => out.push_str(&format!("${name}")),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// BuildKit's automatic platform ARGs: unresolvable here, but not an error.
fn is_build_platform_var(name: &str) -> bool {
    name.starts_with("BUILD") || name.starts_with("TARGET")
}

fn yaml(text: &str) -> Result<Value, String> {
    serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"))
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::from(key))
}

/// `services.*.image` (and `services.*.platform`), interpolated as compose
/// does from `env` (the environment, then the `.env` file). A reference that
/// cannot be resolved is skipped and reported in `Found::skipped`.
pub fn from_compose(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Found, String> {
    let doc = yaml(text)?;
    let mut found = Found::default();
    if let Some(services) = get(&doc, "services").and_then(Value::as_mapping) {
        for (name, svc) in services {
            let Some(raw) = get(svc, "image").and_then(Value::as_str) else {
                continue;
            };
            let line = line_of(text, raw);
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            let image = match interpolate(raw, env) {
                Ok(image) if !image.trim().is_empty() => image,
                Ok(_) => {
                    found.skipped.push(format!(
                        "{at}: service {}: image {raw:?} is empty once interpolated; skipped",
                        name.as_str().unwrap_or("?")
                    ));
                    continue;
                }
                Err(why) => {
                    found.skipped.push(format!(
                        "{at}: service {}: image {raw:?}: {why}; skipped (set it in the environment or in .env)",
                        name.as_str().unwrap_or("?")
                    ));
                    continue;
                }
            };
            let platform = get(svc, "platform")
                .and_then(Value::as_str)
                .and_then(|p| interpolate(p, env).ok());
            found.specs.push(ImageSpec {
                reference: image.trim().to_string(),
                platform,
                origin: Some(Origin {
                    path: PathBuf::new(),
                    line,
                }),
            });
        }
    }
    found.specs = dedup(found.specs);
    Ok(found)
}

/// Compose's variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`
/// (defaults may nest). `Err` says which variable is unset.
pub fn interpolate(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            out.push_str(&expand(&inner[..end], env)?);
            rest = &inner[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                let name = &after[..end];
                out.push_str(&env(name).ok_or_else(|| format!("variable {name} is not set"))?);
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, counting nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The body of one `${...}`.
fn expand(body: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(name_end);
    if name.is_empty() {
        return Err(format!("invalid interpolation ${{{body}}}"));
    }
    let value = env(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    for (prefix, colon) in [(":-", true), ("-", false)] {
        if let Some(default) = op.strip_prefix(prefix) {
            let use_value = if colon { set_nonempty } else { value.is_some() };
            return match value {
                Some(v) if use_value => Ok(v),
                _ => interpolate(default, env),
            };
        }
    }
    for (prefix, colon) in [(":?", true), ("?", false)] {
        if let Some(message) = op.strip_prefix(prefix) {
            let ok = if colon { set_nonempty } else { value.is_some() };
            return match value {
                Some(v) if ok => Ok(v),
                _ if message.is_empty() => Err(format!("variable {name} is required")),
                _ => Err(format!("variable {name} is required: {message}")),
            };
        }
    }
    for (prefix, colon) in [(":+", true), ("+", false)] {
        if let Some(alt) = op.strip_prefix(prefix) {
            let set = if colon { set_nonempty } else { value.is_some() };
            return if set {
                interpolate(alt, env)
            } else {
                Ok(String::new())
            };
        }
    }
    if !op.is_empty() {
        return Err(format!("invalid interpolation ${{{body}}}"));
    }
    value.ok_or_else(|| format!("variable {name} is not set"))
}

/// The 1-based line where `needle` first appears in `text`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Top-level, `default:` and per-job `image:` and `services:`, with top-level
/// `variables:` substituted; still-unresolved `$VARS` are skipped.
pub fn from_gitlab_ci(text: &str) -> Result<Vec<ImageSpec>, String> {
    let doc = yaml(text)?;
    let vars: HashMap<String, Option<String>> = get(&doc, "variables")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let value = v
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| get(v, "value").and_then(Value::as_str).map(str::to_string));
                    Some((k.as_str()?.to_string(), value))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut names = Vec::new();
    let mut collect = |node: &Value| {
        if let Some(image) = get(node, "image") {
            names.extend(image_name(image));
        }
        if let Some(services) = get(node, "services").and_then(Value::as_sequence) {
            names.extend(services.iter().filter_map(image_name));
        }
    };
    collect(&doc);
    if let Some(m) = doc.as_mapping() {
        for (_, job) in m.iter() {
            if job.is_mapping() {
                collect(job);
            }
        }
    }
    let out = names.into_iter().filter_map(|raw| {
        let n = substitute(&raw, &vars).ok().filter(|n| !n.contains('$'))?;
        Some(yaml_spec(text, &raw, &n))
    });
    Ok(dedup(out))
}

/// A GitLab image: a string or a map with `name:`.
fn image_name(v: &Value) -> Option<String> {
    v.as_str()
        .or_else(|| get(v, "name").and_then(Value::as_str))
        .map(str::to_string)
}

/// `jobs.*.container` (string or `image:`), `jobs.*.services.*.image` and
/// `jobs.*.steps[].uses: docker://IMAGE`; values with `${{ }}` expressions are skipped.
pub fn from_github_workflow(text: &str) -> Result<Vec<ImageSpec>, String> {
    let doc = yaml(text)?;
    let mut out = Vec::new();
    if let Some(jobs) = get(&doc, "jobs").and_then(Value::as_mapping) {
        for job in jobs.values() {
            if let Some(c) = get(job, "container") {
                let image = c
                    .as_str()
                    .or_else(|| get(c, "image").and_then(Value::as_str));
                out.extend(image.map(str::to_string));
            }
            if let Some(services) = get(job, "services").and_then(Value::as_mapping) {
                out.extend(
                    services.values().filter_map(|s| {
                        get(s, "image").and_then(Value::as_str).map(str::to_string)
                    }),
                );
            }
            if let Some(steps) = get(job, "steps").and_then(Value::as_sequence) {
                out.extend(steps.iter().filter_map(|step| {
                    let uses = get(step, "uses").and_then(Value::as_str)?;
                    Some(uses.trim().strip_prefix("docker://")?.to_string())
                }));
            }
        }
    }
    let out = out
        .into_iter()
        .filter(|i| !i.contains("${{"))
        .map(|i| yaml_spec(text, &i, &i));
    Ok(dedup(out))
}

/// A spec found in YAML, located by its raw text.
fn yaml_spec(text: &str, raw: &str, reference: &str) -> ImageSpec {
    ImageSpec {
        reference: reference.trim().to_string(),
        platform: None,
        origin: Some(Origin {
            path: PathBuf::new(),
            line: line_of(text, raw),
        }),
    }
}

fn spec(reference: &str, platform: Option<String>, line: usize) -> ImageSpec {
    ImageSpec {
        reference: reference.trim().to_string(),
        platform,
        origin: Some(Origin {
            path: PathBuf::new(),
            line: Some(line),
        }),
    }
}

/// First appearance wins; same reference and platform appear once.
fn dedup(specs: impl IntoIterator<Item = ImageSpec>) -> Vec<ImageSpec> {
    let mut out: Vec<ImageSpec> = Vec::new();
    for s in specs {
        if !out
            .iter()
            .any(|o| o.reference == s.reference && o.platform == s.platform)
        {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(specs: &[ImageSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.reference.as_str()).collect()
    }

    #[test]
    fn lists() {
        let specs = parse_list("# images\nalpine:3\n\n  nginx  # web\nalpine:3\n");
        assert_eq!(refs(&specs), ["alpine:3", "nginx"]);
    }

    #[test]
    fn dockerfiles() {
        let cases: &[(&str, &[&str])] = &[
            ("FROM alpine:3.20\n", &["alpine:3.20"]),
            (
                "from alpine as build\nFROM build\nFROM scratch\n",
                &["alpine"],
            ),
            (
                "ARG BASE=golang:1.22\nFROM ${BASE} AS build\nARG RT=debian\nFROM $RT:12\nCOPY --from=build / /\n",
                &["golang:1.22", "debian:12"],
            ),
            ("FROM ${IMG:-busybox}\n", &["busybox"]),
            (
                "# comment\nFROM \\\n  redis:7 \\\n  AS cache\n",
                &["redis:7"],
            ),
            ("FROM alpine\nFROM alpine\n", &["alpine"]),
        ];
        for (text, want) in cases {
            let got = from_dockerfile(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(refs(&got), *want, "{text}");
        }
        let p = from_dockerfile(
            "FROM --platform=linux/arm64 alpine\nFROM --platform=$BUILDPLATFORM golang\n",
        )
        .unwrap();
        assert_eq!(p[0].platform.as_deref(), Some("linux/arm64"));
        assert_eq!(p[1].platform, None);
        let err = from_dockerfile("ARG BASE\nFROM $BASE\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("BASE"), "{err}");
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn compose() {
        let got = from_compose(
            "services:\n  web:\n    image: nginx:1\n    platform: linux/amd64\n  db:\n    image: postgres:16\n  app:\n    build: .\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(refs(&got.specs), ["nginx:1", "postgres:16"]);
        assert_eq!(got.specs[0].platform.as_deref(), Some("linux/amd64"));
        assert_eq!(lines(&got.specs), [Some(3), Some(6)]);
        assert!(got.skipped.is_empty());
    }

    fn lines(specs: &[ImageSpec]) -> Vec<Option<usize>> {
        specs
            .iter()
            .map(|s| s.origin.as_ref().and_then(|o| o.line))
            .collect()
    }

    #[test]
    fn compose_interpolates_and_skips_what_it_cannot_resolve() {
        let env = |name: &str| match name {
            "TAG" => Some("1.27".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let got = from_compose(
            "services:\n  a:\n    image: nginx:${TAG}\n  b:\n    image: ${DB:-postgres:16}\n  c:\n    image: $$UNSET/x:${MISSING}\n  d:\n    image: redis:$TAG\n  e:\n    image: ${EMPTY:-busybox}:${V-latest}\n  f:\n    image: ${NEED:?set NEED}\n",
            &env,
        )
        .unwrap();
        assert_eq!(
            refs(&got.specs),
            ["nginx:1.27", "postgres:16", "redis:1.27", "busybox:latest"]
        );
        assert_eq!(got.skipped.len(), 2, "{:?}", got.skipped);
        assert!(
            got.skipped[0].starts_with(":7: service c"),
            "{:?}",
            got.skipped
        );
        assert!(
            got.skipped[0].contains("MISSING is not set"),
            "{:?}",
            got.skipped
        );
        assert!(
            got.skipped[1].contains("NEED is required: set NEED"),
            "{:?}",
            got.skipped
        );
    }

    #[test]
    fn interpolation_rules() {
        let env = |name: &str| match name {
            "A" => Some("a".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("x", Ok("x")),
            ("$A", Ok("a")),
            ("${A}b", Ok("ab")),
            ("${E:-d}", Ok("d")),
            ("${E-d}", Ok("")),
            ("${U-d}", Ok("d")),
            ("${U:-${A}}", Ok("a")),
            ("${A:+alt}", Ok("alt")),
            ("${U:+alt}", Ok("")),
            ("$$A", Ok("$A")),
            ("a$", Ok("a$")),
            ("$U", Err(())),
            ("${U}", Err(())),
            ("${E:?no}", Err(())),
            ("${A", Err(())),
        ];
        for (input, want) in cases {
            let got = interpolate(input, &env);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{input}"),
                Err(()) => assert!(got.is_err(), "{input}: {got:?}"),
            }
        }
    }

    #[test]
    fn dockerfile_copy_and_mount_sources() {
        let got = from_dockerfile(
            "ARG TOOLS=busybox:1.36\nFROM golang:1.22 AS build\nRUN --mount=type=cache,target=/root \\\n    --mount=type=bind,from=node:20,source=/x,target=/y make\nFROM alpine:3\nCOPY --from=build /out /bin/\nCOPY --from=0 /a /a\nCOPY --from=nginx:1 /etc/nginx /etc/nginx\nCOPY --from=${TOOLS} /bin/sh /sh\nRUN --mount=from=build,target=/b true\n",
        )
        .unwrap();
        assert_eq!(
            refs(&got),
            [
                "golang:1.22",
                "node:20",
                "alpine:3",
                "nginx:1",
                "busybox:1.36"
            ]
        );
        assert_eq!(lines(&got), [Some(2), Some(3), Some(5), Some(8), Some(9)]);
    }

    #[test]
    fn directories_yield_the_known_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM alpine:3\n").unwrap();
        std::fs::write(d.join("api.Dockerfile"), "FROM golang:1.22\n").unwrap();
        std::fs::write(
            d.join("compose.yaml"),
            "services:\n  a:\n    image: redis:${R}\n",
        )
        .unwrap();
        std::fs::write(d.join(".env"), "R=7\n").unwrap();
        std::fs::write(
            d.join("notes.yml"),
            "services:\n  a:\n    image: ignored:1\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join(".github/workflows")).unwrap();
        std::fs::write(
            d.join(".github/workflows/ci.yml"),
            "on: push\njobs:\n  a:\n    steps:\n      - uses: docker://hello-world:latest\n",
        )
        .unwrap();
        let found = images_from_path(d).unwrap();
        let mut got = refs(&found.specs);
        got.sort();
        assert_eq!(
            got,
            ["alpine:3", "golang:1.22", "hello-world:latest", "redis:7"]
        );
        let redis = found
            .specs
            .iter()
            .find(|s| s.reference == "redis:7")
            .unwrap();
        assert_eq!(
            redis.origin.as_ref().unwrap().to_string(),
            format!("{}:3", d.join("compose.yaml").display())
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            images_from_path(empty.path()),
            Err(ImageListError::NothingFound(_))
        ));
    }

    #[test]
    fn gitlab_ci() {
        let got = from_gitlab_ci(
            "variables:\n  PG: postgres:15\nimage: ruby:3\nservices:\n  - redis:7\ndefault:\n  image: node:20\ntest:\n  image:\n    name: python:3.12\n  services:\n    - name: $PG\n    - $CI_REGISTRY_IMAGE/x\nstages: [test]\n",
        )
        .unwrap();
        assert_eq!(
            refs(&got),
            ["ruby:3", "redis:7", "node:20", "python:3.12", "postgres:15"]
        );
    }

    #[test]
    fn github_workflows() {
        let got = from_github_workflow(
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    container: node:20\n    services:\n      pg:\n        image: postgres:16\n  b:\n    container:\n      image: ${{ matrix.img }}\n  c:\n    container:\n      image: golang:1.22\n",
        )
        .unwrap();
        assert_eq!(refs(&got), ["node:20", "postgres:16", "golang:1.22"]);
        let got = from_github_workflow(
            "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker://alpine:3.20\n        with:\n          args: echo\n      - uses: docker://${{ inputs.img }}\n",
        )
        .unwrap();
        assert_eq!(refs(&got), ["alpine:3.20"]);
        assert_eq!(lines(&got), [Some(6)]);
    }

    #[test]
    fn formats_from_names_and_content() {
        assert_eq!(
            format_from_name(Path::new("x/Dockerfile.dev")),
            Some(Format::Dockerfile)
        );
        assert_eq!(
            format_from_name(Path::new("docker-compose.yml")),
            Some(Format::Compose)
        );
        assert_eq!(
            format_from_name(Path::new(".gitlab-ci.yml")),
            Some(Format::GitlabCi)
        );
        assert_eq!(
            format_from_name(Path::new("r/.github/workflows/ci.yml")),
            Some(Format::GithubWorkflow)
        );
        assert_eq!(
            sniff("services:\n  a:\n    image: x\n"),
            Some(Format::Compose)
        );
        assert_eq!(sniff("jobs:\n  a: {}\n"), Some(Format::GithubWorkflow));
        assert_eq!(sniff("FROM alpine\n"), Some(Format::Dockerfile));
        assert_eq!(sniff("hello: world\n"), None);
    }

    #[test]
    fn an_empty_image_name_is_an_error_naming_its_line() {
        // Found by any_file_is_scanned_or_refused: `COPY --from= . .` gave an
        // image with an empty name, which a pull then tripped over.
        for text in [
            "FROM alpine\nCOPY --from= . .\n",
            "FROM alpine\nRUN --mount=type=bind,from=,target=/x true\n",
            "ARG E=\nFROM $E\n",
            "FROM alpine\nARG E\nCOPY --from=${E:-} / /\n",
        ] {
            let e = from_dockerfile(text)
                .map(|s| refs(&s).join(","))
                .unwrap_err();
            assert!(
                e.starts_with("line 2:") || e.starts_with("line 3:"),
                "{text:?}: {e}"
            );
        }
    }

    /// Lines shaped like Dockerfiles, compose files and CI files: their
    /// keywords, variables, continuations and YAML structure, plus noise.
    fn scanner_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let line = prop_oneof![
            "\\PC{0,40}",
            "(FROM|from|ARG|COPY|RUN) [ -~]{0,30}",
            "FROM (--platform=[a-z/$]{0,12} )?[a-z0-9${}:/._-]{0,20}( AS [a-z]{0,5})?( \\\\)?",
            "ARG [A-Z]{1,3}(=[a-z0-9${}:-]{0,12})?",
            "(COPY --from=|RUN --mount=type=bind,from=)[a-z0-9${}:]{0,12} . .",
            " {0,4}(services|image|platform|build|variables|jobs|container|steps|uses|name|default|services):( [ -~]{0,20})?",
            " {0,4}- [ -~]{0,20}",
            "[a-z]{1,4}: &[a-z] \\[[a-z, ]{0,10}\\]",
            "[a-z]{1,4}: \\*[a-z]",
            "\\$\\{?[A-Z]{0,3}(:?[-?+][ -~]{0,8})?\\}?",
        ];
        proptest::collection::vec(line, 0..12).prop_map(|l| l.join("\n"))
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No file panics a scanner; every image found names a line of the file.
        #[test]
        fn any_file_is_scanned_or_refused(text in scanner_text()) {
            let env = |name: &str| (name == "SET").then(|| "alpine".to_string());
            let lines = text.lines().count().max(1);
            let in_file = |specs: &[ImageSpec]| {
                specs.iter().all(|s| {
                    !s.reference.is_empty()
                        && s.origin.as_ref().and_then(|o| o.line).is_none_or(|l| (1..=lines).contains(&l))
                })
            };
            proptest::prop_assert!(in_file(&parse_list(&text)));
            if let Ok(specs) = from_dockerfile(&text) {
                proptest::prop_assert!(in_file(&specs), "{specs:?}");
            }
            if let Ok(found) = from_compose(&text, &env) {
                proptest::prop_assert!(in_file(&found.specs), "{:?}", found.specs);
            }
            for specs in [from_gitlab_ci(&text), from_github_workflow(&text)].into_iter().flatten() {
                proptest::prop_assert!(in_file(&specs), "{specs:?}");
            }
        }

        /// Text without `$` is its own interpolation; `$$` is one `$`; a set
        /// variable is replaced in every form.
        #[test]
        fn interpolation_replaces_only_variables(
            plain in "[^$]{0,30}",
            form in proptest::sample::select(vec!["$SET", "${SET}", "${SET:-x}", "${SET-x}", "${SET:?e}", "${SET?e}"]),
            noise in "\\PC{0,30}",
        ) {
            let env = |name: &str| (name == "SET").then(|| "alpine".to_string());
            proptest::prop_assert_eq!(interpolate(&plain, &env), Ok(plain.clone()));
            proptest::prop_assert_eq!(interpolate(&format!("{plain}$$"), &env), Ok(format!("{plain}$")));
            proptest::prop_assert_eq!(interpolate(&format!("{form}:3"), &env), Ok("alpine:3".to_string()));
            let _ = interpolate(&noise, &env);
        }
    }

    #[test]
    fn a_compose_file_of_nested_aliases_is_refused_or_read_without_blowing_up() {
        // "Billion laughs": each alias doubles the one before.
        let mut text = String::from("a0: &a0 [x, x]\n");
        for i in 1..40 {
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
        }
        text.push_str("services:\n  web:\n    image: *a39\n");
        let _ = from_compose(&text, &|_| None);
        let _ = from_gitlab_ci(&text);
        let _ = from_github_workflow(&text);
    }
}

//! Finding image references in files: plain lists (`-f`), and `--from` a
//! Dockerfile, a compose file, a `.gitlab-ci.yml` or a GitHub Actions workflow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// One image a file asks for, with the platform it was pinned to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub reference: String,
    pub platform: Option<String>,
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
}

/// `-f images.txt`: one reference per line; `#` starts a comment.
pub fn parse_list(text: &str) -> Vec<ImageSpec> {
    let specs = text
        .lines()
        .map(|l| l.split_once('#').map_or(l, |(before, _)| before).trim())
        .filter(|l| !l.is_empty())
        .map(|l| spec(l, None));
    dedup(specs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dockerfile,
    Compose,
    GitlabCi,
    GithubWorkflow,
}

/// `--from FILE`: the format comes from the file name, else from its content.
pub fn images_from_file(path: &Path) -> Result<Vec<ImageSpec>, ImageListError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImageListError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = format_from_name(path)
        .or_else(|| sniff(&text))
        .ok_or_else(|| ImageListError::UnknownFormat(path.to_path_buf()))?;
    let parsed = match format {
        Format::Dockerfile => from_dockerfile(&text),
        Format::Compose => from_compose(&text),
        Format::GitlabCi => from_gitlab_ci(&text),
        Format::GithubWorkflow => from_github_workflow(&text),
    };
    parsed.map_err(|message| ImageListError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

fn format_from_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let full = path.to_string_lossy();
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

/// `FROM [--platform=P] image [AS name]`, with `ARG` defaults substituted;
/// `scratch` and earlier build stages are skipped.
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
                let image = substitute(image, &args).map_err(|var| {
                    format!("line {line_no}: ARG {var} has no default; give it one or name the image directly")
                })?;
                // Only stages named on earlier lines can be built upon.
                let is_stage = stages.contains(&image.to_ascii_lowercase());
                stages.extend(stage);
                if is_stage || image.eq_ignore_ascii_case("scratch") {
                    continue;
                }
                out.push(spec(&image, platform));
            }
            _ => {}
        }
    }
    Ok(dedup(out))
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

/// `services.*.image` (and `services.*.platform`).
pub fn from_compose(text: &str) -> Result<Vec<ImageSpec>, String> {
    let doc = yaml(text)?;
    let mut out = Vec::new();
    if let Some(services) = get(&doc, "services").and_then(Value::as_mapping) {
        for svc in services.values() {
            if let Some(image) = get(svc, "image").and_then(Value::as_str) {
                let platform = get(svc, "platform")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                out.push(spec(image, platform));
            }
        }
    }
    Ok(dedup(out))
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
    let out = names
        .into_iter()
        .filter_map(|n| substitute(&n, &vars).ok())
        .filter(|n| !n.contains('$'))
        .map(|n| spec(&n, None));
    Ok(dedup(out))
}

/// A GitLab image: a string or a map with `name:`.
fn image_name(v: &Value) -> Option<String> {
    v.as_str()
        .or_else(|| get(v, "name").and_then(Value::as_str))
        .map(str::to_string)
}

/// `jobs.*.container` (string or `image:`) and `jobs.*.services.*.image`;
/// values with `${{ }}` expressions are skipped.
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
        }
    }
    let out = out
        .into_iter()
        .filter(|i| !i.contains("${{"))
        .map(|i| spec(&i, None));
    Ok(dedup(out))
}

fn spec(reference: &str, platform: Option<String>) -> ImageSpec {
    ImageSpec {
        reference: reference.trim().to_string(),
        platform,
    }
}

/// First appearance wins; same reference and platform appear once.
fn dedup(specs: impl IntoIterator<Item = ImageSpec>) -> Vec<ImageSpec> {
    let mut out: Vec<ImageSpec> = Vec::new();
    for s in specs {
        if !out.contains(&s) {
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

    #[test]
    fn compose() {
        let got = from_compose(
            "services:\n  web:\n    image: nginx:1\n    platform: linux/amd64\n  db:\n    image: postgres:16\n  app:\n    build: .\n",
        )
        .unwrap();
        assert_eq!(refs(&got), ["nginx:1", "postgres:16"]);
        assert_eq!(got[0].platform.as_deref(), Some("linux/amd64"));
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
}

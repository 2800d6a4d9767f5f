//! The passwords and tokens the test suite uses (`secrets.txt`, one a line,
//! also read by scripts/test.sh), and a scan for them in what dpx wrote.
//! Wrong passwords the tests send on purpose are not listed: they are
//! nobody's secret.

use std::path::Path;

use base64::Engine as _;

/// The suite's secrets.
pub fn known() -> Vec<String> {
    include_str!("secrets.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `secret` and the forms it may leak in: a `user:secret` pair in base64
/// (standard and URL-safe, as a Basic header or a docker config carries it).
pub fn forms(user: &str, secret: &str) -> Vec<String> {
    let pair = format!("{user}:{secret}");
    vec![
        secret.to_string(),
        base64::engine::general_purpose::STANDARD.encode(&pair),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&pair),
    ]
}

/// What a scan saw: files and bytes read, and every hit (where, which).
#[derive(Default, Debug)]
pub struct Scan {
    pub files: usize,
    pub bytes: usize,
    pub hits: Vec<String>,
}

impl Scan {
    /// Looks for each needle in `text`, named `what` in a hit.
    pub fn text(&mut self, what: &str, text: &[u8], needles: &[String]) {
        self.bytes += text.len();
        for n in needles {
            if !n.is_empty() && text.windows(n.len()).any(|w| w == n.as_bytes()) {
                self.hits.push(format!("{what}: {n}"));
            }
        }
    }

    /// Every regular file under `dir`, except those named in `skip` (the
    /// stores that hold a secret by design).
    pub fn dir(&mut self, dir: &Path, needles: &[String], skip: &[&str]) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.map_while(Result::ok) {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                self.dir(&path, needles, skip);
            } else if meta.is_file()
                && !skip.contains(&name.as_str())
                && let Ok(data) = std::fs::read(&path)
            {
                self.files += 1;
                self.text(&path.display().to_string(), &data, needles);
            }
        }
    }
}

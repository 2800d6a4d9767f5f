//! Every setting, once: its name as `dpx config show` prints it, how
//! `dpx config set` reads it, its env var and flag, its default, and how to
//! print its value from a loaded `Config`. `config show`, `config set`/`unset`
//! and the README's settings table all come from `KEYS`; loading stays serde's.

use std::path::Path;
use std::time::Duration;

use super::{
    Config, DEFAULT_CONNECTION_IDLE_TIMEOUT, DEFAULT_DAEMON_IDLE_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT, DEFAULT_MAX_BLOB_SIZE, DEFAULT_MAX_CONNECTIONS, DEFAULT_PREFETCH_BLOBS,
    DEFAULT_SEND_TIMEOUT, DEFAULT_TAG_TTL, DEFAULT_TOKEN_LIFETIME,
};

/// How `dpx config set` turns command-line text into the key's TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Text,
    Integer,
    Bool,
    /// Comma-separated on the command line.
    List,
}

/// Where a shown value came from, as far as the config knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    /// The environment filled the table (GitLab CI's Dependency Proxy).
    Env,
}

/// A value as `dpx config show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub value: String,
    pub source: Source,
}

/// Settings whose value a flag or an env var decides: `config show` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    ConfigFile,
    CacheDir,
    Listen,
    Log,
}

/// How to read a key's value.
#[derive(Clone, Copy)]
pub enum Read {
    /// From the loaded file, else the default.
    File(fn(&Config) -> Shown),
    /// A field of one `[registries."HOST"]` table: the config, the host, and
    /// the env var the table came from, if it did.
    Registry(fn(&Config, &str, Option<&str>) -> Shown),
    Outside(Outside),
}

// `label`, `env`, `flag`, `default` and `doc` are the README's "Every setting"
// table, which a unit test checks against this table; the binary reads them not.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Key {
    /// As `dpx config show` prints it; `"HOST"` stands for a registry host.
    pub name: &'static str,
    /// The README's name for it, when not `[table] key`.
    pub label: Option<&'static str>,
    /// `None`: not set by `dpx config set` (`dpx config edit` does it).
    pub input: Option<Input>,
    /// Env vars and flags that set it, and its default, as the README says them.
    pub env: &'static str,
    pub flag: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    pub read: Read,
}

impl Key {
    /// The name for one registry host (`registries."ghcr.io".url`).
    pub fn for_host(&self, host: &str) -> String {
        self.name.replace("\"HOST\"", &format!("\"{host}\""))
    }

    /// The field of a `[registries."HOST"]` key (`url`), else `None`.
    pub fn registry_field(&self) -> Option<&'static str> {
        self.name.strip_prefix("registries.\"HOST\".")
    }

    /// The README's first column: `` `[cache] tag_ttl` ``.
    #[cfg(test)]
    pub fn label(&self) -> String {
        if let Some(label) = self.label {
            return label.to_string();
        }
        match self.name.rsplit_once('.') {
            Some((table, key)) => format!("`[{table}] {key}`"),
            None => format!("`{}`", self.name),
        }
    }
}

pub fn duration(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn size(n: u64) -> String {
    crate::units::human_bytes(n)
}

fn file(value: String) -> Shown {
    Shown {
        value,
        source: Source::File,
    }
}

fn default(value: impl Into<String>) -> Shown {
    Shown {
        value: value.into(),
        source: Source::Default,
    }
}

/// The file's value if set, else the default, printed alike.
fn or_default<T>(value: Option<T>, fallback: T, show: fn(T) -> String) -> Shown {
    match value {
        Some(v) => file(show(v)),
        None => default(show(fallback)),
    }
}

/// The file's value if set, else words for the default.
fn or_words<T>(value: Option<T>, words: &str, show: impl Fn(T) -> String) -> Shown {
    match value {
        Some(v) => file(show(v)),
        None => default(words),
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// A registry value: filled by the environment when its table came from there.
fn registry_source(set: bool, via: Option<&str>) -> Source {
    match (set, via) {
        (false, _) => Source::Default,
        (true, Some(_)) => Source::Env,
        (true, None) => Source::File,
    }
}

fn registry_via(via: Option<&str>) -> String {
    via.map(|v| format!(" (from {v})")).unwrap_or_default()
}

const fn key(name: &'static str, input: Input, default: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        label: None,
        input: Some(input),
        env: "",
        flag: "",
        default,
        doc,
        // Every entry says how it is read; this placeholder is replaced.
        read: Read::Outside(Outside::Log),
    }
}

const fn reads(key: Key, read: fn(&Config) -> Shown) -> Key {
    Key {
        read: Read::File(read),
        ..key
    }
}

/// Every setting, in the order `dpx config show` prints them.
pub const KEYS: &[Key] = &[
    Key {
        label: Some("config file"),
        input: None,
        env: "`DPX_CONFIG`",
        flag: "`--config`",
        read: Read::Outside(Outside::ConfigFile),
        ..key(
            "config",
            Input::Text,
            "`~/.config/dpx/config.toml` (the platform's config dir)",
            "The config file in use.",
        )
    },
    Key {
        env: "`DPX_CACHE_DIR`",
        flag: "`--cache-dir`",
        read: Read::Outside(Outside::CacheDir),
        ..key(
            "cache.dir",
            Input::Text,
            "`~/.cache/dpx` (the platform's cache dir)",
            "The cache directory.",
        )
    },
    reads(
        key(
            "cache.tag_ttl",
            Input::Text,
            "`5m`",
            "How long a cached tag is served without asking upstream.",
        ),
        |c| or_default(c.cache.tag_ttl, DEFAULT_TAG_TTL, duration),
    ),
    reads(
        key(
            "cache.max_blob_size",
            Input::Text,
            "`16GiB`",
            "The largest blob accepted when neither a manifest nor the upstream says its size.",
        ),
        |c| or_default(c.cache.max_blob_size, DEFAULT_MAX_BLOB_SIZE, size),
    ),
    reads(
        key(
            "cache.lock_timeout",
            Input::Text,
            "`60s`",
            "How long to wait for another dpx process stuck on a download we need.",
        ),
        |c| or_default(c.cache.lock_timeout, DEFAULT_LOCK_TIMEOUT, duration),
    ),
    reads(
        key(
            "cache.max_size",
            Input::Text,
            "none (no eviction)",
            "`dpx serve` evicts least recently used content beyond this size.",
        ),
        |c| or_words(c.cache.max_size, "none (no eviction)", size),
    ),
    Key {
        env: "`DPX_LISTEN`",
        flag: "`serve --listen`",
        read: Read::Outside(Outside::Listen),
        ..key(
            "serve.listen",
            Input::Text,
            "`127.0.0.1:5000`",
            "The address `dpx serve` listens on.",
        )
    },
    reads(
        key(
            "serve.max_connections",
            Input::Integer,
            "`1024`",
            "Open client connections at most; beyond it a new client gets a 503.",
        ),
        |c| {
            or_default(c.serve.max_connections, DEFAULT_MAX_CONNECTIONS, |v| {
                v.to_string()
            })
        },
    ),
    reads(
        key(
            "serve.header_timeout",
            Input::Text,
            "`30s`",
            "How long a client may take to send a request's headers.",
        ),
        |c| or_default(c.serve.header_timeout, DEFAULT_HEADER_TIMEOUT, duration),
    ),
    reads(
        key(
            "serve.connection_idle_timeout",
            Input::Text,
            "`90s`",
            "How long a connection may sit idle between requests.",
        ),
        |c| {
            or_default(
                c.serve.connection_idle_timeout,
                DEFAULT_CONNECTION_IDLE_TIMEOUT,
                duration,
            )
        },
    ),
    reads(
        key(
            "serve.send_timeout",
            Input::Text,
            "`60s`",
            "How long a response may make no progress before its connection is closed.",
        ),
        |c| or_default(c.serve.send_timeout, DEFAULT_SEND_TIMEOUT, duration),
    ),
    Key {
        flag: "`serve --idle-timeout`, `daemon start --idle-timeout`",
        ..reads(
            key(
                "serve.idle_timeout",
                Input::Text,
                "never (serve), `30m` (daemon)",
                "`dpx serve` stops after this long without a request (\"0\": never).",
            ),
            |c| match c.serve.idle_timeout {
                Some(v) => file(duration(v)),
                None => default(format!(
                    "never (serve), {} (daemon)",
                    duration(DEFAULT_DAEMON_IDLE_TIMEOUT)
                )),
            },
        )
    },
    reads(
        key(
            "serve.registries",
            Input::List,
            "any host",
            "When set, the only upstream hosts `dpx serve` contacts.",
        ),
        |c| or_words(c.serve.registries.as_deref(), "any", |l| l.join(", ")),
    ),
    reads(
        key(
            "serve.prefetch_blobs",
            Input::Bool,
            "`true`",
            "Answering an image manifest fetched upstream starts fetching its config and layers, 3 at a time (`false`: only what clients ask for).",
        ),
        |c| {
            or_default(c.serve.prefetch_blobs, DEFAULT_PREFETCH_BLOBS, |v| {
                v.to_string()
            })
        },
    ),
    Key {
        flag: "`serve --tls-cert`",
        ..reads(
            key(
                "serve.tls_cert",
                Input::Text,
                "none (plain HTTP)",
                "The PEM certificate chain: with tls_key, `dpx serve` speaks HTTPS.",
            ),
            |c| or_words(c.serve.tls_cert.as_deref(), "none (plain HTTP)", path),
        )
    },
    Key {
        flag: "`serve --tls-key`",
        ..reads(
            key(
                "serve.tls_key",
                Input::Text,
                "none (plain HTTP)",
                "The PEM private key of tls_cert.",
            ),
            |c| or_words(c.serve.tls_key.as_deref(), "none (plain HTTP)", path),
        )
    },
    Key {
        flag: "`serve --auth`",
        ..reads(
            key(
                "serve.auth.enabled",
                Input::Bool,
                "`false`",
                "Clients of `dpx serve` need a token.",
            ),
            |c| or_default(c.serve.auth.enabled, false, |v| v.to_string()),
        )
    },
    reads(
        key(
            "serve.auth.token_lifetime",
            Input::Text,
            "`5m`",
            "How long a client's token is valid.",
        ),
        |c| {
            or_default(
                c.serve.auth.token_lifetime,
                DEFAULT_TOKEN_LIFETIME,
                duration,
            )
        },
    ),
    Key {
        label: Some("`[serve.auth.users]`"),
        input: None,
        ..reads(
            key(
                "serve.auth.users",
                Input::Text,
                "none (only the user `dpx`)",
                "Extra users: name = Argon2 PHC hash (`dpx serve --hash-password`).",
            ),
            |c| {
                let users = &c.serve.auth.users;
                if users.is_empty() {
                    default("none (only `dpx`)")
                } else {
                    // Names only: the values are password hashes.
                    file(
                        users
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                }
            },
        )
    },
    reads(
        key(
            "ratelimit.reserve",
            Input::Integer,
            "none (spend the quota to 0)",
            "At or below this many remaining pulls, serve answers cached tags stale and prefetch stops.",
        ),
        |c| or_words(c.ratelimit.reserve, "none", |v| v.to_string()),
    ),
    reads(
        key(
            "ratelimit.probe_interval",
            Input::Text,
            "`30s`",
            "After a 429, how long until the first free check whether quota is back.",
        ),
        |c| Shown {
            value: humantime::format_duration(c.ratelimit.probe_intervals().0).to_string(),
            source: set_in_file(c.ratelimit.probe_interval.is_some()),
        },
    ),
    reads(
        key(
            "ratelimit.probe_interval_max",
            Input::Text,
            "`5m`",
            "The longest wait between two such checks.",
        ),
        |c| Shown {
            value: humantime::format_duration(c.ratelimit.probe_intervals().1).to_string(),
            source: set_in_file(c.ratelimit.probe_interval_max.is_some()),
        },
    ),
    reads(
        key(
            "credentials.store",
            Input::Text,
            "the OS keyring when reachable, else the 0600 file",
            "Where `dpx login` keeps secrets: \"keyring\" or \"file\".",
        ),
        |c| {
            or_words(
                c.credentials.store,
                "the OS keyring when reachable, else the file",
                |s| s.as_str().to_string(),
            )
        },
    ),
    Key {
        env: "`XDG_CONFIG_HOME` (the platform's dir)",
        ..reads(
            key(
                "credentials.dir",
                Input::Text,
                "`~/.config/dpx`, whichever config file is read",
                "The directory of dpx's credential file (an absolute path).",
            ),
            |c| match (&c.credentials.dir, c.credentials_dir()) {
                (Some(dir), _) => file(path(dir)),
                (None, Ok(dir)) => default(path(&dir)),
                (None, Err(_)) => default("(no home directory)"),
            },
        )
    },
    reads(
        key(
            "network.retries",
            Input::Integer,
            "`3` (pull, prefetch), `1` (serve)",
            "Tries after the first for one manifest or blob.",
        ),
        |c| {
            or_words(c.network.retries, "3 (pull, prefetch), 1 (serve)", |v| {
                v.to_string()
            })
        },
    ),
    reads(
        key(
            "network.low_speed_limit",
            Input::Text,
            "`1KiB` (per second)",
            "A body slower than this for low_speed_time fails (\"0\" turns the check off).",
        ),
        |c| Shown {
            value: format!("{}/s", size(c.network.low_speed_limit())),
            source: set_in_file(c.network.low_speed_limit.is_some()),
        },
    ),
    reads(
        key(
            "network.low_speed_time",
            Input::Text,
            "`30s`",
            "How long a body may stay below low_speed_limit.",
        ),
        |c| Shown {
            value: duration(c.network.low_speed_time()),
            source: set_in_file(c.network.low_speed_time.is_some()),
        },
    ),
    Key {
        env: "`CI_DEPENDENCY_PROXY_*` (docker.io, see \"A team upstream\")",
        read: Read::Registry(|c, host, via| {
            let set = c.registries.get(host).is_some_and(|r| r.url.is_some());
            Shown {
                value: format!("{}{}", c.registry_url(host), registry_via(via)),
                source: registry_source(set, via),
            }
        }),
        ..key(
            "registries.\"HOST\".url",
            Input::Text,
            "`https://registry-1.docker.io` for docker.io; `http://HOST` for loopback; else `https://HOST`",
            "The registry API's base URL for this host.",
        )
    },
    Key {
        env: "`CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX` (docker.io)",
        read: Read::Registry(|c, host, via| {
            match c
                .registries
                .get(host)
                .and_then(|r| r.repository_prefix.as_deref())
            {
                Some(p) => Shown {
                    value: format!("{p}{}", registry_via(via)),
                    source: registry_source(true, via),
                },
                None => default("none"),
            }
        }),
        ..key(
            "registries.\"HOST\".repository_prefix",
            Input::Text,
            "none",
            "The path inside url this registry's repositories live under.",
        )
    },
    Key {
        read: Read::Registry(|c, host, via| {
            match c.registries.get(host).and_then(|r| r.fallback.as_deref()) {
                Some([]) => file("none".into()),
                Some(list) => {
                    let why = if via.is_some() {
                        " (Docker Hub behind the Dependency Proxy unless the file sets fallback)"
                    } else {
                        ""
                    };
                    Shown {
                        value: format!("{}{why}", list.join(", ")),
                        source: registry_source(true, via),
                    }
                }
                None => default("none"),
            }
        }),
        ..key(
            "registries.\"HOST\".fallback",
            Input::List,
            "none (docker.io through the Dependency Proxy: Docker Hub)",
            "Upstreams tried in order when the ones before fail to answer.",
        )
    },
    Key {
        label: Some("log filter"),
        input: None,
        env: "`DPX_LOG`",
        flag: "`-v`, `-q`",
        read: Read::Outside(Outside::Log),
        ..key(
            "log",
            Input::Text,
            "`dpx=warn` (serve: `dpx=info`)",
            "A tracing filter for log output, e.g. dpx=debug.",
        )
    },
];

fn set_in_file(set: bool) -> Source {
    if set { Source::File } else { Source::Default }
}

/// Settings that only the environment or a command sets, for the README's
/// table after `KEYS`: (setting, env, flag, default).
#[cfg(test)]
const ENVIRONMENT_ONLY: &[[&str; 4]] = &[
    [
        "upstream login",
        "`DPX_REGISTRY_USER`, `DPX_REGISTRY_PASSWORD`, `DPX_REGISTRY_HOST`",
        "`dpx login`",
        "`DPX_REGISTRY_HOST`: docker.io; else the sources under \"Logging in\"",
    ],
    [
        "Dependency Proxy login",
        "`CI_DEPENDENCY_PROXY_USER`, `CI_DEPENDENCY_PROXY_PASSWORD`, `CI_DEPENDENCY_PROXY_SERVER`",
        "",
        "unset",
    ],
    [
        "Docker's credentials",
        "`DOCKER_AUTH_CONFIG`, `DOCKER_CONFIG`",
        "",
        "`~/.docker/config.json`",
    ],
    [
        "daemon runtime directory",
        "`XDG_RUNTIME_DIR`",
        "",
        "`$XDG_RUNTIME_DIR/dpx/…`, else in the cache dir",
    ],
];

/// The README's "Every setting" table.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out = String::from("| Setting | Env | Flag | Default |\n|---|---|---|---|\n");
    let rows = KEYS
        .iter()
        .map(|k| [k.label(), k.env.into(), k.flag.into(), k.default.into()])
        .chain(ENVIRONMENT_ONLY.iter().map(|r| r.map(String::from)));
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                if c.is_empty() {
                    " ".into()
                } else {
                    format!(" {c} ")
                }
            })
            .collect();
        out.push_str(&format!("|{}|\n", cells.join("|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields a serde-derived struct reads, from the list its
    /// `Deserialize` hands to `deserialize_struct` (`#[serde(skip)]` ones are not in it).
    fn fields<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
        struct Fields;
        #[derive(Debug)]
        struct Found(&'static [&'static str]);
        impl std::fmt::Display for Found {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Found {}
        impl serde::de::Error for Found {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Found(&[])
            }
        }
        impl<'de> serde::Deserializer<'de> for Fields {
            type Error = Found;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
                Err(Found(&[]))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Found> {
                Err(Found(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        match T::deserialize(Fields) {
            Err(Found(fields)) => fields,
            Ok(_) => panic!("not a struct"),
        }
    }

    #[test]
    fn every_field_of_the_config_is_a_key() {
        use super::super::*;
        // Each table of the file, with the struct serde loads it into.
        let tables: &[(&str, &[&str])] = &[
            ("", fields::<Config>()),
            ("cache.", fields::<CacheConfig>()),
            ("serve.", fields::<ServeConfig>()),
            ("serve.auth.", fields::<ServeAuthConfig>()),
            ("network.", fields::<NetworkConfig>()),
            ("ratelimit.", fields::<RatelimitConfig>()),
            ("credentials.", fields::<CredentialsConfig>()),
            ("registries.\"HOST\".", fields::<RegistryConfig>()),
        ];
        let is_table = |name: &str| {
            tables
                .iter()
                .any(|(prefix, _)| prefix.trim_end_matches('.') == name)
                || name == "registries"
        };
        let mut seen = 0;
        for (prefix, fields) in tables {
            assert!(!fields.is_empty(), "{prefix}");
            for field in *fields {
                let name = format!("{prefix}{field}");
                if is_table(&name) {
                    continue;
                }
                assert!(
                    KEYS.iter().any(|k| k.name == name),
                    "{name} is loaded from the config file but not in config::keys::KEYS: add it \
                     there (config show, config set and the README come from it)"
                );
                seen += 1;
            }
        }
        // Every file key of the table is loaded (the rest come from outside).
        let file_keys = KEYS
            .iter()
            .filter(|k| !matches!(k.read, Read::Outside(Outside::ConfigFile | Outside::Log)))
            .count();
        assert_eq!(seen, file_keys);
    }

    #[test]
    fn names_are_unique_and_every_key_is_documented() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(!k.doc.is_empty() && !k.default.is_empty(), "{}", k.name);
            assert!(
                KEYS[..i].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
            assert_eq!(
                k.registry_field().is_some(),
                matches!(k.read, Read::Registry(_)),
                "{}",
                k.name
            );
        }
    }

    #[test]
    fn the_readme_table_is_the_key_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let start = readme
            .find("| Setting | Env | Flag | Default |")
            .expect("the README's settings table");
        let end = readme[start..]
            .find("\n\n")
            .map_or(readme.len(), |i| start + i + 1);
        let want = markdown_table();
        assert!(
            readme[start..end] == want,
            "README.md's settings table differs from config::keys::KEYS; replace it with:\n\n{want}"
        );
    }

    #[test]
    fn values_print_as_config_show_prints_them() {
        let show = |name: &str, c: &Config| match KEYS.iter().find(|k| k.name == name) {
            Some(Key {
                read: Read::File(read),
                ..
            }) => read(c),
            _ => panic!("{name}"),
        };
        let c = Config::default();
        assert_eq!(show("cache.max_blob_size", &c), default("16.0 GiB"));
        assert_eq!(show("serve.connection_idle_timeout", &c), default("1m 30s"));
        assert_eq!(
            show("serve.auth.users", &c),
            default(format!("none (only `{}`)", crate::config::DPX_USER))
        );
        let c = Config::parse(
            "[serve]\nidle_timeout = \"0\"\n[ratelimit]\nprobe_interval = \"10m\"\n\
             [network]\nlow_speed_limit = \"10KiB\"\n",
        )
        .unwrap();
        assert_eq!(show("serve.idle_timeout", &c), file("0".into()));
        // The longest probe wait is never shorter than the first.
        assert_eq!(show("ratelimit.probe_interval_max", &c), default("10m"));
        assert_eq!(
            show("network.low_speed_limit", &c),
            file("10.0 KiB/s".into())
        );
    }
}

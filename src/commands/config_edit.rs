//! `dpx config set KEY VALUE`, `dpx config unset KEY`, `dpx config edit`:
//! change the config file in place. Keys are spelled as `dpx config show`
//! prints them; a change is kept only when the result loads as dpx loads
//! it (`Config::parse`); comments, order and formatting stay (`toml_edit`).

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use toml_edit::{DocumentMut, Item, Key, Table, TableLike, value};

use crate::cli::GlobalArgs;
use crate::config::keys::{Input, KEYS};
use crate::config::{Config, ConfigError};
use crate::exit::UsageError;
use crate::fsutil::AtomicWrite;
use crate::stdout::{print_json, with_stdout};

/// A config file bigger than this is not one dpx wrote or a person edits.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The keys `config set` knows outside the registry tables, as `dpx config show` prints them.
fn plain_keys() -> impl Iterator<Item = (&'static str, Input)> {
    KEYS.iter()
        .filter(|k| k.registry_field().is_none())
        .filter_map(|k| Some((k.name, k.input?)))
}

/// The fields of a `registries."HOST"` table `config set` knows.
fn registry_fields() -> impl Iterator<Item = (&'static str, Input)> {
    KEYS.iter()
        .filter_map(|k| Some((k.registry_field()?, k.input?)))
}

/// A key resolved: its path of table names and its kind.
#[derive(Debug)]
struct KnownKey {
    path: Vec<String>,
    kind: Input,
}

/// Spells a key path as `config show` does (`registries."docker.io".url`).
fn spell(path: &[String]) -> String {
    path.iter()
        .map(|p| Key::new(p.as_str()).display_repr().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

fn resolve_key(key: &str) -> Result<KnownKey, UsageError> {
    let path: Vec<String> = Key::parse(key)
        .map_err(|_| unknown(key))?
        .iter()
        .map(|k| k.get().to_string())
        .collect();
    let spelled = spell(&path);
    if let Some((_, kind)) = plain_keys().find(|(k, _)| *k == spelled) {
        return Ok(KnownKey { path, kind });
    }
    if let [table, host, field] = path.as_slice()
        && table == "registries"
        && let Some((_, kind)) = registry_fields().find(|(f, _)| f == field)
    {
        crate::reference::validate_registry(host).map_err(|_| {
            UsageError(format!(
                "{host:?} is not a registry host: write registries.\"HOST[:PORT]\".{field}, e.g. \
                 registries.\"docker.io\".{field}"
            ))
        })?;
        return Ok(KnownKey { path, kind });
    }
    Err(unknown(key))
}

/// An unknown key, with the nearest known one.
fn unknown(key: &str) -> UsageError {
    let mut candidates: Vec<String> = plain_keys().map(|(k, _)| k.to_string()).collect();
    // A registry field under the host the user wrote (or docker.io's).
    let host = Key::parse(key)
        .ok()
        .and_then(|p| p.get(1).map(|k| k.get().to_string()))
        .filter(|_| key.starts_with("registries") || key.starts_with("registry"))
        .unwrap_or_else(|| crate::reference::DOCKER_HUB.to_string());
    candidates.extend(
        registry_fields().map(|(f, _)| spell(&["registries".into(), host.clone(), f.to_string()])),
    );
    let nearest = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(key, c), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= key.len().max(4) / 2)
        .map(|(_, c)| format!("; did you mean {c}?"))
        .unwrap_or_default();
    UsageError(format!(
        "{key:?} is not a dpx setting{nearest} (`dpx config show` lists every key; \
         [serve.auth.users] entries are set with `dpx config edit`)"
    ))
}

/// The command line's text as the key's TOML value.
fn to_value(kind: Input, key: &str, text: &str) -> Result<toml_edit::Value, UsageError> {
    Ok(match kind {
        Input::Text => text.into(),
        Input::Integer => text
            .trim()
            .parse::<i64>()
            .map_err(|_| UsageError(format!("{key} takes a whole number, e.g. 3")))?
            .into(),
        Input::Bool => match text.trim() {
            "true" => true.into(),
            "false" => false.into(),
            _ => return Err(UsageError(format!("{key} takes true or false"))),
        },
        Input::List => {
            let mut list = toml_edit::Array::new();
            for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                list.push(item);
            }
            list.into()
        }
    })
}

/// The config file these commands change: `--config`/`DPX_CONFIG`, else the platform's.
fn config_file(global: &GlobalArgs) -> Result<PathBuf, ConfigError> {
    match &global.config {
        Some(path) => Ok(path.clone()),
        None => crate::config::default_config_path().ok_or(ConfigError::NoHome),
    }
}

/// The file's text ("" when it does not exist yet), size-capped.
fn read_config(path: &Path) -> anyhow::Result<String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        anyhow::bail!(
            "{} is larger than {} bytes: not a dpx config file; nothing was changed",
            path.display(),
            MAX_CONFIG_BYTES
        );
    }
    Ok(text)
}

/// Replaces the file in one rename (through a symlink to its target),
/// creating its directory; a new file is private to the user (it may hold
/// paths to keys and registry URLs with tokens).
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    AtomicWrite::new()
        .keep_mode_else(0o600)
        .through_symlinks()
        .create_dir()
        .write(path, text.as_bytes())?;
    Ok(())
}

/// Parses the file's text for editing; an invalid file is only for `edit`.
fn parse_document(path: &Path, text: &str) -> Result<DocumentMut, UsageError> {
    text.parse::<DocumentMut>().map_err(|_| {
        let why = Config::parse(text)
            .err()
            .unwrap_or_else(|| "not TOML".into());
        UsageError(format!(
            "{} does not load ({why}); fix it with `dpx config edit`",
            path.display()
        ))
    })
}

/// The table at `path`, made (implicit, so only tables that hold keys get
/// a header) where missing.
fn table_at<'a>(
    doc: &'a mut DocumentMut,
    path: &[String],
) -> Result<&'a mut dyn TableLike, UsageError> {
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for (i, name) in path.iter().enumerate() {
        let entry = table.entry(name).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = entry.as_table_like_mut().ok_or_else(|| {
            UsageError(format!(
                "{} is not a table in the config file; fix it with `dpx config edit`",
                spell(&path[..=i])
            ))
        })?;
    }
    Ok(table)
}

/// Removes `path`'s key; drops tables it leaves empty. Whether it was set.
fn remove_key(doc: &mut DocumentMut, path: &[String]) -> bool {
    fn remove_in(table: &mut dyn TableLike, path: &[String]) -> bool {
        match path {
            [] => false,
            [last] => table.remove(last).is_some(),
            [first, rest @ ..] => {
                let Some(inner) = table.get_mut(first).and_then(Item::as_table_like_mut) else {
                    return false;
                };
                let removed = remove_in(inner, rest);
                // An emptied table goes too, unless a comment sits on it.
                let commented = table
                    .get(first)
                    .and_then(Item::as_table)
                    .and_then(|t| t.decor().prefix())
                    .and_then(|p| p.as_str())
                    .is_some_and(|p| p.contains('#'));
                if removed
                    && !commented
                    && table
                        .get(first)
                        .is_some_and(|t| t.as_table_like().is_some_and(TableLike::is_empty))
                {
                    table.remove(first);
                }
                removed
            }
        }
    }
    remove_in(doc.as_table_mut(), path)
}

/// Checks the new text as dpx loads it: an error says where and what.
fn check(path: &Path, text: &str) -> Result<(), UsageError> {
    Config::parse(text).map(|_| ()).map_err(|message| {
        UsageError(format!(
            "that would make {} invalid ({message}); nothing was changed",
            path.display()
        ))
    })
}

/// The document's text, ending in a newline.
fn text_of(doc: &DocumentMut) -> String {
    let mut text = doc.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn report(
    global: &GlobalArgs,
    file: &Path,
    key: &str,
    value: Option<&str>,
    changed: bool,
    human: String,
) -> anyhow::Result<()> {
    if global.json {
        print_json(&serde_json::json!({
            "file": file,
            "key": key,
            "value": value,
            "changed": changed,
        }))?;
    } else if !global.quiet {
        with_stdout(|out| writeln!(out, "{human}"))?;
    }
    Ok(())
}

/// `dpx config set KEY VALUE`; runs without loading the config (it may not load).
pub fn set(global: &GlobalArgs, key: &str, text: &str) -> anyhow::Result<ExitCode> {
    let known = resolve_key(key)?;
    let spelled = spell(&known.path);
    let file = config_file(global)?;
    let old = read_config(&file)?;
    let mut doc = parse_document(&file, &old)?;
    let new_value = to_value(known.kind, &spelled, text)?;
    let (tables, last) = known.path.split_at(known.path.len() - 1);
    let table = table_at(&mut doc, tables)?;
    let shown = new_value.to_string().trim().to_string();
    match table.get_mut(&last[0]) {
        // Keep the old value's comments and spacing around it.
        Some(Item::Value(old_value)) => {
            let decor = old_value.decor().clone();
            *old_value = new_value;
            *old_value.decor_mut() = decor;
        }
        _ => {
            table.insert(&last[0], value(new_value));
        }
    }
    let new = text_of(&doc);
    check(&file, &new)?;
    let changed = new != old;
    if changed {
        write_config(&file, &new)?;
    }
    report(
        global,
        &file,
        &spelled,
        Some(text),
        changed,
        format!(
            "{spelled} = {shown}{} in {}",
            if changed { "" } else { " already" },
            file.display()
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `dpx config unset KEY`.
pub fn unset(global: &GlobalArgs, key: &str) -> anyhow::Result<ExitCode> {
    let known = resolve_key(key)?;
    let spelled = spell(&known.path);
    let file = config_file(global)?;
    let old = read_config(&file)?;
    let mut doc = parse_document(&file, &old)?;
    let removed = remove_key(&mut doc, &known.path);
    if removed {
        let new = text_of(&doc);
        check(&file, &new)?;
        write_config(&file, &new)?;
    }
    report(
        global,
        &file,
        &spelled,
        None,
        removed,
        if removed {
            format!(
                "{spelled} removed from {} (its default applies)",
                file.display()
            )
        } else {
            format!(
                "{spelled} is not set in {}; nothing changed",
                file.display()
            )
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The editor to run: `$VISUAL`, `$EDITOR`, else vi (as git does).
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Asks whether to edit again after a change that does not load.
fn again() -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("Edit again? [Y/n] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && !line.trim().eq_ignore_ascii_case("n")
}

/// `dpx config edit`: `$VISUAL`/`$EDITOR` on a draft, kept only once it loads.
pub fn edit(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let file = config_file(global)?;
    let old = read_config(&file)?;
    // A copy next to nothing dpx reads: the file changes only once it loads.
    let draft = tempfile::Builder::new()
        .prefix("dpx-config.")
        .suffix(".toml")
        .tempfile()
        .context("cannot make a draft file to edit")?;
    std::fs::write(draft.path(), &old).context("cannot write the draft file")?;
    let editor = editor();
    loop {
        // Through the shell: $EDITOR may carry arguments ("code --wait").
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(draft.path())
            .status()
            .with_context(|| format!("cannot run the editor {editor:?} (set $EDITOR)"))?;
        if !status.success() {
            anyhow::bail!(
                "the editor {editor:?} failed ({status}); {} was not changed",
                file.display()
            );
        }
        let new = read_config(draft.path())?;
        match Config::parse(&new) {
            Ok(_) if new == old => {
                report(
                    global,
                    &file,
                    "",
                    None,
                    false,
                    format!("{}: no change", file.display()),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            Ok(_) => {
                write_config(&file, &new)?;
                report(
                    global,
                    &file,
                    "",
                    None,
                    true,
                    format!("{} saved", file.display()),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(message) => {
                eprintln!("the edited config does not load: {message}");
                if again() {
                    continue;
                }
                let (_, kept) = draft.keep().context("cannot keep the draft")?;
                return Err(UsageError(format!(
                    "{} was not changed; your edit is kept in {} (fix it there and copy it over, \
                     or run dpx config edit again)",
                    file.display(),
                    kept.display()
                ))
                .into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_as_config_show_spells_them_and_typos_get_the_nearest() {
        assert_eq!(resolve_key("cache.tag_ttl").unwrap().kind, Input::Text);
        let k = resolve_key("registries.\"docker.io\".url").unwrap();
        assert_eq!(k.path, ["registries", "docker.io", "url"]);
        assert_eq!(spell(&k.path), "registries.\"docker.io\".url");
        let err = resolve_key("cache.tag_tl").unwrap_err().0;
        assert!(err.contains("did you mean cache.tag_ttl?"), "{err}");
        let err = resolve_key("registries.\"ghcr.io\".urll").unwrap_err().0;
        assert!(
            err.contains("did you mean registries.\"ghcr.io\".url?"),
            "{err}"
        );
        assert!(resolve_key("registries.\"a/b\".url").is_err());
        assert!(
            !resolve_key("zzzzzzzz")
                .unwrap_err()
                .0
                .contains("did you mean")
        );
    }

    #[test]
    fn unset_drops_the_tables_it_empties() {
        let mut doc: DocumentMut =
            "# top\n[registries.\"docker.io\"]\nurl = \"http://x\"\n[cache]\ntag_ttl = \"1m\"\n"
                .parse()
                .unwrap();
        let path: Vec<String> = ["registries", "docker.io", "url"]
            .map(String::from)
            .to_vec();
        assert!(remove_key(&mut doc, &path));
        // The table the file's first comment sits on stays, empty.
        assert_eq!(
            doc.to_string(),
            "# top\n[registries.\"docker.io\"]\n[cache]\ntag_ttl = \"1m\"\n"
        );
        assert!(!remove_key(&mut doc, &path));
        let path: Vec<String> = ["cache", "tag_ttl"].map(String::from).to_vec();
        assert!(remove_key(&mut doc, &path));
        assert_eq!(doc.to_string(), "# top\n[registries.\"docker.io\"]\n");
    }
}

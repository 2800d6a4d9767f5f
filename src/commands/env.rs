//! `dpx env`: the variables a shell or CI job needs to pull through dpx, like
//! GitLab's `CI_DEPENDENCY_PROXY_*`, in the syntax of the place they go.

use std::process::ExitCode;

use base64::Engine as _;

use super::Context;
use crate::cli::{EnvArgs, EnvFormat};
use crate::config::Config;
use crate::engines::Endpoint;
use crate::exit::UsageError;
use crate::reference::DOCKER_HUB;
use crate::stdout::{print_json, with_stdout};

/// The client login when `[serve.auth] enabled` and dpx has generated the
/// password; a password left from a time auth was on is not offered.
/// Blocking: reads the password file.
fn client_login(config: &Config) -> Option<(String, String)> {
    if !crate::client_access::enabled(config, false) {
        return None;
    }
    crate::client_access::client_login(config)
}

/// The variables, in a fixed order; `login` is the client login when client
/// authentication is on.
pub fn variables(
    endpoint: &Endpoint,
    login: Option<(String, String)>,
) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("DPX_SERVER", endpoint.host_port.clone()),
        // Prefix mode: `$DPX_IMAGE_PREFIX/alpine:3.20` is docker.io/library/alpine:3.20 through dpx.
        (
            "DPX_IMAGE_PREFIX",
            format!("{}/{DOCKER_HUB}", endpoint.host_port),
        ),
    ];
    if let Some((user, password)) = login {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let docker_auth = serde_json::json!({
            "auths": { endpoint.host_port.clone(): { "auth": auth } }
        });
        vars.push(("DPX_USER", user));
        vars.push(("DPX_PASSWORD", password));
        vars.push(("DOCKER_AUTH_CONFIG", docker_auth.to_string()));
    }
    vars
}

pub async fn run(ctx: &Context, args: EnvArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::from_config(&ctx.config)?;
    let config = ctx.config.clone();
    let login = tokio::task::spawn_blocking(move || client_login(&config)).await?;
    let vars = variables(&endpoint, login);
    // `dpx --json env` is `--format json`.
    if args.format == EnvFormat::Json || ctx.output == super::Output::Json {
        let object: serde_json::Map<String, serde_json::Value> = vars
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        print_json(&object)?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = render(args.format, &vars)?;
    with_stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// The variables as lines of `format` (not json).
pub fn render(format: EnvFormat, vars: &[(&str, String)]) -> Result<String, UsageError> {
    let mut text = String::new();
    for (name, value) in vars {
        let line = match format {
            EnvFormat::Sh => format!("export {name}={}\n", sh_quote(value)),
            EnvFormat::Fish => format!("set -gx {name} {};\n", fish_quote(value)),
            EnvFormat::Github => github_line(name, value),
            EnvFormat::Gitlab | EnvFormat::Json => {
                // A dotenv report takes one line per variable, unquoted.
                if value.contains(['\n', '\r']) {
                    return Err(UsageError(format!(
                        "{name} holds a line break, which a GitLab dotenv report cannot carry; \
                         use --format json"
                    )));
                }
                format!("{name}={value}\n")
            }
        };
        text.push_str(&line);
    }
    Ok(text)
}

/// POSIX single quotes: everything literal; a `'` is closed, escaped, reopened.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// fish single quotes: only `\\` and `\'` are escapes inside them.
pub fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// `$GITHUB_ENV` syntax: `NAME=value`, or a heredoc with a delimiter the value
/// cannot contain when it spans lines.
fn github_line(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let mut delimiter = String::from("DPX_EOF");
    while value.contains(&delimiter) {
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quotes, `$`, backquotes, `\n`, `\\`, `\'` and a trailing backslash.
    const TRICKY: &str = "a'b\"c $HOME `x` \\n \\\\ end\\'s \\";

    /// What a real shell prints for `$DPX_T` after evaluating `format`'s output.
    fn through_shell(format: EnvFormat, shell: &[&str]) -> String {
        let vars = vec![("DPX_T", TRICKY.to_string())];
        let script = format!("{}printf %s \"$DPX_T\"", render(format, &vars).unwrap());
        let out = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(script)
            .output()
            .expect("the shell (scripts/test.sh installs fish)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn sh_quoting_survives_a_real_shell() {
        assert_eq!(through_shell(EnvFormat::Sh, &["sh"]), TRICKY);
    }

    #[test]
    fn fish_quoting_survives_a_real_fish() {
        assert_eq!(
            through_shell(EnvFormat::Fish, &["fish", "--no-config"]),
            TRICKY
        );
    }

    #[test]
    fn with_client_auth_a_ready_docker_auth_config() {
        let endpoint = Endpoint {
            host_port: "127.0.0.1:5123".into(),
            origin: crate::engines::endpoint::Origin::File,
        };
        let vars = variables(&endpoint, Some(("ci".into(), "p'w $x".into())));
        let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "DPX_SERVER",
                "DPX_IMAGE_PREFIX",
                "DPX_USER",
                "DPX_PASSWORD",
                "DOCKER_AUTH_CONFIG"
            ]
        );
        let script = format!(
            "{}printf %s \"$DOCKER_AUTH_CONFIG\"",
            render(EnvFormat::Sh, &vars).unwrap()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let auth: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let token = auth["auths"]["127.0.0.1:5123"]["auth"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(decoded, b"ci:p'w $x");
    }

    #[test]
    fn github_uses_a_heredoc_for_line_breaks_and_gitlab_refuses_them() {
        let vars = vec![
            ("A", "x=1".to_string()),
            ("B", "two\nDPX_EOF lines".to_string()),
        ];
        assert_eq!(
            render(EnvFormat::Github, &vars).unwrap(),
            "A=x=1\nB<<DPX_EOF_\ntwo\nDPX_EOF lines\nDPX_EOF_\n"
        );
        assert!(render(EnvFormat::Gitlab, &vars).is_err());
        assert_eq!(render(EnvFormat::Gitlab, &vars[..1]).unwrap(), "A=x=1\n");
    }
}

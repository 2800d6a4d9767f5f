//! The CNCF distribution registry (Debian's `docker-registry`), started once
//! per test run and shared; tests use their own repository names.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::engines::{free_port, spawn_tied_to_test_process};

pub struct Registry {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub host: String,
}

static SHARED: OnceLock<Registry> = OnceLock::new();

pub fn shared_registry() -> &'static Registry {
    SHARED.get_or_init(|| start_registry(None))
}

/// Starts a registry; with `proxy_of`, in pull-through proxy mode for that upstream.
pub fn start_registry(proxy_of: Option<&str>) -> Registry {
    let dir = std::env::temp_dir().join(format!(
        "dpx-registry-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("registry dir");
    let host = format!("127.0.0.1:{}", free_port());
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
        dir.join("data").display()
    );
    if let Some(upstream) = proxy_of {
        config.push_str(&format!("proxy:\n  remoteurl: {upstream}\n"));
    }
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config).expect("registry config");
    spawn_tied_to_test_process(
        "docker-registry",
        &["serve".to_string(), config_path.display().to_string()],
        &dir.join("registry.log"),
    );
    let url = format!("http://{host}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&host).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not start; log:\n{}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry { url, host }
}

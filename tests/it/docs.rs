//! The committed completions and man pages match what the CLI generates
//! (regenerate with scripts/gen-docs.sh).

use std::collections::BTreeSet;
use std::process::Command;

fn generated(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dpx"))
        .args(args)
        .output()
        .expect("run dpx");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_and_man_page_are_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (args, file) in [
        (&["completions", "bash"][..], "completions/dpx.bash"),
        (&["completions", "zsh"][..], "completions/dpx.zsh"),
        (&["completions", "fish"][..], "completions/dpx.fish"),
        (&["completions", "powershell"][..], "completions/dpx.ps1"),
        (&["man"][..], "man/dpx.1"),
    ] {
        let committed = std::fs::read_to_string(format!("{root}/{file}")).expect("committed file");
        assert_eq!(
            generated(args),
            committed,
            "{file} is stale: run scripts/gen-docs.sh"
        );
    }
}

fn pages(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("man dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect()
}

#[test]
fn one_man_page_per_subcommand_all_up_to_date() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let fresh = tempfile::tempdir().expect("tempdir");
    generated(&["man", "--dir", fresh.path().to_str().expect("utf-8")]);
    let names = pages(fresh.path());
    assert_eq!(
        names,
        pages(&root),
        "man/ has other pages than the CLI makes: run scripts/gen-docs.sh"
    );
    for sub in [
        "dpx-pull.1",
        "dpx-setup-docker.1",
        "dpx-cache-ls.1",
        "dpx-doctor.1",
    ] {
        assert!(names.contains(sub), "{sub} in {names:?}");
    }
    assert!(
        !names.contains("dpx-man.1"),
        "the hidden generator has no page"
    );
    for name in &names {
        let want = std::fs::read_to_string(fresh.path().join(name)).expect("generated page");
        let have = std::fs::read_to_string(root.join(name)).expect("committed page");
        assert_eq!(want, have, "man/{name} is stale: run scripts/gen-docs.sh");
    }
    let main = std::fs::read_to_string(root.join("dpx.1")).expect("dpx.1");
    for section in [
        ".SH CONFIGURATION",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(main.contains(section), "dpx.1 lacks {section}");
    }
    // Every page dpx.1 refers to exists.
    let refs: Vec<String> = main
        .lines()
        .filter_map(|l| l.strip_prefix("dpx\\-")?.strip_suffix("(1)"))
        .map(|name| format!("dpx-{}.1", name.replace("\\-", "-")))
        .collect();
    assert!(refs.len() >= 10, "{refs:?}");
    for page in refs {
        assert!(
            names.contains(&page),
            "dpx.1 refers to {page}, which is not made"
        );
    }
}

//! The committed completions and man page match what the CLI generates
//! (regenerate with scripts/gen-docs.sh).

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

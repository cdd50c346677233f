//! The committed man pages and completion scripts must match what the CLI generates.
//! Regenerate them with `scripts/gen-docs` after changing the CLI.

mod common;

use std::path::Path;

use common::{contimg, run_in};

const SHELLS: [(&str, &str); 3] = [
    ("bash", "contimg.bash"),
    ("zsh", "_contimg"),
    ("fish", "contimg.fish"),
];

#[test]
fn completions_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in SHELLS {
        let out = run_in(root, &["completions", shell]);
        assert!(out.status.success());
        let committed = std::fs::read(root.join("completions").join(file))
            .unwrap_or_else(|e| panic!("completions/{file}: {e}; run scripts/gen-docs"));
        assert!(
            committed == out.stdout,
            "completions/{file} is out of date: run scripts/gen-docs"
        );
    }
}

#[test]
fn man_pages_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let status = contimg()
        .args(["man", "--out"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut generated: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    let mut committed: Vec<_> = std::fs::read_dir(root.join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    committed.sort();
    assert_eq!(
        generated, committed,
        "man/ has different pages than the CLI: run scripts/gen-docs"
    );
    for name in generated {
        let a = std::fs::read(tmp.path().join(&name)).unwrap();
        let b = std::fs::read(root.join("man").join(&name)).unwrap();
        assert!(
            a == b,
            "man/{} is out of date: run scripts/gen-docs",
            name.to_string_lossy()
        );
    }
    assert!(
        std::fs::read_to_string(root.join("man/contimg-ingest.1"))
            .unwrap()
            .contains("ingest")
    );
}

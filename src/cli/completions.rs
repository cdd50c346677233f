//! `contimg completions SHELL` and `contimg man`: generated from the clap definition.
//!
//! The generated files are committed under `completions/` and `man/`; a test regenerates them
//! and fails when they drift from the CLI.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_complete::Shell;

use super::emit_text;

/// Print a shell completion script.
///
/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Write the man pages.
///
/// Write man pages: contimg.1 and one page per subcommand (contimg-ingest.1, ...).
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into; without it, contimg.1 is printed on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The completion script for a shell, as bytes.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut cmd = super::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "contimg", &mut buf);
    buf
}

/// Every man page: (file name, roff text).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let cmd = super::command();
    let mut pages = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    pages.push((
        "contimg.1".to_string(),
        super::manual::with_extra_sections(&buf, ""),
    ));
    for sub in cmd.get_subcommands() {
        let short = sub.get_name().to_string();
        let name = format!("contimg-{short}");
        let sub = sub
            .clone()
            .name(name.clone())
            .version(cmd.get_version().unwrap_or_default().to_string());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf)?;
        pages.push((
            format!("{name}.1"),
            super::manual::with_extra_sections(&buf, &short),
        ));
    }
    Ok(pages)
}

pub fn run_completions(args: CompletionsArgs) -> anyhow::Result<()> {
    emit_text(&String::from_utf8_lossy(&completion_script(args.shell)))
}

pub fn run_man(args: ManArgs) -> anyhow::Result<()> {
    let pages = man_pages()?;
    match args.out {
        None => emit_text(&String::from_utf8_lossy(&pages[0].1)),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, text) in pages {
                let path: &Path = &dir.join(name);
                crate::fsutil::write_atomic(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}

//! `edgesim man --out DIR` (hidden): the manual pages, rendered from the same clap definitions as `--help`.
//!
//! One page per visible command, named as man(1) expects: `edgesim.1`, `edgesim-serve.1`,
//! `edgesim-certs-issue.1`, …; the hidden `man` command itself gets none. The Debian package ships them
//! (`[package.metadata.deb]` in Cargo.toml takes `target/release/man/*.1`); `deploy/README.md` has the steps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `edgesim man`.
#[derive(clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created when missing; existing pages are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `edgesim man`: writes the pages of `cmd` (the whole `edgesim` command) and prints their paths.
pub fn run(args: ManArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the directory {}", args.out.display()))?;
    let pages = write_pages(cmd, &args.out)
        .with_context(|| format!("cannot write the manual pages into {}", args.out.display()))?;
    for page in pages {
        println!("{}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one page for `cmd` and for each of its visible subcommands, at every depth, into `dir`; returns
/// the files written, the top command's first.
pub fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    // `help` is a clap built-in, not one of ours; building sets each subcommand's display name
    // (`edgesim-certs-issue`), which names its page.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone())
        .manual("edgesim manual")
        .generate_to(dir)?;
    written.push(page);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    fn names(pages: &[PathBuf]) -> Vec<String> {
        pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn one_page_per_visible_command_none_for_man_itself() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_pages(crate::Args::command(), dir.path()).unwrap();
        let names = names(&pages);
        assert_eq!(names[0], "edgesim.1");
        for page in [
            "edgesim-serve.1",
            "edgesim-call.1",
            "edgesim-check.1",
            "edgesim-certs.1",
            "edgesim-certs-issue.1",
            "edgesim-dns-serve.1",
            "edgesim-scenario-run.1",
            "edgesim-load.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} missing: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("man")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed = names.clone();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn the_serve_page_holds_the_flags_and_help_of_the_clap_definition() {
        let dir = tempfile::tempdir().unwrap();
        write_pages(crate::Args::command(), dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("edgesim-serve.1")).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{page}");
        assert!(page.contains(".TH edgesim-serve 1"), "{page}");
        assert!(page.contains("edgesim manual"), "{page}");
        // roff escapes the hyphens of option names.
        assert!(page.contains("\\-\\-data\\-dir"), "{page}");
        assert!(page.contains("Where the lab CA and the Edge certificate are created"));
        assert!(page.contains("Exit codes: 0 stopped on request"), "{page}");
        let top = std::fs::read_to_string(dir.path().join("edgesim.1")).unwrap();
        assert!(top.contains("edgesim\\-serve(1)"), "{top}");
        assert!(!top.contains("edgesim\\-man"), "{top}");
    }
}

//! `completions` and `man`: generated from the clap tree, so they never drift from it.

mod manual;

use std::path::Path;

use anyhow::Context as _;

use crate::Context;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::settings::{CompletionsSettings, ManSettings};

/// The script that registers tfenv with the shell. It calls `tfenv` (from PATH) at each
/// TAB with `TFENV_COMPLETE=<shell>`, which `lib.rs` answers before anything else runs.
pub fn completions(ctx: &Context, settings: CompletionsSettings) -> anyhow::Result<Exit> {
    use clap_complete::Shell;
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    text_only(ctx, "completions", "a shell script")?;
    let shell: &dyn EnvCompleter = match settings.shell {
        Shell::Bash => &Bash,
        Shell::Elvish => &Elvish,
        Shell::Fish => &Fish,
        Shell::PowerShell => &Powershell,
        Shell::Zsh => &Zsh,
        other => {
            return Err(TfenvError::usage(
                format!("no completions for `{other}`"),
                Some("use bash, zsh, fish, elvish or powershell".to_string()),
            )
            .into());
        }
    };
    // Into memory first: a failed write to stdout is decided on like any other
    // (`stdout_verdict`).
    let mut script = Vec::new();
    shell.write_registration(crate::complete::VAR, "tfenv", "tfenv", "tfenv", &mut script)?;
    crate::output::stdout_write(&script);
    Ok(Exit::Success)
}

pub fn man(ctx: &Context, settings: ManSettings) -> anyhow::Result<Exit> {
    text_only(ctx, "man", "a man page (roff)")?;
    let manual = manual::Manual::new(settings.tree);
    let Some(dir) = settings.dir else {
        let page = match settings.command.as_deref() {
            None => manual.overview()?,
            Some(name) => manual.page(name)?,
        };
        crate::output::stdout_write(&page.roff);
        return Ok(Exit::Success);
    };
    // Every page rendered before the first is written: a failure to render writes nothing.
    let pages = manual.all()?;
    write_pages(&dir, &pages)?;
    ctx.printer.result(&format!(
        "wrote {} pages to `{}` (tfenv.1 and tfenv-<command>.1)",
        pages.len(),
        dir.display()
    ));
    Ok(Exit::Success)
}

/// Each page through a temporary file beside it, renamed into place: a page is there
/// whole or not at all.
fn write_pages(dir: &Path, pages: &[manual::Page]) -> anyhow::Result<()> {
    let cannot = |err: &dyn std::fmt::Display| {
        TfenvError::config(
            format!("cannot write the man pages into `{}`: {err}", dir.display()),
            Some("pass --dir a folder you can write to (it is created when missing)".to_string()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(&e))?;
    for page in pages {
        let path = dir.join(page.file_name());
        crate::files::write_atomic(&path, &page.roff, 0o644)
            .with_context(|| format!("writing `{}`", path.display()))
            .map_err(|e| cannot(&format!("{e:#}")))?;
    }
    Ok(())
}

/// What these print is text by nature: a JSON request for it is a usage error (in
/// JSON), never text on stdout.
fn text_only(ctx: &Context, command: &str, what: &str) -> Result<(), TfenvError> {
    if !ctx.printer.is_json() {
        return Ok(());
    }
    Err(TfenvError::usage(
        format!("`tfenv {command}` prints {what}, not JSON"),
        Some("drop --output json".to_string()),
    ))
}

//! `completions` and `man`: generated from the clap tree, so they never drift from it.

use crate::Context;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::settings::{CompletionsSettings, ManSettings};

pub fn completions(ctx: &Context, settings: CompletionsSettings) -> anyhow::Result<Exit> {
    text_only(ctx, "completions", "a shell script")?;
    let mut tree = settings.tree;
    // Into memory first: clap_complete panics on a failed write (a closed pipe, a full
    // disk); written here, the failure is decided on like any other (`stdout_verdict`).
    let mut script = Vec::new();
    clap_complete::generate(settings.shell, &mut tree, "tfenv", &mut script);
    crate::output::stdout_write(&script);
    Ok(Exit::Success)
}

pub fn man(ctx: &Context, settings: ManSettings) -> anyhow::Result<Exit> {
    text_only(ctx, "man", "a man page (roff)")?;
    let mut page = Vec::new();
    clap_mangen::Man::new(settings.tree).render(&mut page)?;
    crate::output::stdout_write(&page);
    Ok(Exit::Success)
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

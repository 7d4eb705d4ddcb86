//! One module per command. Each composes project, backend, terraform and output; none
//! reaches into another. May use any module below (lib.rs lists them).

mod backup;
mod bootstrap;
mod deploy;
mod doctor;
mod drift;
mod env;
mod envs;
mod exec;
mod history;
mod init;
mod lock;
mod meta;
mod migrate;
mod outputs;
mod plan;
mod prune;
mod refresh;
mod restore;
mod status;
mod unlock;
mod validate;
mod verify;
mod versions;

use crate::Context;
use crate::cli::Command;
use crate::exit::Exit;
use crate::settings::{
    BackupSettings, BackupsSettings, BootstrapSettings, CompletionsSettings, DeploySettings,
    DoctorSettings, DriftSettings, HistorySettings, InitSettings, LockSettings, ManSettings,
    MigrateSettings, OutputsSettings, PlanSettings, PruneSettings, RefreshSettings,
    RestoreSettings, StatusSettings, UnlockSettings, ValidateSettings, VerifySettings,
};
use crate::settings::{EnvSettings, ExecSettings};

/// How a command over several environments ends when some of them have a problem of
/// their own (a broken var or backend file): the others were done, and the error names
/// each one that was not. With one environment selected, its own error as it is.
fn environments_failed(
    lead: &str,
    selected: usize,
    mut failed: Vec<(String, anyhow::Error)>,
) -> anyhow::Error {
    if selected == 1 && failed.len() == 1 {
        return failed.remove(0).1;
    }
    let hint = match failed.as_slice() {
        [(_, one)] => crate::error::hint_for(one).map(str::to_string),
        _ => Some("fix what is named above; the other environments are not affected".to_string()),
    };
    let lines: Vec<String> = failed
        .iter()
        .map(|(name, err)| {
            let text = format!("{err:#}");
            if text.starts_with(&format!("environment `{name}`")) {
                format!("  {text}")
            } else {
                format!("  {name}: {text}")
            }
        })
        .collect();
    crate::error::TfenvError::config(
        format!(
            "{lead} {} of {selected} environments:\n{}",
            failed.len(),
            lines.join("\n")
        ),
        hint,
    )
    .into()
}

/// The one place a command's clap args become its settings: the commands below see only
/// those (`commands_never_see_clap_args` keeps it so).
pub async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<Exit> {
    let global = &ctx.settings;
    match command {
        Command::Envs => envs::envs(ctx),
        Command::Bootstrap(args) => {
            bootstrap::bootstrap(ctx, BootstrapSettings::resolve(args, global)).await
        }
        Command::Init(args) => init::init(ctx, InitSettings::resolve(args, global)).await,
        Command::Migrate(args) => {
            migrate::migrate(ctx, MigrateSettings::resolve(args, global)).await
        }
        Command::Status(args) => status::status(ctx, StatusSettings::resolve(args)?).await,
        Command::Plan(args) => plan::plan(ctx, PlanSettings::resolve(args, global)?).await,
        Command::Drift(args) => drift::drift(ctx, DriftSettings::resolve(args)?).await,
        Command::Validate(args) => validate::validate(ctx, ValidateSettings::resolve(args)?).await,
        Command::Deploy(args) => deploy::deploy(ctx, DeploySettings::resolve(args, global)?).await,
        Command::Refresh(args) => {
            refresh::refresh(ctx, RefreshSettings::resolve(args, global)).await
        }
        Command::Outputs(args) => outputs::outputs(ctx, OutputsSettings::resolve(args)).await,
        Command::History(args) => history::history(ctx, HistorySettings::resolve(args)).await,
        Command::Backup(args) => backup::backup(ctx, BackupSettings::resolve(args)).await,
        Command::Backups(args) => backup::list(ctx, BackupsSettings::resolve(args)).await,
        Command::Verify(args) => verify::verify(ctx, VerifySettings::resolve(args)).await,
        Command::Restore(args) => {
            restore::restore(ctx, RestoreSettings::resolve(args, global)).await
        }
        Command::Prune(args) => prune::prune(ctx, PruneSettings::resolve(args, global)).await,
        Command::Lock(args) => lock::lock(ctx, LockSettings::resolve(args)).await,
        Command::Unlock(args) => unlock::unlock(ctx, UnlockSettings::resolve(args, global)).await,
        Command::Doctor(args) => doctor::doctor(ctx, DoctorSettings::resolve(args, global)).await,
        Command::Exec(args) => exec::exec(ctx, ExecSettings::resolve(args, global)?).await,
        Command::Env(args) => env::env(ctx, EnvSettings::resolve(args)).await,
        Command::Completions { shell, .. } => {
            meta::completions(ctx, CompletionsSettings::resolve(shell))
        }
        Command::Man { command, dir, .. } => meta::man(ctx, ManSettings::resolve(command, dir)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Commands take resolved settings, never clap's args: a file under src/commands/
    /// other than this dispatch that names the `cli` module fails here, naming the file.
    #[test]
    fn commands_never_see_clap_args() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
        let mut files = Vec::new();
        collect_rs(&dir, &mut files);
        files.retain(|path| path != &dir.join("mod.rs"));
        assert!(
            files.len() >= 10,
            "only {} command files under {}",
            files.len(),
            dir.display()
        );
        let offenders: Vec<String> = files
            .iter()
            .filter(|path| names_cli(&std::fs::read_to_string(path).unwrap()))
            .map(|path| path.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "these commands use crate::cli: {offenders:?}"
        );
    }

    #[test]
    fn names_cli_sees_every_way_of_importing_it() {
        assert!(names_cli("use crate::cli::DeployArgs;"));
        assert!(names_cli("use crate::cli;"));
        assert!(names_cli("use crate::{Context, cli::PlanArgs};"));
        assert!(names_cli("fn f(a: cli::PlanArgs) {}"));
        assert!(!names_cli(
            "use crate::settings::PlanSettings; // awscli::x, clap_complete"
        ));
    }

    fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect_rs(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }

    /// `cli` as a path segment of its own: `crate::cli`, `cli::X`, `{cli::X}`.
    fn names_cli(text: &str) -> bool {
        text.match_indices("cli").any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let own_word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = &text[at + 3..];
            own_word
                && (after.starts_with("::")
                    || text[..at].ends_with("crate::")
                    || text[..at].ends_with("super::"))
        })
    }
}

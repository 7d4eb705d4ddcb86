//! `tfenv exec <env> -- <terraform args…>`: terraform run by hand as one environment
//! (its data dir, root, workspace, var files), the terminal passed through and its exit
//! code too. What changes the state is backed up, confirmed by tier and recorded first.

use std::ffi::OsString;

use anyhow::Context as _;

use crate::Context;
use crate::artifacts::backups;
use crate::backend::Backends;
use crate::confirm::{Approval, Gate};
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::pipeline::{RecordedRun, RunResult};
use crate::process::Finished;
use crate::project::Environment;
use crate::settings::ExecSettings;
use crate::terraform::{self, InitOptions, Terraform};

/// The reason of the backup taken before a changing exec (`tfenv backups`).
const BACKUP_REASON: &str = "pre-exec";

pub async fn exec(ctx: &Context, settings: ExecSettings) -> anyhow::Result<Exit> {
    let call = TerraformCall::parse(&settings.args)?;
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?.clone();
    let backend = Backends::default().resolve(&env, &project)?;
    let tf = ctx.terraform(&project).await?;
    if !call.changes_state {
        let args = call.with_var_files(&settings.args, &env, None);
        if call.needs_init {
            ctx.ensure_init(&tf, &project, &env, &backend, InitOptions::default(), None)
                .await?;
        }
        let done = run(ctx, &tf, &env, &args).await?;
        return Ok(exit_of(&done));
    }

    let mut recorded =
        RecordedRun::start(ctx, &project, &env, "exec", true, &tf, &settings.lock_wait).await?;
    recorded.ledger.terraform_command = Some(call.name.clone());
    let result = async {
        ctx.ensure_init(&tf, &project, &env, &backend, InitOptions::default(), None)
            .await?;
        // Pulled before the question (what a destroy takes), kept as a backup only once
        // the run may go on: a refused run leaves none behind.
        let pulled = backups::pull_state(&env, |sink| tf.state_pull_into(&env, sink)).await?;
        // Everything in the state, or (with -target) at least one instance per target.
        let destroys = match (&pulled, call.destroys) {
            (Some(pulled), true) if call.targets > 0 => pulled.header().instances.min(call.targets),
            (Some(pulled), true) => pulled.header().instances,
            _ => 0,
        };
        let approval = Approval::new(
            &project,
            &env,
            format!("run `terraform {}` on", call.name),
            destroys,
        )
        .with_review(call.review(&env.name));
        let gate = Gate::new(approval, settings.flags.clone());
        gate.check_flags_early()?;
        gate.ask(&ctx.interrupts, ctx.prompter.clone()).await?;
        recorded.ledger.backup = match pulled {
            Some(pulled) if !pulled.header().is_empty() => {
                Some(keep_backup(ctx, &project, &env, pulled)?)
            }
            _ => None,
        };
        recorded.reaching_apply();
        // terraform's own backup file (`state rm|mv|replace-provider`): in a private
        // folder of the environment, removed after the run (tfenv's backup holds it).
        let own_backup = match call.backup_at {
            Some(_) => Some(
                tempfile::Builder::new()
                    .prefix(".exec-backup-")
                    .tempdir_in(&env.artifacts_dir)
                    .with_context(|| {
                        format!(
                            "creating a private folder in `{}`",
                            env.artifacts_dir.display()
                        )
                    })?,
            ),
            None => None,
        };
        let backup_file = own_backup
            .as_ref()
            .map(|dir| dir.path().join("terraform.tfstate.backup"));
        let args = call.with_var_files(&settings.args, &env, backup_file.as_deref());
        let done = run(ctx, &tf, &env, &args).await;
        drop(own_backup);
        done
    }
    .await;
    let exit = match result {
        Ok(done) => {
            let exit = exit_of(&done);
            if done.success() {
                recorded.finish(&ctx.printer, RunResult::Applied, exit);
            } else {
                let result = if done.interrupted {
                    RunResult::Interrupted
                } else {
                    RunResult::Failed
                };
                if let Err(err) = recorded.ledger.finish(
                    result,
                    exit,
                    Some(format!("`terraform {}` {}", call.name, done.describe())),
                ) {
                    recorded.warn(
                        &ctx.printer,
                        format!("could not record the run in history: {err:#}"),
                    );
                }
            }
            Ok(exit)
        }
        Err(err) => Err(recorded.fail(&ctx.printer, err)),
    };
    // Recorded, the environment's lock released: then the shared ledger.
    drop(recorded);
    crate::pipeline::share(ctx, &project, &env, &backend).await;
    exit
}

/// Keeps the pulled state as a `pre-exec` backup, unless the newest backup already holds
/// the very same state (failed or repeated execs would pile up copies): that one is
/// the restore point then.
fn keep_backup(
    ctx: &Context,
    project: &crate::project::Project,
    env: &Environment,
    pulled: backups::Pulled,
) -> anyhow::Result<backups::Backup> {
    let dir = backups::dir(env);
    if let Some(newest) = backups::newest_backup(&env.artifacts_dir)?
        && newest.sha256 == pulled.sha256()
        && backups::verify(&dir, &newest).is_ok()
    {
        ctx.printer.progress(&format!(
            "{}: state unchanged since backup {}",
            env.name,
            project.show(&dir.join(&newest.file))
        ));
        return Ok(newest);
    }
    let backup = pulled.keep(BACKUP_REASON)?;
    ctx.printer.progress(&format!(
        "{}: state backed up as {}",
        env.name,
        project.show(&dir.join(&backup.file))
    ));
    Ok(backup)
}

/// Runs terraform on the terminal. The first stop request is terraform's to act on (the
/// terminal gave it the same Ctrl-C): tfenv waits for it and ends as it ends.
async fn run(
    ctx: &Context,
    tf: &Terraform,
    env: &Environment,
    args: &[OsString],
) -> anyhow::Result<Finished> {
    ctx.interrupts.handle_next();
    let inv = tf.terminal_invocation(env, args);
    tf.run_in_terminal(&inv).await
}

/// terraform's exit code as tfenv's; a terraform killed by a signal as a shell says it
/// (128 + the signal: 130 for SIGINT).
fn exit_of(done: &Finished) -> Exit {
    match (done.code, done.signal) {
        (Some(code), _) => Exit::Terraform(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => Exit::Terraform(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => Exit::Failure,
    }
}

/// What tfenv needs to know of a terraform command line.
#[derive(Debug, PartialEq, Eq)]
struct TerraformCall {
    /// The subcommand as history records it: `apply`, `state rm`, `workspace delete`.
    name: String,
    /// Where the var files go: right after the subcommand, before its own arguments
    /// (terraform's flags end at the first positional one; a later `-var-file` of the
    /// user's still wins). `None`: the subcommand takes none.
    var_files_at: Option<usize>,
    changes_state: bool,
    /// `destroy`, `apply -destroy`: everything in the state may go.
    destroys: bool,
    /// How many `-target`s it names (a destroy then takes only those).
    targets: u64,
    /// `version` and `fmt` need no initialized data dir.
    needs_init: bool,
    /// Where tfenv's `-backup=` goes (`state rm|mv|replace-provider` without one of the
    /// user's): right after the `state` subcommand.
    backup_at: Option<usize>,
}

/// tfenv's options that terraform has no flag for.
const TFENV_FLAGS: [&str; 4] = ["yes", "confirm", "allow-destroy", "non-interactive"];

/// The `state` subcommands that write terraform's own backup file (`-backup`).
const STATE_BACKUP_COMMANDS: [&str; 3] = ["state rm", "state mv", "state replace-provider"];

/// The subcommands (and `state`/`workspace` subcommands) that change the state.
const CHANGING: [&str; 11] = [
    "apply",
    "destroy",
    "import",
    "refresh",
    "taint",
    "untaint",
    "force-unlock",
    "state rm",
    "state mv",
    "state push",
    "state replace-provider",
];

/// `apply`'s flags that take a value, which may come as the next argument (`-var-file x`).
const APPLY_VALUE_FLAGS: [&str; 9] = [
    "backup",
    "lock-timeout",
    "parallelism",
    "state",
    "state-out",
    "var",
    "var-file",
    "target",
    "replace",
];

impl TerraformCall {
    fn parse(args: &[OsString]) -> Result<TerraformCall, TfenvError> {
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(chdir) = words
            .iter()
            .take_while(|w| w.starts_with('-'))
            .find(|w| flag_name(w) == "chdir")
        {
            return Err(TfenvError::usage(
                format!("`{chdir}`: tfenv exec runs terraform in the environment's own root"),
                Some("drop -chdir; paths in the terraform arguments are relative to the environment's root".to_string()),
            ));
        }
        // tfenv's own flags after `--` would reach terraform (which has none of them),
        // while tfenv asked for them: say where they go.
        if let Some(ours) = words
            .iter()
            .take_while(|w| *w != "--")
            .find(|w| *w == "-y" || (w.starts_with('-') && TFENV_FLAGS.contains(&flag_name(w))))
        {
            return Err(TfenvError::usage(
                format!("`{ours}` is tfenv's option, not terraform's: it goes before `--`"),
                Some(
                    "write `tfenv exec ENV --yes [--confirm ENV] [--allow-destroy] -- TERRAFORM_ARGS`"
                        .to_string(),
                ),
            ));
        }
        let Some(at) = words.iter().position(|w| !w.starts_with('-')) else {
            // `-help`, `-version`: terraform's own answer.
            return Ok(TerraformCall {
                name: words.first().cloned().unwrap_or_default(),
                var_files_at: None,
                changes_state: false,
                destroys: false,
                targets: 0,
                needs_init: false,
                backup_at: None,
            });
        };
        let first = words[at].as_str();
        if first == "init" {
            return Err(TfenvError::usage(
                "`tfenv exec` initializes the environment itself; `terraform init` there would lose its backend config",
                Some(
                    "use `tfenv init ENV` (with --upgrade or --reconfigure when you need them)"
                        .to_string(),
                ),
            ));
        }
        let second = words[at + 1..]
            .iter()
            .find(|w| !w.starts_with('-'))
            .map(String::as_str);
        let name = match (first, second) {
            ("state" | "workspace", Some(sub)) => format!("{first} {sub}"),
            _ => first.to_string(),
        };
        let rest = &words[at + 1..];
        if matches!(
            name.as_str(),
            "workspace new" | "workspace select" | "workspace delete"
        ) {
            return Err(TfenvError::usage(
                format!(
                    "`tfenv exec` does not run `terraform {name}`: an environment's workspace is part of its configuration"
                ),
                Some(
                    "set `workspace = \"NAME\"` for the environment in tfenv.toml; `-- workspace list` and `-- workspace show` run as usual"
                        .to_string(),
                ),
            ));
        }
        let destroys = first == "destroy"
            || (first == "apply" && rest.iter().any(|w| flag_name(w) == "destroy"));
        // A saved plan names neither the environment it was made for nor, to tfenv, what
        // it destroys: applying one here would skip the tier's confirmation.
        if first == "apply" && has_positional(rest, &APPLY_VALUE_FLAGS) {
            return Err(TfenvError::usage(
                "`tfenv exec` does not apply a saved plan file: tfenv cannot tell which environment it was made for or what it destroys",
                Some(
                    "use `tfenv plan ENV --out DIR`, then `tfenv deploy ENV --plan DIR`; or `tfenv exec ENV -- apply` without a plan file"
                        .to_string(),
                ),
            ));
        }
        let takes_var_files = terraform::VAR_FILE_COMMANDS.contains(&first);
        // `state rm|mv|replace-provider` always write a backup of their own, by default
        // `terraform.tfstate.<time>.backup` in the root (the git work tree); tfenv moves it
        // to a private folder (it took its own backup first). A `-backup` of the user's wins.
        let backup_at = (STATE_BACKUP_COMMANDS.contains(&name.as_str())
            && !rest.iter().any(|w| flag_name(w) == "backup"))
        .then(|| {
            at + 1
                + rest
                    .iter()
                    .position(|w| !w.starts_with('-'))
                    .map_or(0, |i| i + 1)
        });
        Ok(TerraformCall {
            changes_state: CHANGING.contains(&name.as_str()),
            var_files_at: takes_var_files.then_some(at + 1),
            backup_at,
            destroys,
            targets: rest.iter().filter(|w| flag_name(w) == "target").count() as u64,
            needs_init: !matches!(first, "version" | "fmt"),
            name,
        })
    }

    /// What to look at before approving with flags: a plan shows what `apply`,
    /// `destroy` and `refresh` change, not what a `state` or other command does.
    fn review(&self, env: &str) -> String {
        let look = match self.name.as_str() {
            "destroy" => Some(format!("`tfenv exec {env} -- plan -destroy`")),
            "apply" if self.destroys => Some(format!("`tfenv exec {env} -- plan -destroy`")),
            "apply" => Some(format!("`tfenv exec {env} -- plan`")),
            "refresh" => Some(format!("`tfenv exec {env} -- plan -refresh-only`")),
            "state rm" | "state mv" | "state replace-provider" | "taint" | "untaint" => {
                Some(format!("`tfenv exec {env} -- state list`"))
            }
            _ => None,
        };
        match look {
            Some(look) => format!("check what `terraform {}` will change ({look})", self.name),
            None => format!("check what `terraform {}` will change", self.name),
        }
    }

    /// The command line with the environment's var files in their place, and terraform's
    /// own backup file (when it writes one) sent to `backup` (see [`Self::backup_at`]).
    fn with_var_files(
        &self,
        args: &[OsString],
        env: &Environment,
        backup: Option<&std::path::Path>,
    ) -> Vec<OsString> {
        let mut out = args.to_vec();
        if let (Some(at), Some(backup)) = (self.backup_at, backup) {
            out.insert(at, terraform::flag_path("-backup=", backup));
        }
        if let Some(at) = self.var_files_at {
            let files = env
                .var_files
                .iter()
                .map(|p| terraform::flag_path("-var-file=", p));
            out.splice(at..at, files);
        }
        out
    }
}

/// `-var-file=x`, `--var-file` → `var-file`.
fn flag_name(word: &str) -> &str {
    let bare = word.trim_start_matches('-');
    bare.split_once('=').map_or(bare, |(name, _)| name)
}

/// Whether `args` (after the subcommand) hold a positional argument, given the flags
/// whose value may come as the next argument.
fn has_positional(args: &[String], value_flags: &[&str]) -> bool {
    let mut skip_next = false;
    for word in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if word == "--" {
            return false;
        }
        if word.starts_with('-') && word.len() > 1 {
            skip_next = !word.contains('=') && value_flags.contains(&flag_name(word));
            continue;
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(|w| OsStr::new(w).to_os_string()).collect()
    }

    fn call(words: &[&str]) -> TerraformCall {
        TerraformCall::parse(&os(words)).unwrap()
    }

    #[test]
    fn state_changing_subcommands_are_told_from_read_only_ones() {
        for changing in [
            &["apply"][..],
            &["destroy"],
            &["import", "a.b", "id"],
            &["state", "rm", "a.b"],
            &["state", "-lock=false", "mv", "a", "b"],
            &["state", "push", "x.tfstate"],
            &["state", "replace-provider", "a", "b"],
            &["taint", "a.b"],
            &["untaint", "a.b"],
            &["force-unlock", "ID"],
            &["apply", "-destroy"],
        ] {
            assert!(call(changing).changes_state, "{changing:?}");
        }
        for read_only in [
            &["plan"][..],
            &["state", "list"],
            &["state", "show", "a.b"],
            &["state", "pull"],
            &["output", "-json"],
            &["show"],
            &["validate"],
            &["providers"],
            &["graph"],
            &["version"],
            &["console"],
            &["workspace", "list"],
            &["workspace", "show"],
        ] {
            assert!(!call(read_only).changes_state, "{read_only:?}");
        }
        assert_eq!(
            call(&["state", "-lock=false", "mv", "a", "b"]).name,
            "state mv"
        );
    }

    #[test]
    fn var_files_go_right_after_the_subcommand_that_takes_them() {
        assert_eq!(call(&["plan", "-out=x"]).var_files_at, Some(1));
        assert_eq!(call(&["import", "a.b", "id"]).var_files_at, Some(1));
        assert_eq!(call(&["console"]).var_files_at, Some(1));
        assert_eq!(call(&["state", "list"]).var_files_at, None);
        assert_eq!(call(&["output"]).var_files_at, None);
    }

    #[test]
    fn a_saved_plan_file_is_refused_and_a_plain_apply_gets_var_files() {
        for saved in [
            &["apply", "dev.tfplan"][..],
            &[
                "apply",
                "-auto-approve",
                "-lock-timeout",
                "5s",
                "dev.tfplan",
            ],
        ] {
            let err = TerraformCall::parse(&os(saved)).unwrap_err();
            assert!(err.to_string().contains("saved plan"), "{saved:?}: {err}");
        }
        assert_eq!(call(&["apply", "-target", "a.b"]).var_files_at, Some(1));
        assert_eq!(
            call(&["apply", "-var-file=x", "-auto-approve"]).var_files_at,
            Some(1)
        );
    }

    #[test]
    fn workspace_changes_are_refused_and_workspace_reads_run() {
        for sub in ["new", "select", "delete"] {
            assert!(TerraformCall::parse(&os(&["workspace", sub, "x"])).is_err());
        }
        assert!(!call(&["workspace", "show"]).changes_state);
    }

    #[test]
    fn state_commands_get_a_backup_path_unless_the_user_gave_one() {
        assert_eq!(call(&["state", "rm", "a.b"]).backup_at, Some(2));
        assert_eq!(
            call(&["state", "-lock=false", "mv", "a", "b"]).backup_at,
            Some(3)
        );
        assert_eq!(call(&["state", "rm", "-backup=x", "a.b"]).backup_at, None);
        assert_eq!(call(&["state", "list"]).backup_at, None);
        assert_eq!(call(&["taint", "a.b"]).backup_at, None);
    }

    #[test]
    fn review_hints_name_what_shows_the_change() {
        assert!(
            call(&["destroy"])
                .review("dev")
                .contains("-- plan -destroy")
        );
        assert!(
            call(&["apply", "-destroy"])
                .review("dev")
                .contains("-- plan -destroy")
        );
        assert!(call(&["apply"]).review("dev").contains("-- plan`"));
        assert!(!call(&["state", "rm", "a"]).review("dev").contains("plan"));
    }

    #[test]
    fn destroying_calls_are_known() {
        assert!(call(&["destroy"]).destroys);
        assert!(call(&["apply", "-destroy", "-auto-approve"]).destroys);
        assert!(!call(&["apply"]).destroys);
        assert_eq!(
            call(&["destroy", "-target=a.b", "-target", "c.d"]).targets,
            2
        );
    }

    #[test]
    fn tfenv_flags_among_terraform_args_are_refused() {
        for words in [
            &["apply", "--yes", "-auto-approve"][..],
            &["destroy", "--confirm=production"],
            &["destroy", "--allow-destroy"],
            &["state", "rm", "-y", "a.b"],
        ] {
            let err = TerraformCall::parse(&os(words)).unwrap_err();
            assert!(err.to_string().contains("before `--`"), "{words:?}: {err}");
        }
        assert!(TerraformCall::parse(&os(&["console", "--", "--yes"])).is_ok());
    }

    #[test]
    fn chdir_and_init_are_refused() {
        assert!(TerraformCall::parse(&os(&["-chdir=x", "plan"])).is_err());
        assert!(TerraformCall::parse(&os(&["init"])).is_err());
    }
}

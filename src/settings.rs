//! Flags + environment + tfenv.toml → resolved settings: `GlobalSettings` once per run,
//! and one plain struct per command, each built from its clap args here and only here
//! (`commands/mod.rs` calls these). Nothing below this module sees clap.
//! May use: cli, confirm (its flags), terraform (init options), project, output, error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{self, GlobalArgs, OutputFormat};
use crate::confirm::Flags;
use crate::error::TfenvError;
use crate::output::Format;
use crate::project::{Project, normalize};
use crate::terraform::InitOptions;

/// The settings every command shares.
#[derive(Clone, Debug)]
pub struct GlobalSettings {
    /// Where tfenv acts from (`-C` applied).
    pub cwd: PathBuf,
    /// Where tfenv was started (the shell's directory; `cwd` without `-C`).
    pub started_in: PathBuf,
    pub config: Option<PathBuf>,
    pub output: OutputSettings,
    /// Prompts may be shown: stdin is a terminal, no `--non-interactive`, no `CI`.
    pub interactive: bool,
    /// `--terraform`, relative to `cwd`; see `terraform_binary`.
    terraform_flag: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: the file GitHub Actions shows on the run's page.
    step_summary: Option<PathBuf>,
}

/// How tfenv writes: decided before anything else, so that even an error about the
/// rest of the command line is printed the way the user asked.
#[derive(Clone, Copy, Debug)]
pub struct OutputSettings {
    pub format: Format,
    /// 0 normal, 1 debug (-v), 2 trace and full error details (-vv).
    pub verbosity: u8,
    pub quiet: bool,
    pub colors: Colors,
}

/// Whether stdout and stderr get colour. Decided once, here, from `--no-color`,
/// `NO_COLOR` and whether each stream is a terminal; the printer, the prompts
/// (through console's globals, `install`) and the log lines all follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colors {
    fn decide(no_color_flag: bool) -> Colors {
        let no_color = no_color_flag || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Colors {
            stdout: !no_color && std::io::stdout().is_terminal(),
            stderr: !no_color && std::io::stderr().is_terminal(),
        }
    }

    /// console's styles (the prompts) follow the same decision.
    pub fn install(self) {
        console::set_colors_enabled(self.stdout);
        console::set_colors_enabled_stderr(self.stderr);
    }
}

impl OutputSettings {
    /// Never fails: whatever else is wrong with the command line is reported through it.
    pub fn resolve(global: &GlobalArgs) -> OutputSettings {
        OutputSettings {
            format: match global.output {
                OutputFormat::Human => Format::Human,
                OutputFormat::Json => Format::Json,
            },
            verbosity: global.verbose,
            quiet: global.quiet,
            colors: Colors::decide(global.no_color),
        }
    }
}

impl GlobalSettings {
    pub fn resolve(global: &GlobalArgs, output: OutputSettings) -> anyhow::Result<GlobalSettings> {
        GlobalSettings::resolve_for(global, output, true)
    }

    /// `reads_project`: false for a command that reads no project (`completions`, `man`),
    /// which then runs in a current directory that is gone (deleted) too.
    pub fn resolve_for(
        global: &GlobalArgs,
        output: OutputSettings,
        reads_project: bool,
    ) -> anyhow::Result<GlobalSettings> {
        let here = match std::env::current_dir() {
            Ok(here) => here,
            Err(_) if !reads_project => PathBuf::new(),
            Err(e) => anyhow::bail!("cannot read the current directory: {e}"),
        };
        // Relative to where tfenv was started, as the CI runner that set it meant it.
        let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(|v| here.join(v));
        let started_in = here.clone();
        let cwd = match &global.chdir {
            Some(dir) => {
                let dir = here.join(dir);
                if !dir.is_dir() {
                    return Err(TfenvError::usage(
                        format!("-C `{}`: no such directory", dir.display()),
                        None,
                    )
                    .into());
                }
                dir
            }
            None => here,
        };
        let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        Ok(GlobalSettings {
            config: global.config.as_ref().map(|path| cwd.join(path)),
            terraform_flag: global.terraform.clone(),
            step_summary,
            cwd,
            started_in,
            output,
            interactive: !global.non_interactive
                && !in_ci
                && crate::confirm::terminal_in_foreground(),
        })
    }

    /// The terraform binary to run, decided here and nowhere else: `--terraform`
    /// (relative to where tfenv acts), else tfenv.toml's `terraform =` (relative to the
    /// project root), else `terraform` on PATH. A bare name is looked up on PATH.
    pub fn terraform_binary(&self, project: &Project) -> anyhow::Result<PathBuf> {
        let (wanted, base) = match (&self.terraform_flag, &project.terraform) {
            (Some(flag), _) => (flag.clone(), self.cwd.as_path()),
            (None, Some(configured)) => (PathBuf::from(configured), project.root.as_path()),
            (None, None) => (PathBuf::from("terraform"), self.cwd.as_path()),
        };
        find_binary(&wanted, base)
    }

    /// The files a command's Markdown job summary is appended to: `--summary FILE`
    /// (relative to where tfenv acts) and the one `GITHUB_STEP_SUMMARY` names, once each.
    pub fn summary_files(&self, flag: Option<&Path>) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = flag.map(|f| self.cwd.join(f)).into_iter().collect();
        if let Some(step) = &self.step_summary
            && !files.contains(step)
        {
            files.push(step.clone());
        }
        files
    }

    /// The approval flags of a command that changes or deletes something; only deploy
    /// may allow a destroy.
    fn flags(&self, approve: cli::ConfirmArgs, allow_destroy: bool) -> Flags {
        Flags {
            yes: approve.yes,
            confirm: approve.confirm,
            allow_destroy,
            interactive: self.interactive,
        }
    }
}

fn find_binary(wanted: &Path, base: &Path) -> anyhow::Result<PathBuf> {
    let missing = |what: String| -> anyhow::Error {
        TfenvError::config(
            what,
            Some(
                "install Terraform (https://developer.hashicorp.com/terraform/install) or OpenTofu, or point --terraform or [project] terraform in tfenv.toml at it"
                    .to_string(),
            ),
        )
        .into()
    };
    if wanted.components().count() > 1 {
        let path = if wanted.is_absolute() {
            wanted.to_path_buf()
        } else {
            base.join(wanted)
        };
        if !path.is_file() {
            return Err(missing(format!(
                "terraform binary `{}` does not exist",
                path.display()
            )));
        }
        return Ok(path);
    }
    which::which(wanted)
        .map_err(|_| missing(format!("`{}` was not found on PATH", wanted.display())))
}

/// How long a command waits for a lock another run holds (`--lock-timeout`): tfenv's
/// own lock of the environment, and terraform's state lock. The pipeline's `Request`
/// carries it, so every command that runs the pipeline (one environment or several, a
/// plan or a bundle) waits the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockWait {
    /// Zero: a held lock stops the run at once (exit 4), as without the flag.
    pub timeout: Duration,
    /// How often the holder is said while tfenv waits (30 s; tests make it shorter).
    pub report_every: Duration,
}

impl LockWait {
    /// Said every 30 s while waiting.
    pub const REPORT_EVERY: Duration = Duration::from_secs(30);

    pub fn new(timeout: Duration) -> LockWait {
        LockWait {
            timeout,
            report_every: LockWait::REPORT_EVERY,
        }
    }

    /// A held lock is waited for, not refused at once.
    pub fn waits(&self) -> bool {
        !self.timeout.is_zero()
    }
}

impl Default for LockWait {
    fn default() -> LockWait {
        LockWait::new(Duration::ZERO)
    }
}

impl From<cli::LockTimeout> for LockWait {
    fn from(args: cli::LockTimeout) -> LockWait {
        LockWait::new(args.lock_timeout)
    }
}

/// `init`.
#[derive(Debug)]
pub struct InitSettings {
    /// The environments asked for; empty means all (`--all`).
    pub names: Vec<String>,
    pub options: InitOptions,
    pub log: bool,
    /// How long another run's hold on an environment is waited for (`--lock-timeout`).
    pub lock_wait: LockWait,
    /// `--reconfigure` that abandons a state (the backend moved): confirmed by tier.
    pub flags: Flags,
}

impl InitSettings {
    pub fn resolve(args: cli::InitArgs, global: &GlobalSettings) -> InitSettings {
        InitSettings {
            names: args.target.names(),
            options: InitOptions {
                reconfigure: args.reconfigure,
                upgrade: args.upgrade,
                migrate: false,
            },
            log: args.log,
            lock_wait: args.lock.into(),
            flags: global.flags(args.approve, false),
        }
    }
}

/// `migrate`.
#[derive(Debug)]
pub struct MigrateSettings {
    pub env: String,
    /// The old backend config file (from `cwd`); `None`: the backend the data dir was
    /// last initialized with.
    pub from: Option<PathBuf>,
    /// The old backend's type, when it is not the one recorded at the last init (or,
    /// without a record, the root module's).
    pub from_type: Option<String>,
    /// Overwrite a state with resources at the new location.
    pub force: bool,
    pub flags: Flags,
    pub lock_wait: LockWait,
}

impl MigrateSettings {
    pub fn resolve(args: cli::MigrateArgs, global: &GlobalSettings) -> MigrateSettings {
        MigrateSettings {
            env: args.env,
            from: args.from.map(|path| global.cwd.join(path)),
            from_type: args.from_type,
            force: args.force,
            flags: global.flags(args.approve, false),
            lock_wait: args.lock.into(),
        }
    }
}

/// `status`.
#[derive(Debug)]
pub struct StatusSettings {
    /// Empty means all.
    pub envs: Vec<String>,
    /// How many environments are checked at once (at least 1).
    pub jobs: usize,
    pub timeout: Duration,
    /// `--summary FILE`; see `GlobalSettings::summary_files`.
    pub summary: Option<PathBuf>,
}

impl StatusSettings {
    pub fn resolve(args: cli::StatusArgs) -> anyhow::Result<StatusSettings> {
        // Reads wait on the network more than on the CPU: twice the CPUs.
        let jobs = jobs(args.jobs, 2)?;
        Ok(StatusSettings {
            envs: args.envs,
            jobs,
            timeout: args.deadline.timeout,
            summary: args.summary.summary,
        })
    }
}

/// `-j N` of a command that works on several environments at once: at least 1; by
/// default `per_cpu` times the number of CPUs.
fn jobs(asked: Option<usize>, per_cpu: usize) -> anyhow::Result<usize> {
    match asked {
        Some(0) => Err(TfenvError::usage("--jobs must be at least 1", None).into()),
        Some(jobs) => Ok(jobs),
        None => Ok(std::thread::available_parallelism().map_or(2, |n| n.get() * per_cpu)),
    }
}

/// `plan`.
#[derive(Debug)]
pub struct PlanSettings {
    /// The environments asked for; empty means all (`--all`).
    pub envs: Vec<String>,
    /// `--all`: the JSON document is the list even for one environment.
    pub all: bool,
    /// How many environments are planned at once (at least 1).
    pub jobs: usize,
    pub detailed_exitcode: bool,
    pub log: bool,
    /// `--out`: the plan bundle's folder, relative paths resolved from where tfenv acts
    /// (`..` lexically, as for `-C` and `--config`).
    pub out: Option<PathBuf>,
    /// `--encrypt`: how the bundle's plan files are encrypted.
    pub encrypt: Option<Sealing>,
    /// `--publish`: the bundle is uploaded to the shared ledger (one environment).
    pub publish: bool,
    pub lock_wait: LockWait,
    /// `--summary FILE`; see `GlobalSettings::summary_files`.
    pub summary: Option<PathBuf>,
}

/// `tfenv drift`: which environments, how many at once, how long each check may take.
#[derive(Clone, Debug)]
pub struct DriftSettings {
    /// The environments asked for; empty means all (`--all`).
    pub envs: Vec<String>,
    /// How many environments are checked at once (at least 1).
    pub jobs: usize,
    /// One environment's check (init, plan, show) is stopped after this.
    pub timeout: Duration,
    /// `--summary FILE`; see `GlobalSettings::summary_files`.
    pub summary: Option<PathBuf>,
}

impl DriftSettings {
    pub fn resolve(args: cli::DriftArgs) -> anyhow::Result<DriftSettings> {
        Ok(DriftSettings {
            envs: args.envs,
            // A check mostly waits: terraform refreshes every resource through the
            // cloud's APIs. Two per CPU, as status's reads.
            jobs: jobs(args.jobs, 2)?,
            timeout: args.timeout,
            summary: args.summary.summary,
        })
    }
}

/// A secret from the environment (a passphrase, a private key): never printed, not even
/// by `{:?}`.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whom `plan --out DIR --encrypt` encrypts the bundle's plan files to.
#[derive(Clone, Debug)]
pub enum Sealing {
    /// age public keys (`age1…`), from `--recipient` or `TFENV_BUNDLE_RECIPIENTS`.
    Recipients(Vec<String>),
    /// `TFENV_BUNDLE_PASSPHRASE`.
    Passphrase(Secret),
}

/// What `deploy --plan DIR` may decrypt an encrypted bundle with, from the environment.
#[derive(Clone, Debug, Default)]
pub struct BundleKeys {
    /// `TFENV_BUNDLE_IDENTITY`: an age identity file's path, or the key itself.
    pub identity: Option<Secret>,
    /// `TFENV_BUNDLE_PASSPHRASE`.
    pub passphrase: Option<Secret>,
}

pub const RECIPIENTS_VAR: &str = "TFENV_BUNDLE_RECIPIENTS";
pub const PASSPHRASE_VAR: &str = "TFENV_BUNDLE_PASSPHRASE";
pub const IDENTITY_VAR: &str = "TFENV_BUNDLE_IDENTITY";

/// A variable of the environment that is set and not empty.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl BundleKeys {
    pub fn from_env() -> BundleKeys {
        BundleKeys {
            identity: env_value(IDENTITY_VAR).map(Secret),
            passphrase: env_value(PASSPHRASE_VAR).map(Secret),
        }
    }
}

/// `--encrypt`'s recipients (the flags, else `TFENV_BUNDLE_RECIPIENTS`) or passphrase.
fn sealing(recipients: Vec<String>) -> anyhow::Result<Sealing> {
    let recipients = match recipients.is_empty() {
        false => recipients,
        true => env_value(RECIPIENTS_VAR)
            .map(|list| {
                list.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|key| !key.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let passphrase = env_value(PASSPHRASE_VAR);
    match (recipients.is_empty(), passphrase) {
        (false, Some(_)) => Err(TfenvError::usage(
            format!("--encrypt: both recipients and {PASSPHRASE_VAR} are set"),
            Some(format!(
                "encrypt to recipients (--recipient, {RECIPIENTS_VAR}) or with a passphrase ({PASSPHRASE_VAR}), not both: unset one"
            )),
        )
        .into()),
        (false, None) => Ok(Sealing::Recipients(recipients)),
        (true, Some(passphrase)) => Ok(Sealing::Passphrase(Secret(passphrase))),
        (true, None) => Err(TfenvError::usage(
            "--encrypt needs a recipient or a passphrase",
            Some(format!(
                "give `--recipient age1…` (repeatable), set {RECIPIENTS_VAR} to age public keys, or set {PASSPHRASE_VAR}"
            )),
        )
        .into()),
    }
}

impl PlanSettings {
    pub fn resolve(args: cli::PlanArgs, global: &GlobalSettings) -> anyhow::Result<PlanSettings> {
        if args.encrypt && args.out.is_none() && !args.publish {
            return Err(TfenvError::usage(
                "--encrypt encrypts a plan bundle: it needs `--out <DIR>` or `--publish`",
                Some(
                    "`tfenv plan <env> --out DIR --encrypt`, or `tfenv plan <env> --publish --encrypt`"
                        .to_string(),
                ),
            )
            .into());
        }
        // A bundle is one environment's plan (several would each need `DIR/<env>/`).
        if args.out.is_some() && (args.all || args.envs.len() != 1) {
            return Err(TfenvError::usage(
                "--out keeps the plan of one environment",
                Some(
                    "plan each environment with its own folder: `tfenv plan <env> --out DIR`"
                        .to_string(),
                ),
            )
            .into());
        }
        if args.publish && (args.all || args.envs.len() != 1) {
            return Err(TfenvError::usage(
                "--publish publishes the plan of one environment",
                Some("publish each environment's plan: `tfenv plan <env> --publish`".to_string()),
            )
            .into());
        }
        Ok(PlanSettings {
            envs: args.envs,
            all: args.all,
            // A plan keeps a CPU busy (terraform and its providers): one per CPU.
            jobs: jobs(args.jobs, 1)?,
            detailed_exitcode: args.detailed_exitcode,
            log: args.log,
            out: args.out.map(|dir| normalize(&global.cwd.join(dir))),
            encrypt: match args.encrypt {
                true => Some(sealing(args.recipient)?),
                false => None,
            },
            publish: args.publish,
            lock_wait: args.lock.into(),
            summary: args.summary.summary,
        })
    }

    /// One environment named: planned as always, its output streamed as it comes.
    pub fn single(&self) -> Option<&str> {
        match (self.all, self.envs.as_slice()) {
            (false, [env]) => Some(env),
            _ => None,
        }
    }
}

/// `validate`.
#[derive(Debug)]
pub struct ValidateSettings {
    /// The environments asked for; empty means all (`--all`).
    pub envs: Vec<String>,
    /// How many roots are checked at once (at least 1).
    pub jobs: usize,
}

impl ValidateSettings {
    pub fn resolve(args: cli::ValidateArgs) -> anyhow::Result<ValidateSettings> {
        Ok(ValidateSettings {
            envs: args.envs,
            // terraform validate keeps a CPU busy: one per CPU, as plan.
            jobs: jobs(args.jobs, 1)?,
        })
    }
}

/// Where `deploy --plan` finds the bundle it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanSource {
    /// A folder (`plan --out DIR`), resolved from where tfenv acts.
    Dir(PathBuf),
    /// `ledger:<ID>`: a bundle `plan --publish` put in the shared ledger.
    Ledger(String),
}

/// The prefix of `--plan ledger:<ID>`.
pub const LEDGER_PREFIX: &str = "ledger:";

impl PlanSource {
    fn parse(plan: &Path, cwd: &Path) -> anyhow::Result<PlanSource> {
        let text = plan.to_string_lossy();
        let Some(id) = text.strip_prefix(LEDGER_PREFIX) else {
            return Ok(PlanSource::Dir(normalize(&cwd.join(plan))));
        };
        // The ID becomes part of an object key: nothing that could leave `plans/<ID>/`.
        let valid = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(TfenvError::usage(
                format!("--plan `{text}`: `{id}` is not the ID of a published plan"),
                Some(
                    "give the ID `tfenv plan <env> --publish` printed (letters, digits, `-`, `_`, `.`), e.g. `--plan ledger:20261130T120000Z-4f2c9e1-a1b2c3`"
                        .to_string(),
                ),
            )
            .into());
        }
        Ok(PlanSource::Ledger(id.to_string()))
    }
}

/// `deploy`.
#[derive(Debug)]
pub struct DeploySettings {
    pub env: String,
    pub flags: Flags,
    pub allow_dirty: bool,
    pub include_sensitive: bool,
    pub log: bool,
    /// `--skip-promotion-check`: why the promotion check is skipped (never empty).
    pub skip_promotion_check: Option<String>,
    /// `--timeout`: each read or upload of the shared ledger.
    pub ledger_timeout: std::time::Duration,
    /// `--plan`: the plan bundle to apply.
    pub bundle: Option<PlanSource>,
    /// What an encrypted bundle is decrypted with.
    pub bundle_keys: BundleKeys,
    pub lock_wait: LockWait,
    /// `--summary FILE`; see `GlobalSettings::summary_files`.
    pub summary: Option<PathBuf>,
}

/// The longest `--skip-promotion-check` reason, in characters: a sentence and a ticket.
pub const SKIP_REASON_MAX: usize = 500;

/// A `--skip-promotion-check` reason is one line of text people read in history: not
/// empty, no control characters (newlines, escapes), at most [`SKIP_REASON_MAX`].
fn check_skip_reason(reason: &str) -> Result<(), TfenvError> {
    let example = "e.g. --skip-promotion-check \"hotfix INC-42\": it is kept in history";
    let problem = if reason.trim().is_empty() {
        "--skip-promotion-check needs a reason, and it is empty".to_string()
    } else if reason.chars().any(char::is_control) {
        "--skip-promotion-check: the reason must be one line of text, without newlines or other control characters".to_string()
    } else if reason.chars().count() > SKIP_REASON_MAX {
        format!(
            "--skip-promotion-check: the reason is {} characters long; at most {SKIP_REASON_MAX} are kept",
            reason.chars().count()
        )
    } else {
        return Ok(());
    };
    Err(TfenvError::usage(
        problem,
        Some(format!(
            "say why the promotion check is skipped in one short line, {example}"
        )),
    ))
}

impl DeploySettings {
    pub fn resolve(
        args: cli::DeployArgs,
        global: &GlobalSettings,
    ) -> anyhow::Result<DeploySettings> {
        if let Some(reason) = &args.skip_promotion_check {
            check_skip_reason(reason)?;
        }
        let bundle = args
            .plan
            .as_deref()
            .map(|plan| PlanSource::parse(plan, &global.cwd))
            .transpose()?;
        Ok(DeploySettings {
            env: args.env,
            skip_promotion_check: args.skip_promotion_check.map(|r| r.trim().to_string()),
            ledger_timeout: args.ledger.timeout,
            flags: global.flags(args.apply.approve, args.allow_destroy),
            allow_dirty: args.allow_dirty,
            include_sensitive: args.apply.include_sensitive,
            log: args.apply.log,
            bundle_keys: match args.plan {
                Some(_) => BundleKeys::from_env(),
                None => BundleKeys::default(),
            },
            bundle,
            lock_wait: args.lock.into(),
            summary: args.summary.summary,
        })
    }
}

/// `refresh`.
#[derive(Debug)]
pub struct RefreshSettings {
    pub env: String,
    pub dry_run: bool,
    /// A refresh never destroys resources: it only records what exists.
    pub flags: Flags,
    pub allow_dirty: bool,
    pub include_sensitive: bool,
    pub log: bool,
    pub lock_wait: LockWait,
    /// `--timeout`: each read or upload of the shared ledger.
    pub ledger_timeout: std::time::Duration,
    /// `--summary FILE`; see `GlobalSettings::summary_files`.
    pub summary: Option<PathBuf>,
}

impl RefreshSettings {
    pub fn resolve(args: cli::RefreshArgs, global: &GlobalSettings) -> RefreshSettings {
        RefreshSettings {
            env: args.env,
            dry_run: args.dry_run,
            flags: global.flags(args.apply.approve, false),
            allow_dirty: args.allow_dirty,
            include_sensitive: args.apply.include_sensitive,
            log: args.apply.log,
            lock_wait: args.lock.into(),
            ledger_timeout: args.ledger.timeout,
            summary: args.summary.summary,
        }
    }
}

/// `outputs`.
#[derive(Debug)]
pub struct OutputsSettings {
    pub env: String,
    pub cached: bool,
    pub include_sensitive: bool,
}

impl OutputsSettings {
    pub fn resolve(args: cli::OutputsArgs) -> OutputsSettings {
        OutputsSettings {
            env: args.env,
            cached: args.cached,
            include_sensitive: args.include_sensitive,
        }
    }
}

/// `history`.
#[derive(Debug)]
pub struct HistorySettings {
    pub env: String,
    /// The newest N records; 0 means all.
    pub limit: usize,
    /// Each read of the shared ledger gives up after this long.
    pub timeout: Duration,
}

impl HistorySettings {
    pub fn resolve(args: cli::HistoryArgs) -> HistorySettings {
        HistorySettings {
            env: args.env,
            limit: args.limit,
            timeout: args.deadline.timeout,
        }
    }
}

/// `backup`.
#[derive(Debug)]
pub struct BackupSettings {
    /// Empty means all (`--all`).
    pub names: Vec<String>,
}

impl BackupSettings {
    pub fn resolve(args: cli::BackupArgs) -> BackupSettings {
        BackupSettings {
            names: args.target.names(),
        }
    }
}

/// `backups`.
#[derive(Debug)]
pub struct BackupsSettings {
    pub env: String,
    /// Each read of the shared ledger gives up after this long.
    pub timeout: Duration,
    /// `--versions`: the state object's versions in the bucket, not tfenv's backups.
    pub versions: bool,
    /// `--limit`: how many versions to show, newest first (0: all).
    pub limit: usize,
}

impl BackupsSettings {
    pub fn resolve(args: cli::BackupsArgs) -> BackupsSettings {
        BackupsSettings {
            env: args.env,
            timeout: args.deadline.timeout,
            versions: args.versions,
            limit: args.limit,
        }
    }
}

/// `verify`.
#[derive(Debug)]
pub struct VerifySettings {
    /// Empty means all.
    pub envs: Vec<String>,
    /// Each read of the shared ledger gives up after this long.
    pub timeout: Duration,
}

impl VerifySettings {
    pub fn resolve(args: cli::VerifyArgs) -> VerifySettings {
        VerifySettings {
            envs: args.envs,
            timeout: args.deadline.timeout,
        }
    }
}

/// `restore`.
#[derive(Debug)]
pub struct RestoreSettings {
    pub env: String,
    /// `latest`, a backup's file name, `version:<ID>`, or the path of a state file (from `cwd`).
    pub backup: String,
    pub force: bool,
    pub flags: Flags,
    pub lock_wait: LockWait,
}

impl RestoreSettings {
    pub fn resolve(args: cli::RestoreArgs, global: &GlobalSettings) -> RestoreSettings {
        RestoreSettings {
            env: args.env,
            backup: args.backup,
            force: args.force,
            flags: global.flags(args.approve, false),
            lock_wait: args.lock.into(),
        }
    }
}

/// `prune`.
#[derive(Debug)]
pub struct PruneSettings {
    pub env: String,
    pub keep: usize,
    pub flags: Flags,
}

impl PruneSettings {
    pub fn resolve(args: cli::PruneArgs, global: &GlobalSettings) -> PruneSettings {
        PruneSettings {
            env: args.env,
            keep: args.keep,
            flags: global.flags(args.approve, false),
        }
    }
}

/// `bootstrap`.
#[derive(Debug)]
pub struct BootstrapSettings {
    /// Empty means all.
    pub names: Vec<String>,
    pub dry_run: bool,
    pub fix: bool,
    pub location: Option<String>,
    pub sku: Option<String>,
    pub flags: Flags,
    pub timeout: Duration,
}

impl BootstrapSettings {
    pub fn resolve(args: cli::BootstrapArgs, global: &GlobalSettings) -> BootstrapSettings {
        BootstrapSettings {
            names: args.target.names(),
            dry_run: args.dry_run,
            fix: args.fix,
            location: args.location,
            sku: args.sku,
            flags: global.flags(args.approve, false),
            timeout: args.timeout,
        }
    }
}

/// `lock`.
#[derive(Debug)]
pub struct LockSettings {
    /// Empty means all.
    pub names: Vec<String>,
    /// `--all`: the JSON document is the list even for one environment.
    pub all: bool,
    pub timeout: Duration,
}

impl LockSettings {
    pub fn resolve(args: cli::LockArgs) -> LockSettings {
        LockSettings {
            names: args.target.names(),
            all: args.target.all,
            timeout: args.deadline.timeout,
        }
    }
}

/// `unlock`.
#[derive(Debug)]
pub struct UnlockSettings {
    pub env: String,
    pub lock_id: String,
    pub flags: Flags,
    pub lock_wait: LockWait,
}

impl UnlockSettings {
    pub fn resolve(args: cli::UnlockArgs, global: &GlobalSettings) -> UnlockSettings {
        UnlockSettings {
            env: args.env,
            lock_id: args.lock_id,
            flags: global.flags(args.approve, false),
            lock_wait: args.lock.into(),
        }
    }
}

/// `exec`.
#[derive(Debug)]
pub struct ExecSettings {
    pub env: String,
    /// terraform's command line as given, before tfenv adds the var files.
    pub args: Vec<std::ffi::OsString>,
    pub flags: Flags,
    pub lock_wait: LockWait,
}

impl ExecSettings {
    /// `--output json` is refused: what exec prints is terraform's own output, and a
    /// JSON document of tfenv's beside it would make stdout two things at once.
    pub fn resolve(args: cli::ExecArgs, global: &GlobalSettings) -> anyhow::Result<ExecSettings> {
        if global.output.format == Format::Json {
            return Err(TfenvError::usage(
                "`tfenv exec` passes terraform's own output through; it has no JSON document of its own",
                Some("drop --output json, and give terraform its own flag where it has one: `tfenv exec dev -- output -json`".to_string()),
            )
            .into());
        }
        Ok(ExecSettings {
            env: args.env,
            args: args.args,
            flags: global.flags(args.approve, args.allow_destroy),
            lock_wait: args.lock.into(),
        })
    }
}

/// Which syntax `tfenv env` writes its lines in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellSyntax {
    /// bash and zsh.
    Posix,
    Fish,
    Pwsh,
}

/// `env`.
#[derive(Debug)]
pub struct EnvSettings {
    /// `None` with `--unset`.
    pub env: Option<String>,
    pub shell: ShellSyntax,
}

impl EnvSettings {
    pub fn resolve(args: cli::EnvArgs) -> EnvSettings {
        EnvSettings {
            env: if args.unset { None } else { args.env },
            shell: match args.shell {
                cli::EnvShell::Bash | cli::EnvShell::Zsh => ShellSyntax::Posix,
                cli::EnvShell::Fish => ShellSyntax::Fish,
                cli::EnvShell::Pwsh => ShellSyntax::Pwsh,
            },
        }
    }
}

/// `doctor`.
#[derive(Debug)]
pub struct DoctorSettings {
    pub fix: bool,
    /// `--yes`: fix without asking.
    pub yes: bool,
    /// Whether a question can be asked (see `GlobalSettings::interactive`).
    pub interactive: bool,
    pub timeout: Duration,
}

impl DoctorSettings {
    pub fn resolve(args: cli::DoctorArgs, global: &GlobalSettings) -> DoctorSettings {
        DoctorSettings {
            fix: args.fix,
            yes: args.yes,
            interactive: global.interactive,
            timeout: args.timeout,
        }
    }
}

/// `completions`. What it prints is generated from the whole clap tree, handed over as
/// data so the command need not know where it comes from.
pub struct CompletionsSettings {
    pub shell: clap_complete::Shell,
}

impl CompletionsSettings {
    pub fn resolve(shell: clap_complete::Shell) -> CompletionsSettings {
        CompletionsSettings { shell }
    }
}

/// `man`, from the same tree.
pub struct ManSettings {
    pub tree: clap::Command,
    /// One command's page; `None`: tfenv(1).
    pub command: Option<String>,
    /// Write every page into this folder instead.
    pub dir: Option<PathBuf>,
}

impl ManSettings {
    pub fn resolve(command: Option<String>, dir: Option<PathBuf>) -> ManSettings {
        use clap::CommandFactory;
        ManSettings {
            tree: cli::Cli::command(),
            command,
            dir,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundle_keys_never_show_their_secrets_in_debug_output() {
        let keys = super::BundleKeys {
            identity: Some(super::Secret("AGE-SECRET-KEY-1QQQ".to_string())),
            passphrase: Some(super::Secret("hunter2".to_string())),
        };
        let shown = format!(
            "{keys:?} {:?}",
            super::Sealing::Passphrase(super::Secret("hunter2".to_string()))
        );
        assert!(
            !shown.contains("AGE-SECRET-KEY") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    use super::*;

    fn global(cwd: &Path, flag: Option<&str>) -> GlobalSettings {
        GlobalSettings {
            cwd: cwd.to_path_buf(),
            started_in: cwd.to_path_buf(),
            config: None,
            output: OutputSettings {
                format: Format::Human,
                verbosity: 0,
                quiet: false,
                colors: Colors {
                    stdout: false,
                    stderr: false,
                },
            },
            interactive: false,
            terraform_flag: flag.map(PathBuf::from),
            step_summary: None,
        }
    }

    /// A project at `root` whose tfenv.toml names `terraform` (or not).
    fn project(root: &Path, terraform: Option<&str>) -> Project {
        std::fs::create_dir_all(root).unwrap();
        let line = terraform.map_or(String::new(), |t| format!("terraform = \"{t}\"\n"));
        std::fs::write(
            root.join("tfenv.toml"),
            format!("[project]\n{line}[environments.dev]\n"),
        )
        .unwrap();
        std::fs::write(root.join("main.tf"), "").unwrap();
        Project::load(root, None).unwrap()
    }

    fn executable(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
    }

    #[test]
    fn terraform_flag_wins_over_tfenv_toml_and_is_relative_to_where_tfenv_acts() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, root) = (dir.path().join("sub"), dir.path().join("root"));
        executable(&cwd.join("bin/tf"));
        executable(&root.join("tools/tofu"));
        let bin = global(&cwd, Some("bin/tf"))
            .terraform_binary(&project(&root, Some("tools/tofu")))
            .unwrap();
        assert_eq!(bin, cwd.join("bin/tf"));
    }

    #[test]
    fn tfenv_toml_terraform_is_relative_to_the_project_root() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, root) = (dir.path().join("sub"), dir.path().join("root"));
        executable(&root.join("tools/tofu"));
        let bin = global(&cwd, None)
            .terraform_binary(&project(&root, Some("tools/tofu")))
            .unwrap();
        assert_eq!(bin, root.join("tools/tofu"));
    }

    #[test]
    fn a_missing_terraform_binary_says_where_it_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let err = global(dir.path(), Some("nope/terraform"))
            .terraform_binary(&project(dir.path(), None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "terraform binary `{}` does not exist",
                dir.path().join("nope/terraform").display()
            )
        );
        let err = global(dir.path(), Some("no-such-terraform-anywhere"))
            .terraform_binary(&project(dir.path(), None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`no-such-terraform-anywhere` was not found on PATH"
        );
    }

    #[test]
    fn a_summary_goes_to_the_flags_file_and_github_step_summary_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut global = global(dir.path(), None);
        assert!(global.summary_files(None).is_empty());
        assert_eq!(
            global.summary_files(Some(Path::new("out.md"))),
            vec![dir.path().join("out.md")]
        );
        global.step_summary = Some(dir.path().join("step.md"));
        assert_eq!(
            global.summary_files(Some(Path::new("out.md"))),
            vec![dir.path().join("out.md"), dir.path().join("step.md")]
        );
        assert_eq!(
            global.summary_files(Some(Path::new("step.md"))),
            vec![dir.path().join("step.md")]
        );
    }

    #[test]
    fn status_jobs_default_to_twice_the_cpus_and_zero_is_a_usage_error() {
        use clap::Parser;
        let status = |extra: &[&str]| {
            let mut argv = vec!["tfenv", "status"];
            argv.extend_from_slice(extra);
            match cli::Cli::try_parse_from(argv).unwrap().command {
                cli::Command::Status(args) => StatusSettings::resolve(args),
                _ => unreachable!(),
            }
        };
        assert!(status(&[]).unwrap().jobs >= 2);
        assert_eq!(status(&["-j", "3"]).unwrap().jobs, 3);
        let err = status(&["--jobs", "0"]).unwrap_err();
        assert_eq!(err.to_string(), "--jobs must be at least 1");
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
    }

    #[test]
    fn drift_checks_default_to_twice_the_cpus_as_they_mostly_wait() {
        use clap::Parser;
        let drift = |extra: &[&str]| {
            let mut argv = vec!["tfenv", "drift", "--all"];
            argv.extend_from_slice(extra);
            match cli::Cli::try_parse_from(argv).unwrap().command {
                cli::Command::Drift(args) => DriftSettings::resolve(args).unwrap(),
                _ => unreachable!(),
            }
        };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(drift(&[]).jobs, 2 * cpus);
        assert_eq!(drift(&["-j", "1"]).jobs, 1);
    }

    #[test]
    fn validate_checks_cpu_count_roots_at_once_and_needs_envs_or_all() {
        use clap::Parser;
        let validate = |extra: &[&str]| {
            let mut argv = vec!["tfenv", "validate"];
            argv.extend_from_slice(extra);
            match cli::Cli::try_parse_from(argv).unwrap().command {
                cli::Command::Validate(args) => ValidateSettings::resolve(args),
                _ => unreachable!(),
            }
        };
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(validate(&["--all"]).unwrap().jobs, cpus);
        assert!(validate(&["--all"]).unwrap().envs.is_empty());
        assert_eq!(validate(&["dev", "-j", "3"]).unwrap().jobs, 3);
        let err = validate(&["--all", "-j", "0"]).unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
        assert!(cli::Cli::try_parse_from(["tfenv", "validate"]).is_err());
        assert!(cli::Cli::try_parse_from(["tfenv", "validate", "dev", "--all"]).is_err());
    }

    #[test]
    fn plan_of_one_environment_streams_and_several_or_all_run_at_once_cpu_count_jobs() {
        use clap::Parser;
        let plan = |extra: &[&str]| {
            let mut argv = vec!["tfenv", "plan"];
            argv.extend_from_slice(extra);
            let cli = cli::Cli::try_parse_from(argv).unwrap();
            let global =
                GlobalSettings::resolve(&cli.global, OutputSettings::resolve(&cli.global)).unwrap();
            match cli.command {
                cli::Command::Plan(args) => PlanSettings::resolve(args, &global),
                _ => unreachable!(),
            }
        };
        assert_eq!(plan(&["dev"]).unwrap().single(), Some("dev"));
        assert_eq!(plan(&["dev", "staging"]).unwrap().single(), None);
        // `--all` is the list even when the project has one environment.
        assert_eq!(plan(&["--all"]).unwrap().single(), None);
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(plan(&["--all"]).unwrap().jobs, cpus);
        assert_eq!(plan(&["--all", "-j", "5"]).unwrap().jobs, 5);
        let err = plan(&["--all", "-j", "0"]).unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
        assert!(cli::Cli::try_parse_from(["tfenv", "plan"]).is_err());
        assert!(cli::Cli::try_parse_from(["tfenv", "plan", "dev", "--all"]).is_err());
        // A plan bundle is one environment's.
        assert!(plan(&["dev", "--out", "b"]).unwrap().out.is_some());
        let err = plan(&["dev", "staging", "--out", "b"]).unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
        assert!(cli::Cli::try_parse_from(["tfenv", "plan", "--all", "--out", "b"]).is_err());
        // A published plan too; --encrypt takes --out or --publish.
        assert!(plan(&["dev", "--publish"]).unwrap().publish);
        let err = plan(&["dev", "staging", "--publish"]).unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
        assert!(cli::Cli::try_parse_from(["tfenv", "plan", "--all", "--publish"]).is_err());
    }

    #[test]
    fn deploy_plan_takes_a_folder_or_a_published_plans_id() {
        let deploy = |plan: &str| {
            use clap::Parser;
            let cli = cli::Cli::try_parse_from(["tfenv", "deploy", "dev", "--plan", plan]).unwrap();
            let global =
                GlobalSettings::resolve(&cli.global, OutputSettings::resolve(&cli.global)).unwrap();
            match cli.command {
                cli::Command::Deploy(args) => DeploySettings::resolve(args, &global),
                _ => unreachable!(),
            }
        };
        let id = "20261130T120000Z-4f2c9e1-a1b2c3";
        assert_eq!(
            deploy(&format!("ledger:{id}")).unwrap().bundle,
            Some(PlanSource::Ledger(id.to_string()))
        );
        assert!(matches!(
            deploy("../plans/dev").unwrap().bundle,
            Some(PlanSource::Dir(dir)) if dir.ends_with("plans/dev")
        ));
        for bad in [
            "ledger:",
            "ledger:../x",
            "ledger:a/b",
            "ledger:.hidden",
            "ledger:a b",
        ] {
            let err = deploy(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_for(&err),
                crate::exit::Exit::Usage,
                "{bad}"
            );
            assert!(
                format!("{err:#}").contains("is not the ID of a published plan"),
                "{bad}: {err:#}"
            );
        }
    }
}

//! Typed terraform calls: finding the binary and its version, the per-environment
//! process environment (data dir, plugin cache, workspace), init with a fingerprint,
//! and reading the state header from `state pull`. Every call passes `-no-color`:
//! tfenv keeps terraform's text (errors, history, logs), and ANSI codes do not belong there.
//! May use: backend, project, process, files, error, lock_info.

pub mod lock_error;
pub mod moved;
pub mod plan;
pub mod state;
pub mod validate;
pub mod version;
mod version_cache;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::error::TfenvError;
use crate::files;
use crate::process::{Finished, Invocation, RunOptions, Runner};
use crate::project::{Environment, Project};
pub use state::StateHeader;

/// A terraform (or tofu) binary of a known version, ready to run for environments.
pub struct Terraform {
    pub bin: PathBuf,
    pub version: semver::Version,
    runner: Arc<dyn Runner>,
    plugin_cache: Option<PathBuf>,
    /// Stream init and state output to stderr (with `-v`).
    pub echo: bool,
    /// Stream plan and apply output to stderr (unless `-q`).
    pub stream: bool,
    /// Show terraform's whole error output (`-vv`), not only its first lines.
    pub full_errors: bool,
    /// Where streamed output goes instead of stderr (one environment of several planned
    /// at once: printed as one block when it ends).
    pub block: Option<crate::output::Block>,
    /// How long a call that takes the state lock waits for it (`-lock-timeout`); zero:
    /// terraform's default, a held lock fails the call at once.
    pub lock_timeout: std::time::Duration,
}

/// The terraform subcommands that take `-var-file` (and so get the environment's var
/// files from `tfenv exec`, and in `TF_CLI_ARGS_<command>` from `tfenv env`).
pub const VAR_FILE_COMMANDS: [&str; 6] =
    ["plan", "apply", "destroy", "refresh", "import", "console"];

/// Set by the lines `tfenv env` prints (to the environment's name): this shell acts as
/// that environment.
pub const SHELL_MARKER: &str = "TFENV_ENV";

/// Variables to set and to remove for a terraform process (see [`Terraform::environment`]).
#[derive(Clone, Debug, Default)]
pub struct EnvironmentVariables {
    pub set: Vec<(String, OsString)>,
    pub remove: Vec<String>,
}

/// A run's log file (`state/<env>/logs/<command>-….log`): terraform's full output.
pub struct RunLog {
    file: std::fs::File,
    /// Relative to `state/<env>/`, as history records it.
    pub name: String,
    /// As the user would open it, for messages.
    pub shown: String,
}

impl RunLog {
    pub fn open(project: &Project, env: &Environment, command: &str) -> anyhow::Result<RunLog> {
        let (file, name) = open_log(&env.artifacts_dir, command)?;
        let shown = project.show(&env.artifacts_dir.join(&name));
        Ok(RunLog { file, name, shown })
    }

    /// A handle that appends to the log: terraform's output, and the policy's.
    pub fn writer(&self) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
        Ok(Box::new(
            self.file.try_clone().context("opening the run's log")?,
        ))
    }
}

/// Opens `state/<env>/logs/<command>-YYYYMMDD-HHMMSS.log` (0600) for a run's full output.
fn open_log(artifacts_dir: &Path, command: &str) -> anyhow::Result<(std::fs::File, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = artifacts_dir.join("logs");
    files::ensure_private_dir(&dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let mut n = 0;
    loop {
        let name = if n == 0 {
            format!("{command}-{stamp}.log")
        } else {
            format!("{command}-{stamp}-{n}.log")
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(files::PRIVATE_FILE)
            .open(dir.join(&name))
        {
            Ok(file) => return Ok((file, format!("logs/{name}"))),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(err) => {
                return Err(err).with_context(|| format!("creating a log in `{}`", dir.display()));
            }
        }
    }
}

/// Whether an environment's data dir is ready for its current configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitState {
    /// `init` never ran for this environment.
    Never,
    /// Initialized with the backend config and var files as they are now.
    Current,
    /// Initialized, but the backend config or var files changed since.
    Changed,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct InitOptions {
    pub reconfigure: bool,
    pub upgrade: bool,
    /// `-migrate-state -force-copy`: move the state from the backend the data dir was
    /// initialized with to the one configured now (`tfenv migrate`).
    pub migrate: bool,
}

/// What `init` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitOutcome {
    /// Nothing changed since the last init; no process ran.
    Skipped,
    Ran,
}

impl Terraform {
    /// Reads the version of `bin` (chosen by the settings: `--terraform`, tfenv.toml,
    /// PATH) and checks it against `required_version` before anything else runs.
    pub async fn locate(
        bin: PathBuf,
        project: &Project,
        runner: Arc<dyn Runner>,
    ) -> anyhow::Result<Terraform> {
        let version = read_version(&bin, project, runner.as_ref()).await?;
        if let Some(required) = &project.required_version {
            let ok = version::satisfies(&version, required).map_err(|why| {
                TfenvError::config(
                    format!("required_version `{required}` in tfenv.toml: {why}"),
                    Some("write constraints like `>= 1.5, < 2.0` or `~> 1.6`".to_string()),
                )
            })?;
            if !ok {
                return Err(TfenvError::config(
                    format!(
                        "terraform {version} (`{}`) does not satisfy required_version `{required}` from tfenv.toml",
                        bin.display()
                    ),
                    Some("install a matching version, or point --terraform at one".to_string()),
                )
                .into());
            }
        }
        let plugin_cache = match std::env::var_os("TF_PLUGIN_CACHE_DIR") {
            Some(_) => None,
            None => Some(
                project
                    .root
                    .join(".terraform")
                    .join("tfenv")
                    .join("plugin-cache"),
            ),
        };
        tracing::debug!("using terraform {version} at {}", bin.display());
        Ok(Terraform {
            bin,
            version,
            runner,
            plugin_cache,
            echo: false,
            stream: true,
            full_errors: false,
            block: None,
            lock_timeout: std::time::Duration::ZERO,
        })
    }

    /// A terraform call for `env`: run in its root, with the variables that make terraform
    /// act as it ([`Terraform::environment`]), and never an interactive prompt.
    /// Paths go to terraform as OS strings, never lossily converted.
    pub fn invocation<S: AsRef<OsStr>>(&self, env: &Environment, args: &[S]) -> Invocation {
        let mut inv = Invocation::new(&self.bin, args);
        inv.cwd = env.root.clone();
        let vars = self.environment(env);
        inv.env = vars.set;
        inv.env_remove = vars.remove;
        inv.env.push(("TF_IN_AUTOMATION".into(), "1".into()));
        inv.env.push(("TF_INPUT".into(), "0".into()));
        inv
    }

    /// terraform as the user would run it by hand, acting as `env` (`tfenv exec`): in its
    /// root with its variables, the terminal passed through, and none of the settings
    /// for unattended runs (TF_IN_AUTOMATION, TF_INPUT): terraform may ask its questions.
    pub fn terminal_invocation(&self, env: &Environment, args: &[OsString]) -> Invocation {
        let mut inv = Invocation::new(&self.bin, args);
        inv.cwd = env.root.clone();
        let vars = self.environment(env);
        inv.env = vars.set;
        inv.env_remove = vars.remove;
        inv.terminal = true;
        inv
    }

    /// Runs an invocation made by [`Terraform::terminal_invocation`] to its end.
    pub async fn run_in_terminal(&self, inv: &Invocation) -> anyhow::Result<Finished> {
        self.runner.run(inv, RunOptions::default()).await
    }

    /// The variables that make a terraform started in `env`'s root act as that
    /// environment: its own data dir, the shared plugin cache, its workspace (and no one
    /// else's). The one list of them: tfenv's own runs, `tfenv exec` and the lines
    /// `tfenv env` prints all take it from here.
    pub fn environment(&self, env: &Environment) -> EnvironmentVariables {
        let mut vars = EnvironmentVariables::default();
        vars.set
            .push(("TF_DATA_DIR".into(), env.data_dir().into_os_string()));
        if let Some(cache) = &self.plugin_cache {
            vars.set
                .push(("TF_PLUGIN_CACHE_DIR".into(), cache.clone().into_os_string()));
        }
        match &env.workspace {
            Some(ws) => vars.set.push(("TF_WORKSPACE".into(), ws.into())),
            // A TF_WORKSPACE left in the user's shell must not redirect another environment.
            None => vars.remove.push("TF_WORKSPACE".into()),
        }
        // A shell set up by `tfenv env` carries one environment's var files in
        // TF_CLI_ARGS_<command>: they must not reach a run of this one (or of another).
        if std::env::var_os(SHELL_MARKER).is_some() {
            vars.remove.extend(
                VAR_FILE_COMMANDS
                    .iter()
                    .map(|command| format!("TF_CLI_ARGS_{command}")),
            );
        }
        vars
    }

    /// Where terraform keeps downloaded providers for every environment of the project
    /// (`TF_PLUGIN_CACHE_DIR`); `None` when the user's own TF_PLUGIN_CACHE_DIR is used.
    pub fn plugin_cache(&self) -> Option<&Path> {
        self.plugin_cache.as_deref()
    }

    fn options(&self, env: &Environment) -> RunOptions {
        RunOptions {
            echo: self.echo.then(|| format!("[{}] ", env.name)),
            echo_into: self.block.clone(),
            ..RunOptions::default()
        }
    }

    /// Whether `env` needs `init`, from its fingerprint. Reads two small files; a
    /// fingerprint that is not a regular file (a FIFO) is an error naming it, never a hang.
    pub fn init_state(env: &Environment, backend: &Backend) -> anyhow::Result<InitState> {
        let Some(recorded) = files::read_regular(&env.fingerprint_file())? else {
            return Ok(InitState::Never);
        };
        if !env.data_dir().is_dir() {
            return Ok(InitState::Never);
        }
        Ok(match fingerprint(env, backend) {
            Ok(current) if current.as_bytes() == recorded.trim_ascii() => InitState::Current,
            _ => InitState::Changed,
        })
    }

    /// Whether `init` would run: never initialized, its configuration changed, or a flag
    /// asks for a real run.
    pub fn needs_init(
        env: &Environment,
        backend: &Backend,
        options: InitOptions,
    ) -> anyhow::Result<bool> {
        Ok(options.reconfigure
            || options.upgrade
            || options.migrate
            || Terraform::init_state(env, backend)? != InitState::Current)
    }

    /// `terraform init` for `env`, skipped when its fingerprint is unchanged (unless a
    /// flag asks for a real run). Creates the environment's workspace when missing.
    /// Commands init through `Context::ensure_init`, which makes the .gitignore offer first.
    pub async fn init(
        &self,
        env: &Environment,
        backend: &Backend,
        options: InitOptions,
        log: Option<&RunLog>,
    ) -> anyhow::Result<InitOutcome> {
        if !Terraform::needs_init(env, backend, options)? {
            return Ok(InitOutcome::Skipped);
        }
        remove_empty_backend_file(env)?;
        if let Some(cache) = &self.plugin_cache {
            std::fs::create_dir_all(cache)
                .with_context(|| format!("creating the plugin cache `{}`", cache.display()))?;
        }
        if let Some(state_file) = backend.local_state_file(env) {
            // The local state holds secrets: its folder is private before terraform writes it.
            if let Some(dir) = state_file
                .parent()
                .filter(|d| d.starts_with(crate::project::physical(&env.artifacts_dir)))
            {
                files::ensure_private_dir(dir)?;
            }
        }
        let mut args: Vec<OsString> =
            vec!["init".into(), "-input=false".into(), "-no-color".into()];
        if let Some(path) = &env.backend_config {
            args.push(flag_path("-backend-config=", path));
        }
        if options.reconfigure {
            args.push("-reconfigure".into());
        }
        if options.migrate {
            args.push("-migrate-state".into());
            args.push("-force-copy".into());
        }
        if options.upgrade {
            args.push("-upgrade".into());
        }
        let mut inv = self.invocation(env, &args);
        // The workspace may not exist yet: init in `default`, then select or create it.
        inv.env.retain(|(k, _)| k != "TF_WORKSPACE");
        inv.env_remove.push("TF_WORKSPACE".into());
        let mut run_options = self.options(env);
        if let Some(log) = log {
            run_options.log = Some(log.writer()?);
        }
        let done = self.runner.run(&inv, run_options).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("init", env, &done, log));
        }
        // terraform makes the data dir 0755; its terraform.tfstate holds the backend
        // config, credentials included.
        files::ensure_private_dir(&env.data_dir())?;
        if let Some(workspace) = &env.workspace {
            self.ensure_workspace(env, workspace).await?;
        }
        let fingerprint = fingerprint(env, backend)?;
        files::write_atomic(
            &env.fingerprint_file(),
            fingerprint.as_bytes(),
            files::PRIVATE_FILE,
        )?;
        Ok(InitOutcome::Ran)
    }

    async fn ensure_workspace(&self, env: &Environment, workspace: &str) -> anyhow::Result<()> {
        let mut list = self.invocation(env, &["workspace", "list", "-no-color"]);
        list.env.retain(|(k, _)| k != "TF_WORKSPACE");
        list.env_remove.push("TF_WORKSPACE".into());
        let done = self.runner.run(&list, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("workspace list", env, &done, None));
        }
        let exists = done
            .stdout_text()
            .lines()
            .any(|line| line.trim_start_matches(['*', ' ']).trim() == workspace);
        if exists {
            return Ok(());
        }
        let mut new = self.invocation(env, &["workspace", "new", "-no-color", workspace]);
        new.env.retain(|(k, _)| k != "TF_WORKSPACE");
        new.env_remove.push("TF_WORKSPACE".into());
        let done = self.runner.run(&new, self.options(env)).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("workspace new", env, &done, None));
        }
        Ok(())
    }

    /// `terraform state pull`, streamed through the header reader: constant memory
    /// whatever the state's size. `Ok(None)` when the environment has no state yet.
    pub async fn state_header(&self, env: &Environment) -> anyhow::Result<Option<StateHeader>> {
        self.state_pull_into(env, Box::new(std::io::sink())).await
    }
}

impl Terraform {
    /// `plan -out <plan_file>` with the environment's var files; output streamed live.
    /// With `detailed_exitcode`, terraform says whether the plan has changes (exit 2) or
    /// none (exit 0); returns whether it may have changes (always true without it).
    pub async fn plan(
        &self,
        env: &Environment,
        plan_file: &Path,
        refresh_only: bool,
        detailed_exitcode: bool,
        log: Option<&RunLog>,
    ) -> anyhow::Result<bool> {
        let mut args: Vec<OsString> = vec![
            "plan".into(),
            "-no-color".into(),
            "-input=false".into(),
            flag_path("-out=", plan_file),
        ];
        if refresh_only {
            args.push("-refresh-only".into());
        }
        if detailed_exitcode {
            args.push("-detailed-exitcode".into());
        }
        args.extend(env.var_files.iter().map(|p| flag_path("-var-file=", p)));
        let changes_code = detailed_exitcode.then_some(2);
        let code = self
            .run_streamed(env, "plan", args, log, changes_code)
            .await?;
        Ok(!detailed_exitcode || code == changes_code)
    }

    /// `tfenv drift`'s plan: `plan -lock=false -detailed-exitcode -out=<plan_file>` with
    /// the environment's var files. It never takes the state lock (a deploy running at the
    /// same time is not disturbed) and never writes state (a plan does not persist its
    /// refresh). Returns whether terraform found changes (exit 2).
    pub async fn plan_unlocked(&self, env: &Environment, plan_file: &Path) -> anyhow::Result<bool> {
        let mut args: Vec<OsString> = vec![
            "plan".into(),
            "-no-color".into(),
            "-input=false".into(),
            "-lock=false".into(),
            "-detailed-exitcode".into(),
            flag_path("-out=", plan_file),
        ];
        args.extend(env.var_files.iter().map(|p| flag_path("-var-file=", p)));
        let inv = self.invocation(env, &args);
        let options = RunOptions {
            echo: self.stream.then(|| format!("[{}] ", env.name)),
            echo_into: self.block.clone(),
            ..RunOptions::default()
        };
        let done = self.runner.run(&inv, options).await?;
        check_interrupted(&done)?;
        match done.code {
            Some(0) => Ok(false),
            Some(2) => Ok(true),
            _ => Err(self.failed("plan", env, &done, None)),
        }
    }

    /// `apply <plan_file>`: exactly what was planned and confirmed, nothing re-planned.
    pub async fn apply(
        &self,
        env: &Environment,
        plan_file: &Path,
        log: Option<&RunLog>,
    ) -> anyhow::Result<()> {
        let args = vec![
            "apply".into(),
            "-no-color".into(),
            "-input=false".into(),
            plan_file.as_os_str().to_os_string(),
        ];
        self.run_streamed(env, "apply", args, log, None).await?;
        Ok(())
    }

    /// Runs a call that may hold the state lock, its output streamed. Exit 0 — and
    /// `also_ok` (`plan -detailed-exitcode`'s 2) — is success; returns the exit code.
    async fn run_streamed(
        &self,
        env: &Environment,
        what: &str,
        args: Vec<OsString>,
        log: Option<&RunLog>,
        also_ok: Option<i32>,
    ) -> anyhow::Result<Option<i32>> {
        let mut args = args;
        // Flags go before the plan file, which `apply` takes last.
        if let Some(flag) = self.lock_timeout_flag() {
            args.insert(1, flag);
        }
        let mut inv = self.invocation(env, &args);
        inv.holds_state_lock = true;
        let options = RunOptions {
            echo: self.stream.then(|| format!("[{}] ", env.name)),
            echo_into: self.block.clone(),
            log: match log {
                Some(log) => Some(log.writer()?),
                None => None,
            },
            stdout_sink: None,
        };
        let done = self.runner.run(&inv, options).await?;
        check_interrupted(&done)?;
        if done.success() || (also_ok.is_some() && done.code == also_ok) {
            return Ok(done.code);
        }
        let text = format!("{}\n{}", done.stderr_text(), done.stdout_text());
        if let Some(info) = lock_error::parse(&text) {
            return Err(self.lock_held(env, info));
        }
        if lock_error::held_by_unknown(&text) {
            return Err(self.lock_held_by_unknown(env));
        }
        Err(self.failed(what, env, &done, log))
    }

    /// `state push [-force] <file>`. Terraform itself refuses an older serial or another
    /// lineage unless forced.
    pub async fn state_push(
        &self,
        env: &Environment,
        file: &Path,
        force: bool,
    ) -> anyhow::Result<()> {
        let mut args: Vec<&OsStr> = vec!["state".as_ref(), "push".as_ref(), "-no-color".as_ref()];
        if force {
            args.push("-force".as_ref());
        }
        let lock_timeout = self.lock_timeout_flag();
        args.extend(lock_timeout.iter().map(OsString::as_os_str));
        args.push(file.as_os_str());
        let mut inv = self.invocation(env, &args);
        inv.holds_state_lock = true;
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if done.success() {
            return Ok(());
        }
        let text = format!("{}\n{}", done.stderr_text(), done.stdout_text());
        if let Some(info) = lock_error::parse(&text) {
            return Err(self.lock_held(env, info));
        }
        if lock_error::held_by_unknown(&text) {
            return Err(self.lock_held_by_unknown(env));
        }
        Err(self.failed("state push", env, &done, None))
    }

    /// `-lock-timeout=<ms>ms` for a call that takes the state lock, when tfenv waits for
    /// locks (in milliseconds: terraform reads Go durations).
    fn lock_timeout_flag(&self) -> Option<OsString> {
        (!self.lock_timeout.is_zero())
            .then(|| format!("-lock-timeout={}ms", self.lock_timeout.as_millis()).into())
    }

    /// The state lock terraform could not take because another process holds the local
    /// state file's lock without lock info: exit 4 all the same (DESIGN §6).
    fn lock_held_by_unknown(&self, env: &Environment) -> anyhow::Error {
        let waited = match self.lock_timeout.is_zero() {
            true => String::new(),
            false => format!(
                " after terraform waited {} (--lock-timeout)",
                humantime::format_duration(self.lock_timeout)
            ),
        };
        let hint = match self.lock_timeout.is_zero() {
            true => format!(
                "another process holds the state lock: wait for it to finish and try again, or let tfenv wait for it (--lock-timeout 5m); `tfenv lock {}` names the process",
                env.name
            ),
            false => format!(
                "that process still holds it: wait longer (a larger --lock-timeout), or see which process it is with `tfenv lock {}`",
                env.name
            ),
        };
        TfenvError::Locked {
            message: format!(
                "the state of `{}` is locked{waited} by another process, which wrote no lock info",
                env.name
            ),
            hint: Some(hint),
        }
        .into()
    }

    /// The state lock terraform could not take: exit 4, naming its holder — and, when
    /// terraform waited for it, for how long.
    fn lock_held(&self, env: &Environment, info: crate::lock_info::LockInfo) -> anyhow::Error {
        let err = anyhow::Error::from(TfenvError::lock_held(
            &env.name,
            info,
            !self.lock_timeout.is_zero(),
        ));
        match self.lock_timeout.is_zero() {
            true => err,
            false => err.context(format!(
                "terraform waited {} (--lock-timeout) for the state lock of `{}`",
                humantime::format_duration(self.lock_timeout),
                env.name
            )),
        }
    }

    /// `force-unlock -force <id>`: releases a lock whose holder is gone.
    pub async fn force_unlock(&self, env: &Environment, id: &str) -> anyhow::Result<()> {
        let mut inv = self.invocation(env, &["force-unlock", "-no-color", "-force", id]);
        inv.holds_state_lock = true;
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("force-unlock", env, &done, None));
        }
        Ok(())
    }

    /// `show -json <plan_file>`: its summary and the JSON itself (a policy reads it; a
    /// bundle keeps it). Captured, never echoed: it holds values.
    pub async fn show_plan(
        &self,
        env: &Environment,
        plan_file: &Path,
    ) -> anyhow::Result<plan::ShownPlan> {
        let json = self.show_json(env, plan_file).await?;
        let summary = plan::summarize(&json)
            .map_err(|why| anyhow::anyhow!("reading the plan of `{}`: {why}", env.name))?;
        Ok(plan::ShownPlan { summary, json })
    }

    /// `show -json <plan_file>`'s document as terraform printed it, unread. Captured,
    /// never echoed: it holds the plan's values.
    pub async fn show_json(&self, env: &Environment, plan_file: &Path) -> anyhow::Result<Vec<u8>> {
        let args: [&OsStr; 4] = [
            "show".as_ref(),
            "-json".as_ref(),
            "-no-color".as_ref(),
            plan_file.as_os_str(),
        ];
        let inv = self.invocation(env, &args);
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("show -json", env, &done, None));
        }
        Ok(done.stdout)
    }

    /// `output -json`: every output with its `sensitive` flag. Captured, never echoed.
    pub async fn outputs(
        &self,
        env: &Environment,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut inv = self.invocation(env, &["output", "-json", "-no-color"]);
        // Read-only and short: an apply that completed despite a late Ctrl-C still gets
        // its outputs recorded.
        inv.after_interrupt = true;
        let done = self.runner.run(&inv, RunOptions::default()).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("output -json", env, &done, None));
        }
        serde_json::from_slice(&done.stdout).map_err(|e| {
            anyhow::anyhow!(
                "`terraform output -json` for `{}` did not print outputs ({e})",
                env.name
            )
        })
    }

    /// `state pull` streamed into `sink` while the header is read on the side.
    /// `Ok(None)` when there is no state.
    pub async fn state_pull_into(
        &self,
        env: &Environment,
        sink: Box<dyn std::io::Write + Send>,
    ) -> anyhow::Result<Option<StateHeader>> {
        let (reader, writer) = std::io::pipe().context("creating a pipe")?;
        let parser = std::thread::spawn(move || state::read_header(reader));
        let tee = Tee {
            sink,
            pipe: Some(writer),
        };
        let inv = self.invocation(env, &["state", "pull", "-no-color"]);
        let options = RunOptions {
            stdout_sink: Some(Box::new(tee)),
            ..RunOptions::default()
        };
        let done = self.runner.run(&inv, options).await;
        let parsed = parser
            .join()
            .map_err(|_| anyhow::anyhow!("the state reader thread panicked"))?;
        let done = done?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("state pull", env, &done, None));
        }
        if let Some(err) = done.sink_error {
            return Err(anyhow::Error::new(err).context("writing the pulled state"));
        }
        parsed.map_err(|err| {
            anyhow::anyhow!(
                "`terraform state pull` for `{}` printed something that is not a state ({err})",
                env.name
            )
        })
    }
}

/// Writes to the sink and, while the header reader still listens, to its pipe.
struct Tee {
    sink: Box<dyn std::io::Write + Send>,
    pipe: Option<std::io::PipeWriter>,
}

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sink.write_all(buf)?;
        if let Some(pipe) = &mut self.pipe
            && pipe.write_all(buf).is_err()
        {
            // The reader stopped (not a state); it reports why. Keep the copy going.
            self.pipe = None;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// Reads a state file straight from disk (local backend, no terraform needed).
pub fn read_state_file(path: &Path) -> anyhow::Result<Option<StateHeader>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("opening `{}`", path.display())),
    };
    state::read_header(file).with_context(|| format!("reading `{}`", path.display()))
}

/// An interrupted call that still exited 0 finished its work: that is a success (the
/// run stops at the next step, which the runner will not start).
fn check_interrupted(done: &Finished) -> anyhow::Result<()> {
    if done.interrupted && !done.success() {
        return Err(TfenvError::Interrupted.into());
    }
    Ok(())
}

impl Terraform {
    /// An error for a failed terraform call that shows terraform's own message: its
    /// first lines, and where the rest is when they were cut.
    fn failed(
        &self,
        what: &str,
        env: &Environment,
        done: &Finished,
        log: Option<&RunLog>,
    ) -> anyhow::Error {
        if done.stderr.trim_ascii().is_empty() && !stdout_is_only_messages(what) {
            // Its stdout may be the state itself: never shown, never in history. The
            // run's log (0600, under state/<env>/logs) keeps it when one is kept.
            return anyhow::anyhow!(
                "`terraform {what}` for `{}` {} and printed no error; {}",
                env.name,
                done.describe(),
                match log {
                    Some(log) => format!("its full output is in {}", log.shown),
                    None => "what it printed is not shown: it may hold state values".to_string(),
                }
            );
        }
        let limit = if self.full_errors {
            usize::MAX
        } else {
            ERROR_LINES
        };
        let more = match log {
            Some(log) => format!("full output: `tfenv -vv …` or {}", log.shown),
            None => "full output: rerun with `tfenv -vv …`".to_string(),
        };
        terraform_failed(what, env, done, limit, &more)
    }
}

/// An `init` killed while it wrote the backend's settings into the data dir (a drift
/// check's `--timeout`, `kill -9`) leaves `terraform.tfstate` there empty, and terraform
/// refuses every later init with "Failed to load state: … unexpected end of JSON input".
/// terraform never writes it empty: removed, the init about to run writes it again.
fn remove_empty_backend_file(env: &Environment) -> anyhow::Result<()> {
    let file = env.data_dir().join("terraform.tfstate");
    match std::fs::symlink_metadata(&file) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => {
            tracing::debug!("removing the empty `{}` a killed init left", file.display());
            std::fs::remove_file(&file)
                .with_context(|| format!("removing the empty `{}`", file.display()))
        }
        _ => Ok(()),
    }
}

/// How many lines of terraform's error output a message shows (all of them with -vv).
const ERROR_LINES: usize = 20;

/// An error for a failed terraform call that shows terraform's own message, at most
/// `limit` lines of it; `more` says where the full output is when lines were cut.
fn terraform_failed(
    what: &str,
    env: &Environment,
    done: &Finished,
    limit: usize,
    more: &str,
) -> anyhow::Error {
    let stderr = done.stderr_text();
    let stdout = done.stdout_text();
    let detail = terraform_error_text(
        if stderr.trim().is_empty() && stdout_is_only_messages(what) {
            &stdout
        } else {
            &stderr
        },
        limit,
        more,
    );
    let message = format!(
        "`terraform {what}` for `{}` {}{}",
        env.name,
        done.describe(),
        if detail.is_empty() {
            String::new()
        } else {
            format!(":\n{detail}")
        }
    );
    match digest_mismatch(&stderr, env).or_else(|| storage_missing(&stderr, env)) {
        Some(hint) => TfenvError::config(message, Some(hint)).into(),
        None => anyhow::anyhow!(message),
    }
}

/// terraform's words for a backend whose bucket, lock table or container does not exist
/// yet: `tfenv bootstrap` creates it.
fn storage_missing(text: &str, env: &Environment) -> Option<String> {
    const SAID: [&str; 6] = [
        "S3 bucket does not exist",
        "NoSuchBucket",
        "bucket doesn't exist",
        "ContainerNotFound",
        "The specified container does not exist",
        "Requested resource not found",
    ];
    SAID.iter().any(|said| text.contains(said)).then(|| {
        format!(
            "the backend's storage does not exist yet: `tfenv bootstrap {0} --dry-run` shows what is missing, and `tfenv bootstrap {0}` creates it",
            env.name
        )
    })
}

/// The s3 backend's "checksum … does not match the checksum stored in DynamoDB": the
/// lock table's `<bucket>/<key>-md5` item holds the digest of a state that is not in
/// the bucket (deleted, or replaced by copying an object). tfenv never touches that item
/// (terraform's own): the hint names it and the two ways out.
fn digest_mismatch(text: &str, env: &Environment) -> Option<String> {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !words.contains("does not match the checksum stored in DynamoDB") {
        return None;
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim_start_matches(['│', ' ']).strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let (bucket, key) = (field("Bucket:")?, field("Key:")?);
    let calculated = field("Calculated checksum:").unwrap_or_default();
    let table = env
        .backend_config
        .as_ref()
        .and_then(|path| crate::project::hcl::read_settings(path, &env.root).ok())
        .and_then(|settings| {
            settings
                .get("dynamodb_table")
                .and_then(|v| v.as_str().map(String::from))
        })
        .unwrap_or_else(|| "<dynamodb_table>".to_string());
    let item = format!("{bucket}/{key}-md5");
    let key_json = format!(r#"{{"LockID":{{"S":"{item}"}}}}"#);
    let delete = format!("aws dynamodb delete-item --table-name {table} --key '{key_json}'");
    Some(if calculated.is_empty() {
        format!(
            "there is no state object `s3://{bucket}/{key}`, but the lock table `{table}` still holds the digest of one (item `LockID` = `{item}`): if the state was deleted, restore one of its versions (`tfenv backups {env} --versions`) after deleting that item: {delete}",
            env = env.name
        )
    } else {
        format!(
            "the state object `s3://{bucket}/{key}` is not the one whose digest the lock table `{table}` holds (item `LockID` = `{item}`): if the object is the state you want, set the item's Digest to what terraform calculated: aws dynamodb put-item --table-name {table} --item '{{\"LockID\":{{\"S\":\"{item}\"}},\"Digest\":{{\"S\":\"{calculated}\"}}}}' (or delete the item: {delete})"
        )
    })
}

/// Whether the stdout of `terraform <what>` is only terraform's own messages, so it may
/// stand in for an empty stderr. Every other call can print the state or its values on
/// stdout — `apply` prints the whole state when it cannot save it; `output`, `show` and
/// `state pull` print values — and is never quoted.
fn stdout_is_only_messages(what: &str) -> bool {
    matches!(
        what.split(' ').next(),
        Some("init" | "workspace" | "plan" | "force-unlock")
    )
}

/// The useful part of terraform's error output: from the first `Error:` on, without
/// box-drawing decoration or colour codes, at most `limit` lines, then a marker that
/// says how many were left out and where `more` of them are.
fn terraform_error_text(text: &str, limit: usize, more: &str) -> String {
    // A shim or fork that ignores -no-color must not put escape codes into history.
    let text = console::strip_ansi_codes(text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start_matches(['│', '╷', ' ']).starts_with("Error"))
        .unwrap_or(0);
    // The source lines terraform quotes under "on <file> line N:" are left out: a var
    // file's line holds its value, a secret's too, and this text reaches the terminal,
    // history, drift.json and the shared ledger. terraform's own output (`-vv`, the
    // run's log) keeps them.
    let mut hid_source = false;
    let mut useful: Vec<&str> = Vec::new();
    for line in &lines[start..] {
        let line = line.trim_start_matches(['│', '╷', '╵']).trim_end();
        if line.trim().is_empty() {
            continue;
        }
        // One note for each quoted block of lines.
        if is_source_line(line) {
            if !hid_source {
                useful.push("(the source line is not shown: it may hold a value)");
            }
            hid_source = true;
            continue;
        }
        hid_source = false;
        useful.push(line);
    }
    let mut shown: Vec<String> = useful
        .iter()
        .take(limit)
        .map(|l| format!("  {}", l.trim_start()))
        .collect();
    if useful.len() > limit {
        shown.push(format!("  … ({} more lines; {more})", useful.len() - limit));
    }
    shown.join("\n")
}

/// A line of source code as terraform quotes it in a diagnostic: `  3: name = "value"`.
fn is_source_line(line: &str) -> bool {
    let line = line.trim_start();
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(':')
}

/// `-var-file=<path>` as an OS string: the path exactly as the OS has it.
pub fn flag_path(flag: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(path.as_os_str());
    arg
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// The binary's version: remembered from an earlier run (`version_cache.rs`), or from
/// `version -json`.
async fn read_version(
    bin: &Path,
    project: &Project,
    runner: &dyn Runner,
) -> anyhow::Result<semver::Version> {
    let cache = version_cache::VersionCache::new(&project.root);
    let key = version_cache::Key::of(bin, &project.root, &version_cache::ShimEnv::from_process());
    if let Some(version) = key.as_ref().and_then(|key| cache.get(key)) {
        tracing::debug!("terraform {version} at {} (remembered)", bin.display());
        return Ok(version);
    }
    let mut inv = Invocation::new(bin, &["version", "-json", "-no-color"]);
    inv.cwd = project.root.clone();
    inv.env.push(("CHECKPOINT_DISABLE".into(), "1".into()));
    let done = runner.run(&inv, RunOptions::default()).await?;
    let version = parse_version_output(&done).ok_or_else(|| {
        TfenvError::config(
            format!(
                "cannot tell the version of `{}`: `version -json` {} and printed {:?}",
                bin.display(),
                done.describe(),
                first_line(&done.stdout_text()).or(first_line(&done.stderr_text())).unwrap_or("nothing")
            ),
            Some("point --terraform (or [project] terraform in tfenv.toml) at a terraform or tofu binary".to_string()),
        )
    })?;
    if let Some(key) = key {
        cache.put(&key, &version);
    }
    Ok(version)
}

fn parse_version_output(done: &Finished) -> Option<semver::Version> {
    if !done.success() {
        return None;
    }
    let text = done.stdout_text();
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        return version::parse_version(json.get("terraform_version")?.as_str()?);
    }
    // Very old binaries print `Terraform v0.12.31`; OpenTofu prints `OpenTofu v1.6.0`.
    let word = text.lines().next()?.split_whitespace().nth(1)?;
    version::parse_version(word)
}

/// What `init` depends on: root, backend type and inline settings, backend config file
/// (path and content), var-file paths and workspace. Any change means init runs again.
fn fingerprint(env: &Environment, backend: &Backend) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hash.update(name.as_bytes());
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    };
    field("root", env.root.as_os_str().as_encoded_bytes());
    field("kind", backend.kind.as_str().as_bytes());
    field(
        "inline",
        serde_json::to_string(&backend.settings)?.as_bytes(),
    );
    if let Some(path) = &env.backend_config {
        field("backend_config", path.as_os_str().as_encoded_bytes());
        let content =
            std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
        field("backend_config_content", &content);
    }
    for path in &env.var_files {
        field("var_file", path.as_os_str().as_encoded_bytes());
    }
    field(
        "workspace",
        env.workspace.as_deref().unwrap_or("").as_bytes(),
    );
    Ok(hex::encode(hash.finalize()))
}

/// The backend an environment's state lives in, as a digest that does not depend on
/// where the checkout is (a plan bundle made in one clone is applied from another): the
/// backend type, its inline settings, the backend config's content and the workspace.
pub fn backend_fingerprint(env: &Environment, backend: &Backend) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hash.update(name.as_bytes());
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    };
    field("kind", backend.kind.as_str().as_bytes());
    field(
        "inline",
        serde_json::to_string(&backend.settings)?.as_bytes(),
    );
    if let Some(path) = &env.backend_config {
        let content =
            std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
        field("backend_config_content", &content);
    }
    field(
        "workspace",
        env.workspace.as_deref().unwrap_or("").as_bytes(),
    );
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests;

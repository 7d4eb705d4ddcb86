//! `cargo xtask bench`: builds tfenv in release mode, generates throw-away projects in a
//! temp folder, measures each section against what scripts do, and prints the figures as
//! Markdown (`--write-doc` also rewrites docs/performance.md).

pub mod backups;
pub mod deploy;
pub mod generate;
pub mod lock;
pub mod measure;
pub mod many;
pub mod report;
pub mod s3;
pub mod status;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};

use self::measure::{LoadMeter, Timer};
use self::report::Section as SectionOut;

/// Shown by `--help` after the options.
const AFTER_HELP: &str = "\
Sections (--only takes a comma-separated list of these):
  startup  `tfenv envs` on 50 environments (start-up cost): mean and min of --runs runs
  status   `tfenv status env01..envN` for N = 1, 10, 50 (median of --reps runs), next to
           the sequential `terraform state pull` of the same N
  backup   `tfenv backup` of a ~200 MB local state: wall time, tfenv's own peak RSS,
           MB/s, next to `terraform state pull > file` (median of min(--reps, 3) runs)
  verify   `tfenv verify` over 1,000 backups of ~1 MB: one cold run (page cache dropped
           for those files), then the median of min(--reps, 3) warm runs
  lock     s3 backend + DynamoDB lock table on a moto server, 50 environments each
           applied once: `tfenv lock env01` vs the aws CLI read it made before the
           SDK (`aws dynamodb get-item --consistent-read`) and vs `terraform plan
           -lock-timeout=0s`, and `tfenv lock --all` over the 50 vs one (median of
           --reps runs); moto from `scripts/test.sh --install-only`, the aws CLI from
           there too or, when it installs none, pip-installed into .cache/bench-tools/
  s3-status  on the same moto world: `tfenv status env01..envN` for N = 10, 50 vs the
           seed scripts' sequential `terraform state pull` loop, wall and CPU time
           (median of --reps runs)
  deploy   on a copy of the demo (tfenv.toml, environments/, examples/quickstart), one
           output change per run: `tfenv deploy dev --yes` vs the seed scripts' flow
           (init -reconfigure, plan -out, apply, output -json) vs terraform's floor
           (plan -out + apply); `tfenv deploy production` with its verified backup;
           `tfenv plan dev` with no changes vs `terraform plan -detailed-exitcode`
           (median of --deploy-runs runs each, side by side)
  plan-all `tfenv plan --all` over 12 environments (initialized, no provider) vs 12
           sequential `tfenv plan <env>`, and `plan --all -j 4` (median of --reps runs)
  drift-all  the same for `tfenv drift --all` vs 12 sequential `tfenv drift <env>`
Aliases: envs = startup, backups = backup,verify, locks = lock, plans = plan-all, drift = drift-all,
s3 = lock,s3-status, all = every section.

Timing: hyperfine (--export-json) when it is on PATH (`apt-get install hyperfine` or
`cargo install hyperfine --locked`), else the harness's own timer, which the output
says. Needs terraform (>= 1.6 for the s3 sections), python3 for the s3 sections,
~3 GB free in $TMPDIR, and about 8 minutes on a 2-core machine for every section.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Also rewrite docs/performance.md with the figures (runs every section: it
    /// cannot be combined with --only)
    #[arg(long, conflicts_with = "only")]
    pub write_doc: bool,
    /// Run only these sections, comma-separated, e.g. `--only status,backup,deploy`
    #[arg(long, value_name = "SECTIONS", value_parser = parse_sections)]
    pub only: Option<Sections>,
    /// Runs of `tfenv envs` (startup)
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Runs of each other measurement (status, backup, verify, lock, s3-status)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// Runs of each command of the deploy section
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub deploy_runs: u32,
    /// The terraform to use (default: `terraform` on PATH)
    #[arg(long, value_name = "BIN")]
    pub terraform: Option<PathBuf>,
    /// Time with the harness's own timer even when hyperfine is installed
    #[arg(long)]
    pub no_hyperfine: bool,
    /// Measure this tfenv binary instead of building one with `cargo build --release`
    /// (e.g. target/debug/tfenv where a release build would be a cold one); the page
    /// says which was measured
    #[arg(long, value_name = "BIN")]
    pub tfenv: Option<PathBuf>,
}

/// A part of the benchmark, in the order they run and appear in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Startup,
    Status,
    Backup,
    Verify,
    Lock,
    S3Status,
    Deploy,
    PlanAll,
    DriftAll,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Startup,
        Section::Status,
        Section::Backup,
        Section::Verify,
        Section::Lock,
        Section::S3Status,
        Section::Deploy,
        Section::PlanAll,
        Section::DriftAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Startup => "startup",
            Section::Status => "status",
            Section::Backup => "backup",
            Section::Verify => "verify",
            Section::Lock => "lock",
            Section::S3Status => "s3-status",
            Section::Deploy => "deploy",
            Section::PlanAll => "plan-all",
            Section::DriftAll => "drift-all",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sections chosen, sorted and without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sections(pub Vec<Section>);

impl Sections {
    pub fn all() -> Self {
        Sections(Section::ALL.to_vec())
    }

    pub fn has(&self, section: Section) -> bool {
        self.0.contains(&section)
    }
}

/// `--only` parser: `status,backup`, aliases included; at least one section.
pub fn parse_sections(text: &str) -> Result<Sections, String> {
    let names = Section::ALL.map(Section::name).join(", ");
    let mut chosen = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let found: &[Section] = match part {
            "startup" | "envs" => &[Section::Startup],
            "status" => &[Section::Status],
            "backup" => &[Section::Backup],
            "verify" => &[Section::Verify],
            "backups" => &[Section::Backup, Section::Verify],
            "lock" | "locks" => &[Section::Lock],
            "s3-status" => &[Section::S3Status],
            "s3" => &[Section::Lock, Section::S3Status],
            "deploy" | "deploys" => &[Section::Deploy],
            "plan-all" | "plans" => &[Section::PlanAll],
            "drift-all" | "drift" => &[Section::DriftAll],
            "all" => &Section::ALL,
            _ => {
                return Err(format!(
                    "unknown section `{part}` (sections: {names}; aliases: envs, backups, locks, s3, plans, drift, all)"
                ));
            }
        };
        chosen.extend_from_slice(found);
    }
    if chosen.is_empty() {
        return Err(format!("names no section (sections: {names})"));
    }
    chosen.sort();
    chosen.dedup();
    Ok(Sections(chosen))
}

/// Environment variables set (`Some`) or removed (`None`) for every process started.
#[derive(Clone, Debug, Default)]
pub struct Env(Vec<(OsString, Option<OsString>)>);

impl Env {
    pub fn set(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.0
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.0.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn apply(&self, cmd: &mut Command) {
        for (key, value) in &self.0 {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
    }

    /// `program args…` with these variables, stdin from /dev/null.
    pub fn command(&self, argv: &[OsString]) -> Command {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        self.apply(&mut cmd);
        cmd
    }
}

/// An argument vector from anything string-like.
pub fn argv<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// What every section shares.
pub struct Ctx {
    pub repo: PathBuf,
    pub tmp: PathBuf,
    pub tfenv: PathBuf,
    /// How `tfenv` was built, for the page.
    pub build: String,
    pub terraform: PathBuf,
    pub timer: Timer,
    pub env: Env,
    pub runs: usize,
    pub reps: usize,
    pub deploy_runs: usize,
    pub cpus: usize,
    /// This program: hyperfine runs its `flip-var` before each deploy run.
    pub xtask_exe: PathBuf,
}

impl Ctx {
    /// `tfenv -C <project> --terraform <bin> --non-interactive`, to append a command to.
    pub fn tfenv_argv(&self, project: &Path) -> Vec<OsString> {
        argv([
            self.tfenv.as_os_str(),
            OsStr::new("-C"),
            project.as_os_str(),
            OsStr::new("--terraform"),
            self.terraform.as_os_str(),
            OsStr::new("--non-interactive"),
        ])
    }

    /// Runs `argv` to completion (stdout and stderr captured); an error with both when
    /// it does not exit 0.
    pub fn run_ok(
        &self,
        env: &Env,
        argv: &[OsString],
        cwd: Option<&Path>,
    ) -> anyhow::Result<std::process::Output> {
        let mut cmd = env.command(argv);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let out = cmd
            .output()
            .with_context(|| format!("starting `{}`", show_argv(argv)))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}):\n{}{}",
                show_argv(argv),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }
}

/// A command line for messages and the page, shell-quoted where needed.
pub fn show_argv(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word for hyperfine (which splits its commands like a POSIX shell) or a message.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub fn say(message: &str) {
    eprintln!("bench: {message}");
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let sections = args.only.clone().unwrap_or_else(Sections::all);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask/ has no parent folder")?
        .to_path_buf();

    let terraform = match &args.terraform {
        Some(path) => std::path::absolute(path)?,
        None => find_on_path("terraform")
            .context("terraform not found on PATH; pass --terraform BIN")?,
    };
    ensure!(
        terraform.is_file(),
        "`{}` is not an executable file",
        terraform.display()
    );

    let tmp_dir = tempfile::Builder::new()
        .prefix("tfenv-bench.")
        .tempdir()
        .context("creating a temp folder")?;
    let tmp = tmp_dir.path().to_path_buf();
    // Terraform without the checkpoint call home, without the caller's TF_* settings.
    std::fs::write(tmp.join("terraformrc"), "disable_checkpoint = true\n")?;
    let mut env = Env::default()
        .set("TF_CLI_CONFIG_FILE", tmp.join("terraformrc"))
        .set("CHECKPOINT_DISABLE", "1")
        .set("NO_COLOR", "1");
    for var in [
        "TF_DATA_DIR",
        "TF_WORKSPACE",
        "TF_LOG",
        "TF_LOG_PATH",
        "TF_CLI_ARGS",
        "TF_CLI_ARGS_init",
        "TF_CLI_ARGS_apply",
        "TF_CLI_ARGS_state",
        "TF_CLI_ARGS_plan",
        "TFENV_LOG",
    ] {
        env = env.remove(var);
    }

    let names: Vec<&str> = sections.0.iter().map(|s| s.name()).collect();
    say(&format!("sections: {}", names.join(" ")));
    let timer = Timer::detect(args.no_hyperfine);
    say(&format!("timing: {}", timer.label()));

    let (tfenv, build) = match &args.tfenv {
        Some(bin) => {
            let bin = std::path::absolute(bin)?;
            ensure!(
                bin.is_file(),
                "`{}` is not an executable file",
                bin.display()
            );
            let build = format!("the binary given with --tfenv (`{}`)", bin.display());
            (bin, build)
        }
        None => {
            say("cargo build --release");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(&cargo)
                .args(["build", "--release", "--package", "tfenv"])
                .current_dir(&repo)
                .stdout(Stdio::null())
                .status()
                .context("running cargo build --release")?;
            ensure!(status.success(), "cargo build --release failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(|t| repo.join(t))
                .unwrap_or_else(|| repo.join("target"));
            let tfenv = target.join("release").join("tfenv");
            ensure!(tfenv.is_file(), "the build made no `{}`", tfenv.display());
            (tfenv, "`cargo build --release`".to_string())
        }
    };
    // What was built, read right after the build: the tree may change while this runs.
    let commit = built_commit(&repo);

    let ctx = Ctx {
        repo: repo.clone(),
        tmp,
        tfenv,
        build,
        terraform,
        timer,
        env,
        runs: args.runs as usize,
        reps: args.reps as usize,
        deploy_runs: args.deploy_runs as usize,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        xtask_exe: std::env::current_exe().context("finding this program's path")?,
    };

    let mut outs: Vec<SectionOut> = Vec::new();
    let mut loads = Vec::new();
    let mut envs_project = None;
    let mut s3_project = None;
    for &section in &sections.0 {
        let meter = LoadMeter::start();
        let out = match section {
            Section::Startup | Section::Status => {
                if envs_project.is_none() {
                    envs_project = Some(status::EnvsProject::create(&ctx)?);
                }
                let project = envs_project.as_ref().expect("created above");
                if section == Section::Startup {
                    status::startup(&ctx, project)?
                } else {
                    status::status(&ctx, project)?
                }
            }
            Section::Backup => backups::backup(&ctx)?,
            Section::Verify => backups::verify(&ctx, !sections.has(Section::Backup))?,
            Section::Lock | Section::S3Status => {
                if s3_project.is_none() {
                    s3_project = Some(s3::S3Project::create(&ctx)?);
                }
                let project = s3_project.as_ref().expect("created above");
                let out = if section == Section::Lock {
                    lock::lock(&ctx, project)?
                } else {
                    status::s3_status(&ctx, project)?
                };
                // Stop the moto server once no section needs it.
                if !sections
                    .0
                    .iter()
                    .any(|&s| s > section && matches!(s, Section::Lock | Section::S3Status))
                {
                    s3_project = None;
                }
                out
            }
            Section::Deploy => deploy::deploy(&ctx)?,
            Section::PlanAll => many::many(&ctx, &many::PLAN_ALL)?,
            Section::DriftAll => many::many(&ctx, &many::DRIFT_ALL)?,
        };
        loads.push(meter.finish(&out.load_label));
        outs.push(out);
    }

    let machine = report::Machine::read(&ctx, &commit, &loads);
    let page = report::render(&machine, &outs);
    say("done");
    println!();
    print!("{}", page.body);
    if args.write_doc {
        let path = repo.join("docs").join("performance.md");
        std::fs::create_dir_all(repo.join("docs"))?;
        let temp = repo.join("docs").join(".performance.md.partial");
        std::fs::write(&temp, page.doc)?;
        std::fs::rename(&temp, &path)?;
        say("wrote docs/performance.md");
    }
    drop(tmp_dir);
    Ok(())
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// `abc1234`, plus a note when src/ or the manifests have uncommitted changes.
fn built_commit(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_some_and(|s| !s.is_empty())
    {
        commit.push_str(", with uncommitted changes in src/");
    }
    commit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_sections_and_aliases_in_page_order() {
        let parsed = parse_sections("lock, backups,envs,deploy,lock").unwrap();
        assert_eq!(
            parsed.0,
            vec![
                Section::Startup,
                Section::Backup,
                Section::Verify,
                Section::Lock,
                Section::Deploy
            ]
        );
        assert_eq!(parse_sections("all").unwrap(), Sections::all());
        assert_eq!(
            parse_sections("s3").unwrap().0,
            vec![Section::Lock, Section::S3Status]
        );
    }

    #[test]
    fn only_rejects_unknown_and_empty_lists_naming_the_sections() {
        let err = parse_sections("status,speed").unwrap_err();
        assert!(err.contains("unknown section `speed`"), "{err}");
        assert!(
            err.contains("startup, status, backup, verify, lock, s3-status, deploy"),
            "{err}"
        );
        assert!(
            parse_sections(" , ")
                .unwrap_err()
                .contains("names no section")
        );
    }

    #[test]
    fn hyperfine_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/usr/bin/terraform"), "/usr/bin/terraform");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

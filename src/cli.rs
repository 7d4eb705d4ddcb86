//! The command line as clap types, and nothing else. `settings.rs` turns these
//! into resolved settings; nothing below it sees clap. Uses nothing of tfenv's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Environments come from tfenv.toml, or are discovered from
environments/<env>.backend.conf (.backend.hcl, .tfbackend) + environments/<env>.tfvars,
backend-<env>.tfbackend + terraform.tfvars.<env> or <env>.tfvars, or <env>/ folders
under environments/, envs/ or env/ (terraform.tfvars and *.auto.tfvars there are
loaded by terraform itself). `tfenv envs` notes files that fit no layout.

Exit codes: 0 ok, 1 failure, 2 bad command line, 3 changes present, 4 locked,
5 refused, 6 unhealthy (status), 130 interrupted.";

/// Safe multi-environment Terraform: the right backend and var files for each
/// environment, stricter confirmation the closer you get to production.
#[derive(Debug, Parser)]
#[command(
    name = "tfenv",
    version,
    about = "tfenv — safe multi-environment Terraform (dev / staging / production)",
    long_about = None,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Listed after each command's own options, under their own heading.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Run as if tfenv was started in DIR.
    #[arg(short = 'C', long = "chdir", value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,

    /// Use this tfenv.toml instead of searching upward for one.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Output format: human-readable text, or one JSON document on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Human, global = true)]
    pub output: OutputFormat,

    /// More logging on stderr (-v: debug, -vv: trace and full error details). Also TFENV_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never use colour (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Never prompt; a question that needs an answer is a refusal. Implied when stdin is
    /// not a terminal, tfenv runs in the terminal's background, or CI is set.
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// The terraform (or tofu) binary to run; overrides tfenv.toml and PATH.
    #[arg(long, value_name = "BIN", global = true)]
    pub terraform: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List environments (name, tier, layout, backend, var files) and the project in use.
    #[command(after_help = "\
The environments are tfenv.toml's [environments.*]; without them, they are discovered
from the project's file names (docs/configuration.md, \"Discovery\"):

  environments files  environments/<env>.backend.conf (.backend.hcl, .tfbackend)
                      with environments/<env>.tfvars; the root is the project's
  suffix files        backend-<env>.tfbackend or terraform.tfvars.<env>, with
                      terraform.tfvars.<env> or <env>.tfvars beside the backend file
  folder per env      environments/<env>/, envs/<env>/ or env/<env>/ with .tf files:
                      its own root, its *.tfvars, its backend block (and backend.conf)

Var files terraform loads by itself from the root (terraform.tfvars, *.auto.tfvars and
their .json) are listed as (auto) and never passed again with -var-file: a second load
would override the environment's own file.

Notes list what discovery saw but does not use, so nothing is dropped silently: a var
file no environment goes with, a backend config that fits no layout, an environment
folder without .tf files, a backend config with no var file. They never change the exit
code.

Outside any project, \"no tfenv project found\" names the near misses of the nearest
folder that has some (the files above, folders such as stacks/dev/ that look like root
modules) and prints the tfenv.toml that declares them: save it as tfenv.toml as is (it
is what envs then reads), then adjust names and tiers.

Examples:
  tfenv envs
  tfenv envs --output json
  tfenv -C infra envs")]
    Envs,

    /// Create an environment's state backend (bucket, lock table…), secure by default.
    #[command(after_help = "\
Reads the environment's backend config, checks what of it exists, prints what it will
create or change, confirms by tier as for deploy, makes each change, and checks the
result. A second run says `nothing to do`. Nothing is ever deleted.

s3: the bucket (in the config's region) with versioning, default encryption (SSE-KMS with
`kms_key_id` when set, else SSE-S3), all four public access block settings and a policy
denying requests without TLS; the DynamoDB lock table (hash key LockID, on-demand) when
`dynamodb_table` is set. azurerm: the storage account (StorageV2, TLS 1.2, no public blob
access, blob versioning and soft delete) and the container; the resource group only with
--location. gcs: the bucket with versioning, uniform bucket-level access and public
access prevention (--location is needed to create it). Local backend: nothing to do.

A protection that was never set on an existing bucket is set on a plain run (a bootstrap
that stopped half way is completed). One someone set otherwise (versioning suspended, a
public access setting off, a policy of their own without the TLS rule) is reported, exit
6, and changed only with --fix. A denied call names the permission it needed; the full
list is in docs/bootstrap.md in tfenv's repository.

Examples:
  tfenv bootstrap dev --dry-run
  tfenv bootstrap dev
  tfenv bootstrap --all --yes --confirm production
  tfenv bootstrap production --fix --yes --confirm production
  tfenv bootstrap staging --location westeurope")]
    Bootstrap(BootstrapArgs),

    /// Run `terraform init` for an environment, in its own data directory.
    #[command(after_help = "\
Init is skipped when the environment was initialized with the same backend config
and var files; --reconfigure or --upgrade always run it. It takes the environment's
lock (never under another tfenv's deploy of it); --lock-timeout waits for it.

When the backend config now points elsewhere than the data dir was initialized with
and the old place holds a state, init stops (exit 5) and names `tfenv migrate <env>`
(moves the state) and `tfenv init <env> --reconfigure` (abandons it: confirmed by tier,
--yes, and --confirm <env> for production). Commands that init when needed (plan,
deploy, …) stop the same way.

Examples:
  tfenv init dev
  tfenv init dev --log          # terraform's full output in state/dev/logs/
  tfenv init production --upgrade
  tfenv init staging --reconfigure --yes   # abandon the state at the old backend
  tfenv init --all")]
    Init(InitArgs),

    /// Move an environment's state to the backend its config now names (init -migrate-state).
    #[command(after_help = "\
First point the environment at the new backend (edit its backend config file, and the
root module's backend block when the type changes, e.g. local -> s3). migrate then:
reads the state at the old place and the new one (a state with resources at the new
place is refused unless --force; nothing is changed), confirms by tier as for deploy,
backs up the old state (state/<env>/backups/, reason `pre-migrate`; `tfenv backups`
lists it), runs `terraform init -migrate-state -force-copy`, and checks that lineage,
serial and resource count landed (when terraform gives the copy a lineage of its own, as
1.11 does into an empty s3 key, tfenv pushes the state over it with its own). The old
state is left where it was. The run is
recorded in history as `migrate`, with both locations (never credentials). It holds
the environment's lock, as init does.

The old backend is the one the data dir was last initialized with (terraform records
it in .terraform/tfenv/<env>/terraform.tfstate); --from names its config file instead
(the same HCL as a backend config file; relative local paths are relative to the root
module), for a checkout that was never initialized here. Its type is the recorded one,
else the root module's; --from-type sets it. tfenv reads local and s3 states itself;
migrating from another backend type is not supported.

Examples:
  tfenv migrate dev
  tfenv migrate dev --from environments/dev.old.backend.conf --from-type local
  tfenv migrate production --yes --confirm production
  tfenv migrate staging --force --yes --output json")]
    Migrate(MigrateArgs),

    /// Health of every environment: init, state, locks, backups, last deploy, drift.
    #[command(after_help = "\
Read-only: status never runs `terraform init` and never writes state.
Exits 6 when any environment has a problem, so it works as a health check: among them
drift found by the last `tfenv drift` that completed (DRIFT column; kept through checks
that failed since), a drift check that failed, a last deploy that failed after
apply started, no backup younger than `backup_max_age` (7d for production), two
environments sharing a state lineage, a state bucket without object versioning. Each
problem prints the command that fixes it (`fix` in JSON; docs/json.md).
An s3 state and its lock are read straight from S3 / DynamoDB through the AWS SDK (no
`aws` CLI, no terraform, initialized or not); other remote states through
`terraform state pull`. Every read from a backend gets --timeout; one that takes longer
(or cannot connect) is stopped, and its environment gets the problem `unreachable`.
Credentials AWS refuses (or none found) are the problem `auth`, naming the credentials
tried and the setting to fix.

Examples:
  tfenv status
  tfenv status dev production
  tfenv status --timeout 10s
  tfenv status --output json | jq '.environments[] | select(.problems != [])'")]
    Status(StatusArgs),

    /// Plan one or more environments and summarize what would change; nothing is applied.
    #[command(after_help = "\
One environment: terraform's output streams as it runs, then the summary.
Several (or --all): they are planned at once (-j N at a time, default: the CPU count),
each one's output printed as one block when it finishes, then a table of them all.
Inits run one at a time (they share the plugin cache), the plans side by side.
An environment that fails does not stop the others. The exit code is the worst result:
1 when any failed; else 5 when any was refused (the policy: retrying does not help);
else 4 when any was locked (retrying later does); else 130 when interrupted; else, with
--detailed-exitcode, 3 when any has changes, 0 when none.

With --out DIR (one environment) the plan is kept as a plan bundle (terraform.plan,
plan.json, bundle.json; folder 0700, files 0600: it holds secrets) for
`tfenv deploy ENV --plan DIR` to apply, possibly in another clone of the same commit.
An existing bundle in DIR is removed first (a failed or refused plan leaves none);
a DIR that holds anything else is refused.
With --encrypt, terraform.plan and plan.json are written encrypted with age
(terraform.plan.age, plan.json.age) to the public keys of --recipient (or
TFENV_BUNDLE_RECIPIENTS, comma or space separated), or with the passphrase in
TFENV_BUNDLE_PASSPHRASE (never a flag: it would show in `ps`); bundle.json stays clear.
The clear plan exists only in a 0600 file under state/<env>/, removed on every exit.
With --publish (one environment; needs `ledger = \"backend\"` under [project] and an s3,
azurerm or gcs backend), the bundle is uploaded to the shared ledger beside the state,
`<state key>.tfenv/plans/<ID>/`, each object created once and bundle.json last (an upload
that fails publishes nothing usable: exit 1). It prints the ID and the command to apply
it: `tfenv deploy ENV --plan ledger:<ID>`, from any clone of the same commit. Without
--out the bundle is written to a private folder under state/<env>/, removed on every exit;
with --out it is also kept there. --encrypt works with --publish too.

Examples:
  tfenv plan dev
  tfenv plan production --detailed-exitcode   # exit 3 when there are changes
  tfenv plan staging --output json | jq .plan
  tfenv plan --all --detailed-exitcode        # every environment, at once
  tfenv plan dev staging -j 2
  tfenv plan --all --output json | jq '.environments[] | select(.result == \"failed\")'
  tfenv plan production --out ../plans/production   # a bundle (outside the checkout), then apply
  tfenv plan production --out ../plans/production --encrypt --recipient age1…
  tfenv plan production --publish --encrypt   # to the shared ledger, as ledger:<ID>")]
    Plan(PlanArgs),

    /// Find what changed outside Terraform (drift) and code not yet applied, read-only.
    #[command(after_help = "\
For each environment, at once (-j): init if needed, then
`terraform plan -lock=false -detailed-exitcode -out=<temporary file> -var-file=…` and
`terraform show -json` of that plan. It never takes the state lock (a deploy running
meanwhile is not disturbed), never writes state and never prompts, even on a terminal.
The temporary plan (under state/<env>/) is removed on every exit, Ctrl-C included.

Per environment it reports:
  drifted  resources changed outside Terraform: address, `update` or `delete`, and the
           names of the changed attributes (never their values, sensitive or not)
  pending  changes the code would make that are not drift: code not yet applied
           (a plan that only undoes a drift is the drift, not pending)
Severity: critical = deleted outside Terraform in production; high = other production
drift, or a deletion in staging; medium = other staging drift; low = development.

Each check writes state/<env>/drift.json (read by `tfenv status`, also when the check
failed: it then keeps what the last completed check found, `last_completed`) and a
`drift` record in `tfenv history`; with `ledger = \"backend\"` the record is shared
like a deploy's. `[hooks] on_drift` runs after every check that completed or failed.
With --summary FILE or GITHUB_STEP_SUMMARY set, a Markdown section is appended for the
CI job page.

Exit codes: 0 nothing drifted (pending changes alone are 0); 3 something drifted;
1 a check failed (failure wins over drift; the other environments are still checked
and reported); 2 a usage error (an unknown environment, a bad flag); 130 interrupted.

Examples:
  tfenv drift production
  tfenv drift --all                        # every environment, worst severity first
  tfenv drift --all --output json          # nightly CI: one JSON document
  tfenv drift --all --output json | jq '.environments[] | select(.result == \"drifted\")'
  tfenv drift staging production --timeout 10m")]
    Drift(DriftArgs),

    /// Check roots and var files without credentials or a backend: fmt, validate, variables.
    #[command(after_help = "\
For each distinct terraform root of the environments: `terraform fmt -check -recursive`
(the files that need formatting), `init -backend=false` into a data dir of its own
(.terraform/tfenv/_validate/: never an environment's, never the backend), and
`terraform validate -json` (each diagnostic with file:line:column). Roots are checked at
once (-j N at a time, default: the CPU count).
For each environment: its var files parse, and every variable they set is declared by
the root module (a typo names the closest declared name); a required variable that no
var file sets is a warning (terraform looks for TF_VAR_<name> or -var).
Exit 1 when anything is an error; warnings alone exit 0.

Examples:
  tfenv validate --all
  tfenv validate dev production
  tfenv validate --all --output json | jq '.environments[].problems[]'")]
    Validate(ValidateArgs),

    /// Plan, back up, confirm by tier, apply exactly that plan, record it.
    #[command(after_help = "\
Confirmation by tier:
  development  y/N                           (non-interactive: --yes)
  staging      type `yes`                    (non-interactive: --yes)
  production   type the environment's name   (non-interactive: --yes --confirm <env>)
               (its full name: an alias doesn't count)
               and the number of resources it destroys (non-interactive: --allow-destroy);
               a clean git tree unless --allow-dirty (tfenv's own state/, .terraform/
               and local backend state files never count; any file terraform loads
               hidden from git with --assume-unchanged or --skip-worktree does; a git
               failure refuses).
Without a prompt, --yes and --confirm are checked before init and plan run; --allow-destroy
after the plan, which alone knows what is destroyed.
Staging and production are backed up before the apply; production's backup is verified.

With --plan DIR, the plan bundle written by `tfenv plan ENV --out DIR` is applied
exactly, never planned again. It is refused (exit 5, naming the check and both values)
when its checksums do not match, it is for another environment, terraform's version or
the backend differ, it was planned from another commit than HEAD or from a dirty tree,
the tree is dirty now, a var file changed, or the state moved since the plan.
An encrypted bundle (plan --encrypt) is decrypted with TFENV_BUNDLE_IDENTITY (an age
identity file's path, or the AGE-SECRET-KEY-1… key itself) or TFENV_BUNDLE_PASSPHRASE;
a missing or wrong key is refused (exit 5). The clear plan is written only to a 0600
file under state/<env>/ and removed on every exit.
With --plan ledger:<ID>, the bundle `tfenv plan ENV --publish` put in the shared ledger
is downloaded into a private folder under state/<env>/ (removed on every exit) and
checked and applied the same way. An ID with no published plan is a usage error (exit 2)
listing the newest published plans of the environment.

An environment with `promote_from = \"staging\"` in tfenv.toml deploys only a commit that
staging's history shows deployed successfully (applied or no changes) from a clean tree:
HEAD, or the bundle's commit with --plan. Anything else is refused (exit 5) before the
plan; --skip-promotion-check \"REASON\" deploys anyway and keeps REASON in history.

Examples:
  tfenv deploy dev
  tfenv deploy staging --yes
  tfenv deploy production --yes --confirm production     # CI
  tfenv deploy production --plan ../plans/production --yes --confirm production
  tfenv deploy production --plan ledger:20261130T120000Z-4f2c9e1-a1b2c3 --yes --confirm production
  tfenv deploy production --skip-promotion-check \"hotfix INC-42, staging is down\"")]
    Deploy(DeployArgs),

    /// `apply -refresh-only` through the same summary, backup, confirmation and history.
    #[command(after_help = "\
Examples:
  tfenv refresh staging --dry-run     # only show the drift
  tfenv refresh production --yes --confirm production")]
    Refresh(RefreshArgs),

    /// Print an environment's outputs (sensitive values redacted).
    #[command(after_help = "\
Examples:
  tfenv outputs dev
  tfenv outputs production --cached --output json")]
    Outputs(OutputsArgs),

    /// The deploy ledger of an environment: who, when, which commit, what changed.
    #[command(after_help = "\
Examples:
  tfenv history production
  tfenv history dev --limit 5 --output json")]
    History(HistoryArgs),

    /// Back up an environment's state, with its SHA-256 and header in the manifest.
    #[command(after_help = "\
Backups go to state/<env>/backups/terraform.tfstate.YYYYMMDD-HHMMSS (UTC, mode 0600),
one line each in state/<env>/backups/MANIFEST.jsonl.

Examples:
  tfenv backup production
  tfenv backup --all")]
    Backup(BackupArgs),

    /// List an environment's backups: time, age, serial, lineage, size, reason, verified.
    #[command(after_help = "\
--versions lists the versions the bucket keeps of the state object itself (s3 object
versions): version ID, time, age, size, and serial and lineage read from the first bytes
of each (`-` where they could not be read), the newest 20 unless --limit N (0: all).
Restore one with `tfenv restore <env> version:<ID>`. Only for remote backends with
versioning (not the local backend).

Examples:
  tfenv backups production
  tfenv backups dev --output json
  tfenv backups production --versions")]
    Backups(BackupsArgs),

    /// Check every backup against its manifest: present, SHA-256, a valid state, header.
    #[command(after_help = "\
Exit 1 when a backup fails, naming each bad file. Files named like backups that the
manifest does not list, leftover .partial files and unreadable manifest lines are
warnings: shown, but exit 0.

Examples:
  tfenv verify
  tfenv verify production staging")]
    Verify(VerifyArgs),

    /// Restore a backup through terraform state push, backing up the current state first.
    #[command(after_help = "\
BACKUP is `latest`, a name from `tfenv backups <env>`, `version:<ID>` (a version of
the state object from `tfenv backups <env> --versions`, first downloaded into the backups
as `bucket-version <ID>`), or the path of any state file. With the shared ledger, a
backup's name in the bucket works too, and `shared:<name>` is the shared one when this
machine has another backup of that name.
A backup of the same lineage gets serial current+1 so terraform accepts it; another lineage
is refused unless --force. Confirmation by tier, as for deploy.

Examples:
  tfenv restore dev latest
  tfenv restore production terraform.tfstate.20261122-101500 --yes --confirm production
  tfenv restore production version:3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY --yes --confirm production
  tfenv restore staging ./pulled.tfstate")]
    Restore(RestoreArgs),

    /// Delete the oldest backups beyond N (never the newest or the last known good one).
    #[command(after_help = "\
Only backups listed in MANIFEST.jsonl count; a file merely named like one is never
counted or deleted. The whole plan is computed before anything is deleted.

Examples:
  tfenv prune dev --keep 10
  tfenv prune production --keep 50 --yes --confirm production")]
    Prune(PruneArgs),

    /// Who holds the state lock: ID, operation, who, since when — read from the backend.
    #[command(after_help = "\
Reads the lock where the backend keeps it (local info file + OS lock, DynamoDB item,
S3 .tflock object, Azure blob lease, GCS .tflock object) without running terraform init.
Exit 0 whether or not a lock is held; 1 when the backend cannot be read, or does not
answer within --timeout (its CLI is stopped).

Examples:
  tfenv lock dev
  tfenv lock production --timeout 10s
  tfenv lock --all --output json")]
    Lock(LockArgs),

    /// Release a stuck state lock after checking its ID (terraform force-unlock).
    #[command(after_help = "\
The ID must be the current lock's (see `tfenv lock <env>`). The state is backed up first,
and the unlock is confirmed by tier, as for deploy.

Examples:
  tfenv unlock dev 9db590f1-b6fe-c5f2-2678-8804f089deba
  tfenv unlock production <ID> --yes --confirm production")]
    Unlock(UnlockArgs),

    /// Check the machine and the project: terraform, PATH, cloud CLIs, git, leftovers.
    #[command(after_help = "\
One line per check: ✓ ok, ! warning, ✗ failure, each with its fix. Exit 1 when any
check fails (warnings alone: 0). Every call to another program (terraform, az,
gcloud, git, another tfenv) gets --timeout, and so does resolving the AWS
credentials of each s3 environment (through the AWS SDK, as tfenv's reads do: no
aws CLI needed; not checked against AWS).

--fix removes what doctor found left over: the data dirs of environments that no
longer exist (.terraform/tfenv/<name>/ and its fingerprint), and tfenv's own lock
files whose process is gone (the killed run is recorded in history first). A lock
a live process holds is never touched. It asks first; without a terminal it needs
--yes, else it is refused (exit 5) and nothing is removed.

Examples:
  tfenv doctor
  tfenv doctor --fix
  tfenv doctor --fix --yes                     # CI, no prompt
  tfenv doctor --output json | jq '.checks[] | select(.status != \"ok\")'")]
    Doctor(DoctorArgs),

    /// Run terraform as an environment: its data dir, root, workspace and var files.
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),

    /// Print shell lines that make a bare `terraform` in this shell act on an environment.
    #[command(after_help = ENV_HELP)]
    Env(EnvArgs),

    /// Print the script that sets up shell completions for SHELL.
    #[command(after_help = "\
The script asks tfenv itself at each TAB (TFENV_COMPLETE=<shell> tfenv -- <words>), so it
completes the project's environment names and aliases wherever an environment goes,
and `restore <env> <TAB>` the environment's backups (from state/<env>/, never the
network). It runs the `tfenv` found on PATH; outside a project it offers no names.
Regenerate it after upgrading tfenv.

Examples:
  tfenv completions bash > ~/.local/share/bash-completion/completions/tfenv
  tfenv completions zsh > \"${fpath[1]}/_tfenv\"
  tfenv completions fish > ~/.config/fish/completions/tfenv.fish
  echo 'source <(tfenv completions bash)' >> ~/.bashrc")]
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        #[command(flatten)]
        unused: UnusedGlobals,
    },

    /// Print a man page (roff) to stdout, or write every page to a folder.
    #[command(
        after_help = "\
Pages: tfenv(1) and one tfenv-<command>(1) per command, each with the command's help,
examples, exit status and the files it reads and writes. Each page is written whole
(through a temporary file), so a failed --dir run leaves no half page.

man (man-db) finds pages in ../share/man of every folder on PATH: after `cargo install`,
~/.cargo/share/man/man1 (below). Another folder needs MANPATH, with a trailing colon to
keep the system pages: export MANPATH=\"$HOME/.local/share/man:\".

Examples:
  tfenv man --dir ~/.cargo/share/man/man1     # all pages, beside ~/.cargo/bin: `man tfenv-deploy`
  tfenv man deploy | man -l -                 # read one page
  tfenv man > tfenv.1",
        override_usage = "tfenv man [COMMAND]\n       tfenv man --dir <DIR>"
    )]
    Man {
        /// The command whose page to print (default: tfenv(1), the overview).
        #[arg(value_name = "COMMAND", conflicts_with = "dir")]
        command: Option<String>,

        /// Write tfenv.1 and every tfenv-<command>.1 into DIR (created when missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,

        #[command(flatten)]
        unused: UnusedGlobals,
    },
}

impl Command {
    /// Whether the command reads a project, and so needs the current directory: every
    /// command but `completions` and `man`, which print what the clap tree says (they
    /// work in a deleted directory, so `source <(tfenv completions bash)` never fails).
    pub fn reads_project(&self) -> bool {
        !matches!(self, Command::Completions { .. } | Command::Man { .. })
    }
}

const EXEC_HELP: &str = "\
Runs `terraform <TERRAFORM_ARGS>` in the environment's root with its TF_DATA_DIR,
TF_WORKSPACE and the plugin cache tfenv uses, initialized first if needed. plan,
apply, destroy, refresh, import and console get the environment's var files, right
after the subcommand (a -var-file of yours comes later and wins). Paths in
TERRAFORM_ARGS are relative to the environment's root, as with `terraform -chdir`.
TERRAFORM_ARGS come after `--`; tfenv's own options go before it.

Commands that change the state (apply, destroy, import, refresh, taint, untaint,
state rm|mv|push|replace-provider, force-unlock) first take the environment's lock, are
confirmed by tier as deploy is (--yes, --confirm ENV; --allow-destroy for a production
destroy), then keep a backup (`tfenv backups`; none when the newest one holds the same
state) and are recorded in history as `exec`. terraform's own backup of `state
rm|mv|replace-provider` goes to a private folder under state/<env>/, removed afterwards.
Refused (exit 2): `apply PLANFILE` (a plan file does not say which environment it was
made for or what it destroys: use `tfenv plan ENV --out DIR` and `tfenv deploy ENV
--plan DIR`), `workspace new|select|delete` (the workspace is set in tfenv.toml),
`init` and `-chdir`. terraform's own prompt (apply without -auto-approve) still comes
after. Read-only commands (plan, show, output, state list|show|pull, validate,
console, …) run straight.

stdin, stdout and stderr are terraform's own: its prompts and `console` get the
terminal, Ctrl-C reaches terraform as it would without tfenv. tfenv exits with
terraform's exit code (`plan -detailed-exitcode`: 2 for changes); tfenv's own
refusals keep theirs (5). --output json is refused: the output is terraform's.

Examples:
  tfenv exec dev -- state list
  tfenv exec dev -- plan -detailed-exitcode
  tfenv exec dev -- console
  tfenv exec staging -- import aws_s3_bucket.logs my-logs-bucket
  tfenv exec production --yes --confirm production -- state rm module.old
  tfenv exec production --yes --confirm production --allow-destroy -- destroy -target=x.y";

const ENV_HELP: &str = "\
Prints `export` lines for TF_DATA_DIR, TF_WORKSPACE (or unsets it), TF_PLUGIN_CACHE_DIR,
TF_CLI_ARGS_<command> with the var files (plan, apply, destroy, refresh, import,
console), TFENV_ENV, and a `cd` to the environment's root — the job switch-env.sh did.
The environment is initialized first if needed. --unset prints the lines that undo it
(the working directory stays where it is). `terraform apply PLANFILE` in that shell
gets the var files too: Terraform 1.11 accepts them when the values match the plan's,
older versions (1.0.3) refuse them (`tfenv exec` refuses plan files: use `tfenv plan`
and `tfenv deploy --plan`). tfenv's own commands in that shell ignore its
TF_CLI_ARGS_* lines.
--output json prints the variables as one document instead.

Examples:
  eval \"$(tfenv env dev)\"                 # bash, zsh
  tfenv env dev --shell fish | source
  tfenv env dev --shell pwsh | Out-String | Invoke-Expression
  eval \"$(tfenv env --unset)\"             # back to a plain shell";

/// The global options that change nothing for `completions` and `man`, hidden from their
/// help. clap propagates a global option to a subcommand only where the subcommand has no
/// argument of that id: these take their place, and their values still reach
/// [`GlobalArgs`]. (`--output` stays: JSON is refused there.)
#[derive(Debug, Args)]
pub struct UnusedGlobals {
    #[arg(short = 'C', long = "chdir", value_name = "DIR", hide = true)]
    chdir: Option<PathBuf>,
    #[arg(long, value_name = "FILE", hide = true)]
    config: Option<PathBuf>,
    #[arg(short, long, action = clap::ArgAction::Count, hide = true)]
    verbose: u8,
    #[arg(short, long, conflicts_with = "verbose", hide = true)]
    quiet: bool,
    #[arg(long, hide = true)]
    no_color: bool,
    #[arg(long, hide = true)]
    non_interactive: bool,
    #[arg(long, value_name = "BIN", hide = true)]
    terraform: Option<PathBuf>,
}

/// One environment, or `--all` of them.
#[derive(Debug, Args)]
pub struct EnvOrAll {
    /// The environment (a name or an alias).
    #[arg(
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub env: Option<String>,

    /// Every environment of the project.
    #[arg(long)]
    pub all: bool,
}

impl EnvOrAll {
    /// The names asked for; empty means all.
    pub fn names(&self) -> Vec<String> {
        self.env.iter().cloned().collect()
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub target: EnvOrAll,

    /// Pass -reconfigure: use the backend config as it is now, without migrating state.
    #[arg(long)]
    pub reconfigure: bool,

    /// Pass -upgrade: pick the newest allowed provider and module versions.
    #[arg(long)]
    pub upgrade: bool,

    /// Write terraform's full output to state/<env>/logs/ (always on for production).
    #[arg(long)]
    pub log: bool,

    /// For --reconfigure when the backend moved and the old place holds a state (which
    /// it abandons): confirmed by tier, as for deploy.
    #[command(flatten)]
    pub approve: ConfirmArgs,

    #[command(flatten)]
    pub lock: LockTimeout,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environments to plan (names or aliases).
    #[arg(
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub envs: Vec<String>,

    /// Every environment of the project (the JSON document is the list even for one).
    #[arg(long)]
    pub all: bool,

    /// How many environments to plan at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Exit 3 when the plan has changes (0 when none), like terraform's -detailed-exitcode.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Write terraform's full output to state/<env>/logs/ (always on for production).
    #[arg(long)]
    pub log: bool,

    /// Keep the plan as a plan bundle in DIR, for `tfenv deploy ENV --plan DIR` (one
    /// environment).
    #[arg(long, value_name = "DIR", conflicts_with = "all")]
    pub out: Option<PathBuf>,

    /// Encrypt the bundle's terraform.plan and plan.json with age (to --recipient /
    /// TFENV_BUNDLE_RECIPIENTS, or with TFENV_BUNDLE_PASSPHRASE). Needs --out or --publish.
    // Checked in PlanSettings: clap's `requires` cannot say "one of --out, --publish".
    #[arg(long)]
    pub encrypt: bool,

    /// An age public key (age1…) the bundle is encrypted to; repeatable. Replaces
    /// TFENV_BUNDLE_RECIPIENTS.
    #[arg(long, value_name = "KEY", requires = "encrypt")]
    pub recipient: Vec<String>,

    /// Publish the plan as a bundle in the shared ledger beside the state (needs
    /// `ledger = "backend"`), for `tfenv deploy ENV --plan ledger:<ID>`. One environment.
    #[arg(long, conflicts_with = "all")]
    pub publish: bool,

    #[command(flatten)]
    pub lock: LockTimeout,

    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The environments to check (names or aliases).
    #[arg(
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub envs: Vec<String>,

    /// Every environment of the project.
    #[arg(long)]
    pub all: bool,

    /// How many environments to check at once (default: twice the number of CPUs: a
    /// check mostly waits for the cloud's APIs; lower it when providers use much memory).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Give up on one environment's check after DURATION (e.g. 10m): its terraform is
    /// stopped and the check failed.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,

    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The environments to validate (names or aliases).
    #[arg(
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub envs: Vec<String>,

    /// Every environment of the project.
    #[arg(long)]
    pub all: bool,

    /// How many roots to check at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

/// Where a Markdown job summary goes besides `GITHUB_STEP_SUMMARY`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Append a Markdown summary of the run to FILE (created when missing), as is done
    /// to the file GITHUB_STEP_SUMMARY names: for GitLab, Buildkite and other CIs.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<std::path::PathBuf>,
}

/// Approval without a prompt, for commands that change or delete something.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Approve without a prompt (production also needs --confirm).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// The environment's exact full name, required with --yes for production.
    #[arg(long, value_name = "ENV")]
    pub confirm: Option<String>,
}

/// Flags that decide whether a change may be applied.
#[derive(Debug, Args)]
pub struct ApplyFlags {
    #[command(flatten)]
    pub approve: ConfirmArgs,

    /// Write sensitive output values into outputs.json instead of `<sensitive>`.
    #[arg(long)]
    pub include_sensitive: bool,

    /// Write terraform's full output to state/<env>/logs/ (always on for production).
    #[arg(long)]
    pub log: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The environment to deploy.
    #[arg(value_name = "ENV")]
    pub env: String,

    #[command(flatten)]
    pub apply: ApplyFlags,

    /// Deploy production from a git tree with uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,

    /// Non-interactive production deploys that destroy resources need this too.
    #[arg(long)]
    pub allow_destroy: bool,

    /// Apply the plan bundle in DIR (from `tfenv plan ENV --out DIR`), or `ledger:<ID>` (from
    /// `tfenv plan ENV --publish`), instead of planning. A bundle always needs a clean tree
    /// at the commit it was planned from.
    #[arg(long, value_name = "DIR|ledger:ID", conflicts_with = "allow_dirty")]
    pub plan: Option<PathBuf>,

    /// Deploy although `promote_from` (tfenv.toml) has not deployed this commit
    /// successfully; REASON (e.g. "hotfix INC-42", not empty) is kept in history.
    #[arg(long, value_name = "REASON")]
    pub skip_promotion_check: Option<String>,
    #[command(flatten)]
    pub lock: LockTimeout,

    #[command(flatten)]
    pub ledger: LedgerDeadline,

    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// The environment to refresh.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Only plan the refresh and show the drift; change nothing.
    #[arg(long, conflicts_with_all = ["yes", "confirm", "allow_dirty", "include_sensitive"])]
    pub dry_run: bool,

    /// Refresh production from a git tree with uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,

    #[command(flatten)]
    pub apply: ApplyFlags,

    #[command(flatten)]
    pub lock: LockTimeout,

    #[command(flatten)]
    pub ledger: LedgerDeadline,

    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// The environment whose outputs to print.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Read state/<env>/outputs.json (written by the last deploy) instead of the live state.
    #[arg(long)]
    pub cached: bool,

    /// Show sensitive values instead of `<sensitive>`.
    #[arg(long)]
    pub include_sensitive: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment whose history to print.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Show the newest N records (0: all).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    pub limit: usize,

    #[command(flatten)]
    pub deadline: Deadline,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: EnvOrAll,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// The environment whose backups to list.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// List the versions of the state object in the backend's bucket instead.
    #[arg(long)]
    pub versions: bool,

    /// With --versions: show the newest N versions (0: all of them).
    #[arg(long, value_name = "N", default_value_t = 20, requires = "versions")]
    pub limit: usize,

    #[command(flatten)]
    pub deadline: Deadline,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Environments to verify (default: all).
    #[arg(value_name = "ENV")]
    pub envs: Vec<String>,

    #[command(flatten)]
    pub deadline: Deadline,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The environment to restore into.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// `latest`, a backup's name (as `tfenv backups` shows it; `shared:<name>`),
    /// `version:<ID>` of the state object, or the path of a state file.
    #[arg(value_name = "BACKUP")]
    pub backup: String,

    /// Restore a state of another lineage, or one that belongs to another environment
    /// (terraform state push -force).
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub approve: ConfirmArgs,

    #[command(flatten)]
    pub lock: LockTimeout,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The environment whose state moves.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// The OLD backend config file (default: the backend recorded at the last init).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// The OLD backend's type (default: recorded at the last init, else the root module's).
    #[arg(long, value_name = "TYPE", requires = "from")]
    pub from_type: Option<String>,

    /// Overwrite a state that holds resources at the new location.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub approve: ConfirmArgs,

    #[command(flatten)]
    pub lock: LockTimeout,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub target: EnvOrAll,

    /// Print what exists and what would be created or changed; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also change protections someone set otherwise on an existing bucket (versioning
    /// suspended, public access allowed, a policy without the TLS rule).
    #[arg(long)]
    pub fix: bool,

    /// Where to create what is missing and has no place in the backend config: an Azure
    /// resource group (only created with this) and storage account, a GCS bucket.
    #[arg(long, value_name = "REGION")]
    pub location: Option<String>,

    /// The replication of a new Azure storage account: Standard_LRS (the default),
    /// Standard_GRS, Standard_RAGRS, Standard_ZRS, Standard_GZRS or Standard_RAGZRS.
    #[arg(long, value_name = "SKU")]
    pub sku: Option<String>,

    #[command(flatten)]
    pub approve: ConfirmArgs,

    /// Give up on each call to the cloud (a read or a change: an AWS request, an `az` or
    /// `gcloud` run) after DURATION, e.g. 10s or 2m; a call cut short is reported as
    /// `unknown` (it may have been made).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The environment whose backups to prune.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// How many of the newest backups to keep (at least the newest is always kept).
    #[arg(long, value_name = "N")]
    pub keep: usize,

    #[command(flatten)]
    pub approve: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub target: EnvOrAll,

    #[command(flatten)]
    pub deadline: Deadline,
}

/// How long a read from a backend (a cloud CLI, `terraform state pull`) may take.
#[derive(Debug, Args)]
pub struct Deadline {
    /// Give up on a read from a backend (a cloud CLI, terraform) after DURATION, e.g. 10s or
    /// 2m, and kill its processes: the environment is unreachable.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

/// How long one read or upload of the shared ledger may take (`deploy`, `refresh`).
#[derive(Debug, Args)]
pub struct LedgerDeadline {
    /// Give up on each read or upload of the shared ledger (`ledger = "backend"`) after
    /// DURATION, e.g. 10s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a timeout must be longer than 0s".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e}; write it like 10s, 90s or 2m")),
    }
}

/// How long a command waits for a lock someone else holds.
#[derive(Debug, Args)]
pub struct LockTimeout {
    /// Wait up to DURATION (90s, 5m) for each lock another run holds (the environment's,
    /// terraform's state lock), saying who holds it every 30s; then exit 4. 0s: at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_lock_timeout)]
    pub lock_timeout: std::time::Duration,
}

/// The longest wait: a week. (terraform's own `-lock-timeout` overflows a little beyond
/// 292 years; a CI job that should wait longer than a week is waiting for the wrong thing.)
const LOCK_TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn parse_lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d > LOCK_TIMEOUT_MAX => {
            Err("a lock timeout can be at most 7d (one week)".to_string())
        }
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e}; write it like 0s, 90s or 5m")),
    }
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The environment whose lock to release.
    #[arg(value_name = "ENV")]
    pub env: String,

    /// The lock ID, as `tfenv lock <env>` shows it.
    #[arg(value_name = "LOCK_ID")]
    pub lock_id: String,

    #[command(flatten)]
    pub approve: ConfirmArgs,

    #[command(flatten)]
    pub lock: LockTimeout,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The environment to run terraform as.
    // Fixed indexes: the trailing arguments must stay last (the completion engine now
    // re-adds every argument in order, so ENV keeps its place there too).
    #[arg(value_name = "ENV", index = 1)]
    pub env: String,

    #[command(flatten)]
    pub approve: ConfirmArgs,

    /// A non-interactive production `destroy` (or `apply -destroy`) needs this too.
    #[arg(long)]
    pub allow_destroy: bool,

    #[command(flatten)]
    pub lock: LockTimeout,

    /// terraform's command line, after `--` (required): e.g. `-- state list`.
    #[arg(
        value_name = "TERRAFORM_ARGS",
        index = 2,
        required = true,
        last = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The environment the shell should act on.
    #[arg(value_name = "ENV", required_unless_present = "unset")]
    pub env: Option<String>,

    /// The shell the lines are for.
    #[arg(long, value_enum, value_name = "SHELL", default_value_t = EnvShell::Bash)]
    pub shell: EnvShell,

    /// Print the lines that undo an earlier `tfenv env` instead.
    #[arg(long, conflicts_with = "env")]
    pub unset: bool,
}

/// The shells `tfenv env` writes for. bash and zsh share their syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnvShell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Remove stale data dirs and dead tfenv lock files (asks first).
    #[arg(long)]
    pub fix: bool,

    /// With --fix: remove without asking (needed without a terminal).
    #[arg(long, short = 'y', requires = "fix")]
    pub yes: bool,

    /// Give up on each program doctor asks (terraform, az, gcloud, git, another tfenv) and
    /// on resolving AWS credentials after DURATION, e.g. 10s or 2m: that check fails.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Environments to check (default: all).
    #[arg(value_name = "ENV")]
    pub envs: Vec<String>,

    /// How many environments to check at once (default: number of CPUs × 2).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub deadline: Deadline,

    #[command(flatten)]
    pub summary: SummaryArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod ci_examples;

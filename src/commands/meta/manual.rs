//! The manual: tfenv(1), the overview, and one tfenv-<command>(1) for every command the
//! clap tree shows (hidden ones and clap's `help` left out), so a new command gets its
//! page without a line here. Each page: clap's NAME, SYNOPSIS and options; the command's
//! long help and the prose of its `after_help` as DESCRIPTION; its examples as EXAMPLES;
//! then EXIT STATUS and FILES from the small table below ([`facts`]), and SEE ALSO naming
//! only pages this manual has.

use clap_mangen::Man;
use roff::{Inline, Roff, bold, italic, roman};

use crate::error::TfenvError;
use crate::exit::Exit;

pub struct Page {
    /// `tfenv` or `tfenv-<command>`.
    pub name: String,
    pub roff: Vec<u8>,
}

impl Page {
    pub fn file_name(&self) -> String {
        format!("{}.1", self.name)
    }
}

pub struct Manual {
    tree: clap::Command,
}

impl Manual {
    pub fn new(tree: clap::Command) -> Manual {
        // NAME is "tfenv \- <about>": an about that starts "tfenv — " would say it twice.
        let prefix = format!("{} — ", tree.get_name());
        let about = tree.get_about().map(ToString::to_string);
        let mut tree = match about.as_deref().and_then(|a| a.strip_prefix(&prefix)) {
            Some(rest) => tree.about(rest.to_string()),
            None => tree,
        };
        // DESCRIPTION is the long about, else the about, which NAME already says.
        if tree.get_long_about().is_none() {
            tree = tree.long_about(DESCRIPTION);
        }
        // Bin names ("tfenv deploy") and display names ("tfenv-deploy") of the subcommands.
        tree.build();
        Manual { tree }
    }

    /// The commands that get a page, in the tree's order.
    fn commands(&self) -> impl Iterator<Item = &clap::Command> {
        self.tree
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    }

    /// tfenv(1) and every command's page.
    pub fn all(&self) -> anyhow::Result<Vec<Page>> {
        let mut pages = vec![self.overview()?];
        for command in self.commands() {
            pages.push(self.command_page(command)?);
        }
        Ok(pages)
    }

    /// One command's page; an unknown name is a usage error naming the closest one.
    pub fn page(&self, name: &str) -> anyhow::Result<Page> {
        let name = name.strip_prefix("tfenv-").unwrap_or(name);
        if let Some(command) = self.commands().find(|c| c.get_name() == name) {
            return self.command_page(command);
        }
        let known: Vec<&str> = self.commands().map(clap::Command::get_name).collect();
        let closest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(name, k), *k))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k);
        let hint = match closest {
            Some(k) => format!(
                "did you mean `{k}`? (`tfenv man {k}`; commands: {})",
                known.join(", ")
            ),
            None => format!("commands: {}", known.join(", ")),
        };
        Err(TfenvError::usage(format!("`tfenv man`: no command `{name}`"), Some(hint)).into())
    }

    /// tfenv(1): what tfenv is, the global options, every command's page, all exit codes.
    pub fn overview(&self) -> anyhow::Result<Page> {
        let tree = &self.tree;
        let man = man_for(tree.clone());
        let mut out = Vec::new();
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        synopsis(tree, &mut out)?;
        man.render_description_section(&mut out)?;
        let text = AfterHelp::of(tree);
        let mut roff = Roff::new();
        prose(&mut roff, &text.prose);
        roff.to_writer(&mut out)?;
        man.render_options_section(&mut out)?;
        let mut roff = Roff::new();
        roff.control("SH", ["COMMANDS"]);
        for command in self.commands() {
            roff.control("TP", []);
            roff.text([bold(format!("{}(1)", display_name(command)))]);
            roff.text([roman(about(command))]);
        }
        examples(&mut roff, &text.examples);
        let every = [
            Exit::Success,
            Exit::Failure,
            Exit::Usage,
            Exit::Changes,
            Exit::Locked,
            Exit::Refused,
            Exit::Unhealthy,
            Exit::Interrupted,
        ];
        exit_status(&mut roff, "", &every.map(|e| (e, "")));
        environment(&mut roff);
        files(&mut roff, PROJECT_FILES);
        roff.control("SH", ["SEE ALSO"]);
        let pages: Vec<String> = self
            .commands()
            .map(|command| format!("{}(1)", display_name(command)))
            .collect();
        roff.text([roman(pages.join(", "))]);
        roff.to_writer(&mut out)?;
        man.render_version_section(&mut out)?;
        Ok(Page {
            name: tree.get_name().to_string(),
            roff: finish(&out),
        })
    }

    fn command_page(&self, command: &clap::Command) -> anyhow::Result<Page> {
        let name = display_name(command);
        let man = man_for(command.clone());
        let mut out = Vec::new();
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        synopsis(command, &mut out)?;
        man.render_description_section(&mut out)?;
        let text = AfterHelp::of(command);
        let mut roff = Roff::new();
        prose(&mut roff, &text.prose);
        roff.to_writer(&mut out)?;
        if command.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut out)?;
        }
        let mut roff = Roff::new();
        examples(&mut roff, &text.examples);
        let facts = facts(command.get_name());
        let exits: Vec<(Exit, &str)> = match &facts {
            Some(facts) => facts.exits.to_vec(),
            None => GENERIC_EXITS.to_vec(),
        };
        exit_status(
            &mut roff,
            facts.as_ref().map_or("", |f| f.exit_note),
            &exits,
        );
        if let Some(facts) = &facts
            && !facts.files.is_empty()
        {
            files(&mut roff, facts.files);
        }
        self.see_also(&mut roff, command);
        roff.to_writer(&mut out)?;
        Ok(Page {
            name,
            roff: finish(&out),
        })
    }

    /// tfenv(1), and the page of every other command this one's help names as
    /// `tfenv <command>`: pages this manual has, no other.
    fn see_also(&self, roff: &mut Roff, command: &clap::Command) {
        let mut text = format!("{}\n{}", about(command), after_help(command));
        for arg in command.get_arguments() {
            if let Some(help) = arg.get_help() {
                text.push('\n');
                text.push_str(&help.to_string());
            }
        }
        let mut names = vec![format!("{}(1)", self.tree.get_name())];
        for other in self.commands() {
            if other.get_name() != command.get_name()
                && mentions(&text, self.tree.get_name(), other.get_name())
            {
                names.push(format!("{}(1)", display_name(other)));
            }
        }
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman(names.join(", "))]);
    }
}

/// A page's pieces, as one page: the apostrophe preamble each piece starts with once,
/// and every character beyond ASCII as groff's `\[uXXXX]`, so groff reads it the same
/// without preconv (`groff -man`) as with it (`man`).
fn finish(pieces: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pieces);
    let mut out = String::with_capacity(text.len());
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble && !seen.insert(line) {
            continue;
        }
        for c in line.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// SYNOPSIS with each option's value (`[-C|--chdir DIR]`, where clap_mangen writes
/// `[-C|--chdir]`), the positionals (`<ENV>`, `[COMMAND]`) and a command's subcommands.
fn synopsis(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let bin = command
        .get_bin_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let mut line: Vec<Inline> = vec![bold(bin)];
    let visible = command.get_arguments().filter(|a| !a.is_hide_set());
    let (positionals, options): (Vec<&clap::Arg>, Vec<&clap::Arg>) =
        visible.partition(|a| a.is_positional());
    for arg in options {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        line.push(roman(" "));
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        line.push(bold(names.join("|")));
        if arg.get_action().takes_values() {
            for value in arg.get_value_names().unwrap_or_default() {
                line.push(roman(" "));
                line.push(italic(value.as_str()));
            }
        }
        if !required {
            line.push(roman("]"));
        }
        if matches!(
            arg.get_action(),
            clap::ArgAction::Count | clap::ArgAction::Append
        ) {
            line.push(roman("..."));
        }
    }
    for arg in positionals {
        let name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
        let (open, close) = match arg.is_required_set() {
            true => ("<", ">"),
            false => ("[", "]"),
        };
        line.push(roman(format!(" {open}")));
        line.push(italic(name));
        line.push(roman(close));
        if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
            line.push(roman("..."));
        }
    }
    if command.has_subcommands() {
        line.push(roman(" <"));
        line.push(italic("COMMAND"));
        line.push(roman(">"));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff.to_writer(out)
}

fn man_for(command: clap::Command) -> Man {
    // Only tfenv itself has a version (`tfenv -V`); every page is of that version.
    Man::new(command)
        .source(format!("tfenv {}", env!("CARGO_PKG_VERSION")))
        .manual("tfenv manual")
}

/// `tfenv-deploy` (the name of its page), or `tfenv` for the tree itself.
fn display_name(command: &clap::Command) -> String {
    command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string()
}

fn about(command: &clap::Command) -> String {
    command
        .get_about()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn after_help(command: &clap::Command) -> String {
    command
        .get_after_long_help()
        .or_else(|| command.get_after_help())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Whether `text` says `tfenv <command>` (a whole word: `plan` is not `planned`).
fn mentions(text: &str, bin: &str, command: &str) -> bool {
    let needle = format!("{bin} {command}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

/// A command's `after_help`, split: its explanation and its examples. Its "Exit codes:"
/// paragraph is left out: EXIT STATUS says it, from the table.
struct AfterHelp {
    prose: Vec<String>,
    examples: Vec<String>,
}

impl AfterHelp {
    fn of(command: &clap::Command) -> AfterHelp {
        let text = after_help(command);
        let mut prose = Vec::new();
        let mut examples = Vec::new();
        for paragraph in text.split("\n\n").map(str::trim_end) {
            let first = paragraph.lines().next().unwrap_or_default();
            if first.starts_with("Examples:") || first.starts_with("Example:") {
                examples.extend(paragraph.lines().skip(1).map(|l| l.trim().to_string()));
            } else if first.starts_with("Exit codes:") {
                continue;
            } else if !paragraph.trim().is_empty() {
                prose.push(paragraph.to_string());
            }
        }
        AfterHelp { prose, examples }
    }
}

/// Paragraphs of help text: filled, except one with indented lines (a table, a list),
/// which keeps its lines as they are.
fn prose(roff: &mut Roff, paragraphs: &[String]) {
    for paragraph in paragraphs {
        roff.control("PP", []);
        if paragraph.lines().any(|l| l.starts_with(' ')) {
            roff.control("nf", []);
            for line in paragraph.lines() {
                roff.text([roman(line)]);
            }
            roff.control("fi", []);
        } else {
            let joined: Vec<&str> = paragraph.lines().map(str::trim).collect();
            roff.text([roman(joined.join(" "))]);
        }
    }
}

fn examples(roff: &mut Roff, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    roff.control("nf", []);
    roff.control("RS", ["4"]);
    for line in lines {
        roff.text([roman(line.as_str())]);
    }
    roff.control("RE", []);
    roff.control("fi", []);
}

fn exit_status(roff: &mut Roff, note: &str, exits: &[(Exit, &str)]) {
    roff.control("SH", ["EXIT STATUS"]);
    if !note.is_empty() {
        roff.text([roman(note)]);
    }
    for (exit, meaning) in exits {
        roff.control("TP", []);
        roff.text([bold(exit.code().to_string())]);
        let meaning = if meaning.is_empty() {
            general(*exit)
        } else {
            meaning
        };
        roff.text([roman(meaning)]);
    }
}

/// tfenv(1)'s DESCRIPTION (the tree's about is NAME's line).
const DESCRIPTION: &str = "\
tfenv runs terraform for each environment of a project (dev, staging, production): \
with that environment's backend config, var files, workspace and its own terraform data \
directory, so environments never see each other's state. It backs the state up before \
a change (staging and production always), confirms by tier (production needs its full \
name typed, or --yes --confirm production), and ends with an exit code that means one thing (EXIT STATUS), so CI can \
branch on it; --output json prints one JSON document.";

/// The variables tfenv reads (docs/configuration.md, "Environment variables").
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "TFENV_LOG",
        "A log filter, such as debug or tfenv=trace (as -v, -vv).",
    ),
    ("NO_COLOR", "When set, no colour (as --no-color)."),
    (
        "CI",
        "When set (not false or 0), never prompt (as --non-interactive).",
    ),
    (
        "GITHUB_STEP_SUMMARY",
        "plan, deploy, refresh, drift and status append a Markdown job summary to the file it names.",
    ),
    (
        "TF_PLUGIN_CACHE_DIR",
        "Terraform's provider cache: when set, tfenv uses it instead of its shared \
         .terraform/tfenv/plugin-cache/.",
    ),
    (
        "TF_WORKSPACE",
        "Set by tfenv for an environment with workspace = in tfenv.toml, removed for every \
         other one: a value left in the shell never redirects terraform.",
    ),
    (
        "TFENV_BUNDLE_RECIPIENTS",
        "plan --out DIR --encrypt: the age public keys (age1..., comma or space separated) \
         to encrypt the bundle's plan to, when no --recipient is given.",
    ),
    (
        "TFENV_BUNDLE_PASSPHRASE",
        "plan --encrypt: encrypt with this passphrase instead; deploy --plan: decrypt a \
         bundle encrypted with it. Never a flag: a command line shows in ps.",
    ),
    (
        "TFENV_BUNDLE_IDENTITY",
        "deploy --plan of an encrypted bundle: the path of an age identity file, or the \
         AGE-SECRET-KEY-1... key itself.",
    ),
    (
        crate::complete::VAR,
        "Set by the script tfenv completions prints: the shell asks for completions \
         (TFENV_COMPLETE=bash tfenv -- WORDS), and tfenv prints them instead of running.",
    ),
];

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, what) in ENVIRONMENT {
        roff.control("TP", []);
        roff.text([bold(*name)]);
        roff.text([roman(*what)]);
    }
}

fn files(roff: &mut Roff, files: &[(&str, &str)]) {
    roff.control("SH", ["FILES"]);
    for (path, what) in files {
        roff.control("TP", []);
        roff.text([bold(*path)]);
        roff.text([roman(*what)]);
    }
}

/// What each exit code means anywhere (exit.rs, DESIGN §7).
fn general(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "Everything asked for was done.",
        Exit::Failure => {
            "A failure: terraform failed, a read or write failed, or the configuration is bad."
        }
        Exit::Usage => "A bad command line, or an environment the project does not have.",
        Exit::Changes => "Changes or drift are present.",
        Exit::Locked => {
            "The environment or its state is locked by another run (after --lock-timeout)."
        }
        Exit::Refused => "Refused: a confirmation was not given, or a safety rule stopped the run.",
        Exit::Unhealthy => {
            "status: at least one environment has a problem; bootstrap: a protection was left for --fix."
        }
        Exit::Interrupted => "Interrupted (SIGINT or SIGTERM).",
        Exit::Terraform(_) => "exec: terraform's own exit code, passed through.",
    }
}

/// A command with no entry in [`facts`]: the codes any command may end with.
const GENERIC_EXITS: &[(Exit, &str)] = &[
    (Exit::Success, ""),
    (Exit::Failure, ""),
    (Exit::Usage, ""),
    (Exit::Interrupted, ""),
];

/// What a page says beyond the tree: its command's exit codes (with what they mean there,
/// `""`: the general meaning) and the files it reads and writes. Kept true to the code
/// and to docs/; a command without an entry gets the generic exit codes and no FILES.
struct Facts {
    /// Said before the codes, when they are not the whole story (`exec`).
    exit_note: &'static str,
    exits: &'static [(Exit, &'static str)],
    files: &'static [(&'static str, &'static str)],
}

const CONFIG: (&str, &str) = (
    "tfenv.toml",
    "The project's configuration, read; without one the environments are discovered from \
     the project's files, with their backend config and var files: tfenv envs lists them.",
);
const DATA_DIR: (&str, &str) = (
    ".terraform/tfenv/<env>/",
    "The environment's terraform data directory (TF_DATA_DIR), beside the root module: \
     written by init (run when needed).",
);
const FINGERPRINT: (&str, &str) = (
    ".terraform/tfenv/<env>.fingerprint",
    "The backend config and var files init last ran with: an unchanged one skips init.",
);
const ENV_LOCK: (&str, &str) = (
    "state/<env>/.tfenv.lock",
    "The environment's lock, held while the command runs.",
);
const LOGS: (&str, &str) = (
    "state/<env>/logs/",
    "Terraform's full output, with --log (always for production).",
);
const BUNDLE_OUT: (&str, &str) = (
    "DIR of --out",
    "The plan bundle: terraform.plan, plan.json, bundle.json (folder 0700, files 0600).",
);
const BUNDLE_IN: (&str, &str) = (
    "DIR of --plan",
    "The plan bundle `tfenv plan ENV --out DIR` wrote, read and checked, never changed.",
);
const PLAN_FILE: (&str, &str) = (
    "state/<env>/terraform.plan",
    "The plan, only while the command runs (0600), removed on every exit.",
);
const BACKUPS: (&str, &str) = (
    "state/<env>/backups/",
    "State backups (terraform.tfstate.YYYYMMDD-HHMMSS, 0600) and MANIFEST.jsonl, one line each.",
);
const HISTORY: (&str, &str) = (
    "state/<env>/history.jsonl",
    "The environment's history: one line per deploy, refresh, restore, unlock and drift check.",
);
const OUTPUTS: (&str, &str) = (
    "state/<env>/outputs.json",
    "The outputs after the last deploy or refresh (sensitive values redacted).",
);
const DRIFT: (&str, &str) = (
    "state/<env>/drift.json",
    "What the last drift check found (resource names and attribute names, never values).",
);

/// tfenv(1)'s FILES: the project's files.
const PROJECT_FILES: &[(&str, &str)] = &[
    CONFIG,
    DATA_DIR,
    FINGERPRINT,
    (
        "state/<env>/",
        "tfenv's own files for each environment (folders 0700, files 0600): its lock, \
         backups, history, outputs, drift check and logs. Git-ignored: they hold secrets.",
    ),
    ENV_LOCK,
    BACKUPS,
    HISTORY,
    OUTPUTS,
    DRIFT,
    LOGS,
];

const OK: (Exit, &str) = (Exit::Success, "");
const FAILED: (Exit, &str) = (Exit::Failure, "");
const USAGE: (Exit, &str) = (Exit::Usage, "");
const LOCKED: (Exit, &str) = (Exit::Locked, "");
const REFUSED: (Exit, &str) = (Exit::Refused, "");
const INTERRUPTED: (Exit, &str) = (Exit::Interrupted, "");

fn facts(command: &str) -> Option<Facts> {
    use Exit::{Changes, Failure, Refused, Success, Unhealthy};
    let facts = match command {
        "envs" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG],
        },
        "bootstrap" => Facts {
            exit_note: "",
            exits: &[
                (
                    Success,
                    "Created and checked, or nothing to do (also a --dry-run).",
                ),
                (
                    Failure,
                    "A call failed (unreachable, credentials, permission, a name taken by another account); what was made is said, and a second run completes it.",
                ),
                USAGE,
                REFUSED,
                (
                    Unhealthy,
                    "A protection someone set otherwise was left as it is: run again with --fix.",
                ),
                INTERRUPTED,
            ],
            files: &[CONFIG],
        },
        "init" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, FINGERPRINT, ENV_LOCK, LOGS],
        },
        "status" => Facts {
            exit_note: "",
            exits: &[
                (Success, "Every environment is healthy."),
                FAILED,
                USAGE,
                (
                    Unhealthy,
                    "At least one environment has a problem (listed with its fix).",
                ),
                INTERRUPTED,
            ],
            files: &[CONFIG, DATA_DIR, ENV_LOCK, BACKUPS, HISTORY, DRIFT],
        },
        "plan" => Facts {
            exit_note: "",
            exits: &[
                (Success, "Planned; with --detailed-exitcode: no changes."),
                (Failure, "An environment's plan failed."),
                USAGE,
                (
                    Changes,
                    "With --detailed-exitcode: an environment has changes.",
                ),
                LOCKED,
                (Refused, "The policy refused a plan."),
                INTERRUPTED,
            ],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                ENV_LOCK,
                PLAN_FILE,
                LOGS,
                BUNDLE_OUT,
            ],
        },
        "drift" => Facts {
            exit_note: "",
            exits: &[
                (Success, "Nothing drifted (pending changes alone are 0)."),
                (Failure, "A check failed (failure wins over drift)."),
                USAGE,
                (Changes, "Something drifted."),
                INTERRUPTED,
            ],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                (
                    "state/<env>/.drift-*/",
                    "The check's plan, only while it runs (0700), removed on every exit.",
                ),
                DRIFT,
                HISTORY,
            ],
        },
        "validate" => Facts {
            exit_note: "",
            exits: &[
                (Success, "No errors (warnings alone are 0)."),
                (Failure, "A root or a var file has an error."),
                USAGE,
                INTERRUPTED,
            ],
            files: &[
                CONFIG,
                (
                    ".terraform/tfenv/_validate/",
                    "A data directory of validate's own (init -backend=false), never an environment's.",
                ),
            ],
        },
        "deploy" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                ENV_LOCK,
                PLAN_FILE,
                BACKUPS,
                HISTORY,
                OUTPUTS,
                LOGS,
                BUNDLE_IN,
            ],
        },
        "refresh" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                ENV_LOCK,
                PLAN_FILE,
                BACKUPS,
                HISTORY,
                OUTPUTS,
                LOGS,
            ],
        },
        "outputs" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, OUTPUTS],
        },
        "history" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG, HISTORY],
        },
        "backup" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, BACKUPS],
        },
        "backups" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG, BACKUPS],
        },
        "verify" => Facts {
            exit_note: "",
            exits: &[
                (
                    Success,
                    "Every backup matches its manifest (warnings alone are 0).",
                ),
                (Failure, "A backup failed its check."),
                USAGE,
                INTERRUPTED,
            ],
            files: &[CONFIG, BACKUPS],
        },
        "restore" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, ENV_LOCK, BACKUPS, HISTORY],
        },
        "prune" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, REFUSED, INTERRUPTED],
            files: &[CONFIG, BACKUPS],
        },
        "lock" => Facts {
            exit_note: "",
            exits: &[
                (Success, "Read, whether or not a lock is held."),
                (
                    Failure,
                    "The backend could not be read, or did not answer within --timeout.",
                ),
                USAGE,
                INTERRUPTED,
            ],
            files: &[CONFIG],
        },
        "unlock" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, ENV_LOCK, BACKUPS, HISTORY],
        },
        "doctor" => Facts {
            exit_note: "",
            exits: &[
                (Success, "No check failed (warnings alone are 0)."),
                (Failure, "A check failed."),
                USAGE,
                (
                    Refused,
                    "--fix without a terminal and without --yes: nothing removed.",
                ),
                INTERRUPTED,
            ],
            files: &[CONFIG, DATA_DIR, FINGERPRINT, ENV_LOCK, HISTORY],
        },
        "exec" => Facts {
            exit_note: "terraform's own exit code, passed through (plan -detailed-exitcode: 2 \
                        for changes). tfenv's own outcomes before terraform runs:",
            exits: &[FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                (
                    "state/<env>/.tfenv.lock",
                    "The environment's lock, held while a command that changes the state runs.",
                ),
                BACKUPS,
                HISTORY,
            ],
        },
        "env" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, INTERRUPTED],
            files: &[CONFIG, DATA_DIR, FINGERPRINT],
        },
        "migrate" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE, LOCKED, REFUSED, INTERRUPTED],
            files: &[
                CONFIG,
                DATA_DIR,
                FINGERPRINT,
                ENV_LOCK,
                BACKUPS,
                HISTORY,
                LOGS,
            ],
        },
        "completions" | "man" => Facts {
            exit_note: "",
            exits: &[OK, FAILED, USAGE],
            files: &[],
        },
        _ => return None,
    };
    Some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_beyond_ascii_become_groff_escapes_and_the_preamble_comes_once() {
        let pieces = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH A\n.ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\nx — y…\n";
        assert_eq!(
            String::from_utf8(finish(pieces.as_bytes())).unwrap(),
            ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.SH A\nx \\[u2014] y\\[u2026]\n"
        );
    }

    #[test]
    fn a_command_is_mentioned_only_as_a_whole_word() {
        assert!(mentions("see `tfenv plan ENV --out`", "tfenv", "plan"));
        assert!(mentions("run tfenv backups", "tfenv", "backups"));
        assert!(!mentions("run tfenv backups", "tfenv", "backup"));
    }
}

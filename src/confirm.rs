//! Confirmation by tier (DESIGN.md §5): what is asked interactively, which flags a
//! non-interactive run needs. A prompt that cannot be answered is a refusal, never a yes.
//! May use: project, process (interrupts), error.

use std::sync::Arc;

use crate::error::TfenvError;
use crate::project::{Environment, Project, Tier};

/// One question to the person at the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// y/N, default no.
    YesNo { prompt: String },
    /// The answer must be exactly `expected`.
    TypeExactly { prompt: String, expected: String },
}

/// Asks questions. `Ok(None)` means no answer could be had (EOF, no terminal).
pub trait Prompter: Send + Sync {
    fn ask(&self, question: &Question) -> anyhow::Result<Option<String>>;
}

/// The real prompter: the question on stderr, one line read from the terminal in its
/// normal (cooked) mode. Not dialoguer: its raw mode swallows Ctrl-D, and an end of
/// input must be a refusal, never a prompt that waits on.
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&self, question: &Question) -> anyhow::Result<Option<String>> {
        use std::io::Write;
        // Decided once from --no-color / NO_COLOR / the terminal (settings).
        let bold = console::Style::new().bold().for_stderr();
        let color = console::colors_enabled_stderr();
        let prompt = match question {
            Question::YesNo { prompt } => format!("{prompt} [y/N] "),
            Question::TypeExactly { prompt, .. } => format!("{prompt}: "),
        };
        let shown = if color {
            bold.apply_to(&prompt).to_string()
        } else {
            prompt
        };
        let mut err = std::io::stderr();
        write!(err, "{shown}")?;
        err.flush()?;
        let Some(line) = read_line_in_foreground() else {
            let _ = writeln!(err);
            return Ok(None);
        };
        let answer = line.trim().to_string();
        Ok(Some(match question {
            Question::YesNo { .. }
                if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") =>
            {
                "y".to_string()
            }
            Question::YesNo { .. } => "n".to_string(),
            Question::TypeExactly { .. } => answer,
        }))
    }
}

/// Whether tfenv may read an answer from its terminal: stdin is a terminal and tfenv's
/// process group is the terminal's foreground group. A read from the background stops
/// tfenv (SIGTTIN) again after every SIGCONT, so that no signal but SIGKILL could end it:
/// a run in the background (`tfenv deploy dev &`, under `timeout`) is non-interactive.
/// A terminal that is not tfenv's controlling terminal has no foreground to leave.
pub fn terminal_in_foreground() -> bool {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    stdin.is_terminal()
        && nix::unistd::tcgetpgrp(&stdin)
            .ok()
            .is_none_or(|group| group == nix::unistd::getpgrp())
}

/// One line from the terminal (cooked mode: the terminal edits it, Enter ends it), or
/// `None` at the end of input or when tfenv is moved to the background while it waits
/// (Ctrl-Z, then `bg`): it polls rather than blocks in a read, and reads only in the
/// foreground.
fn read_line_in_foreground() -> Option<String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    loop {
        if !terminal_in_foreground() {
            crate::output::stderr_line(
                "tfenv is in the background of the terminal: it cannot read an answer",
            );
            return None;
        }
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) if !terminal_in_foreground() => continue,
            Ok(_) => break,
            Err(_) => return None,
        }
    }
    let mut line = String::new();
    match stdin.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// What is being approved.
#[derive(Clone, Debug)]
pub struct Approval {
    pub tier: Tier,
    pub env: String,
    /// The environment's other names: never accepted where its full name is typed.
    pub aliases: Vec<String>,
    /// Which project this is (`Project::describe`), shown at the production prompt.
    pub project: String,
    /// e.g. "apply this plan to", "refresh the state of".
    pub action: String,
    /// Resources the change deletes (replacements included).
    pub destroys: u64,
    /// How many of `destroys` are replaced (deleted and created again).
    pub replaces: u64,
    /// What to look at before approving with flags: "review the plan", "check the lock
    /// with `tfenv lock dev`".
    pub review: String,
}

impl Approval {
    pub fn new(
        project: &Project,
        env: &Environment,
        action: impl Into<String>,
        destroys: u64,
    ) -> Approval {
        Approval {
            tier: env.tier,
            env: env.name.clone(),
            aliases: env.aliases.clone(),
            project: project.describe(),
            action: action.into(),
            destroys,
            replaces: 0,
            review: "check what it changes".to_string(),
        }
    }

    /// How many of the resources it destroys are replaced, for the messages.
    pub fn with_replaced(mut self, replaces: u64) -> Approval {
        self.replaces = replaces.min(self.destroys);
        self
    }

    /// `2 resource(s)`, and when some are replaced `2 resource(s) (1 destroyed, 1
    /// replaced)`: the plan summary lists them apart, so the count must add up to it.
    fn destroyed(&self) -> String {
        let count = format!("{} resource(s)", self.destroys);
        match (self.destroys - self.replaces, self.replaces) {
            (_, 0) => count,
            (0, replaced) => format!("{count} ({replaced} replaced)"),
            (destroyed, replaced) => {
                format!("{count} ({destroyed} destroyed, {replaced} replaced)")
            }
        }
    }

    /// What to look at before approving with flags, as the refusal's hint says it.
    pub fn with_review(mut self, review: impl Into<String>) -> Approval {
        self.review = review.into();
        self
    }

    /// What to say when `given` is one of the environment's aliases, typed where its
    /// full name is required.
    fn alias_typed(&self, given: &str) -> Option<String> {
        self.aliases.iter().any(|a| a == given).then(|| {
            format!(
                "type the environment's full name `{}` (aliases don't count)",
                self.env
            )
        })
    }
}

/// The flags a run was given.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub yes: bool,
    pub confirm: Option<String>,
    pub allow_destroy: bool,
    pub interactive: bool,
}

/// Confirmation around a backup, in two steps: a run that cannot prompt is decided by
/// its flags before (so a refused run leaves no backup behind); a person is asked after,
/// and an interrupt while the question waits ends the run.
pub struct Gate {
    approval: Approval,
    flags: Flags,
}

impl Gate {
    pub fn new(approval: Approval, flags: Flags) -> Gate {
        Gate { approval, flags }
    }

    /// Before anything runs (init, plan): a `--confirm` that does not name the
    /// environment is refused, and so is a non-interactive run without the tier's flags.
    /// What the change destroys is not known yet: build the approval with 0 destroys;
    /// `--allow-destroy` is checked after the plan, by `check_flags`.
    pub fn check_flags_early(&self) -> Result<(), TfenvError> {
        check_confirm(&self.approval, &self.flags)?;
        self.check_flags()
    }

    /// Non-interactive runs: approved or refused by the flags alone.
    pub fn check_flags(&self) -> Result<(), TfenvError> {
        if self.flags.interactive {
            return Ok(());
        }
        approve(&self.approval, &self.flags, &TerminalPrompter)
    }

    /// Interactive runs: asks the tier's questions through `prompter` (the terminal's,
    /// or a test's scripted answers).
    pub async fn ask(
        self,
        interrupts: &crate::process::Interrupts,
        prompter: Arc<dyn Prompter>,
    ) -> anyhow::Result<()> {
        if !self.flags.interactive {
            return Ok(());
        }
        let Gate { approval, flags } = self;
        let answer =
            tokio::task::spawn_blocking(move || approve(&approval, &flags, prompter.as_ref()));
        tokio::select! {
            biased;
            answer = answer => answer.map_err(|e| anyhow::anyhow!("the confirmation prompt failed: {e}"))??,
            () = interrupts.idle_interrupt() => return Err(TfenvError::Interrupted.into()),
        }
        Ok(())
    }
}

fn refused(message: String, hint: Option<String>) -> TfenvError {
    TfenvError::Refused { message, hint }
}

/// `--confirm`, when given, must be the environment's full name, exactly.
fn check_confirm(approval: &Approval, flags: &Flags) -> Result<(), TfenvError> {
    let env = &approval.env;
    let Some(named) = flags.confirm.as_ref().filter(|named| *named != env) else {
        return Ok(());
    };
    let message = if let Some(what_to_do) = approval.alias_typed(named) {
        format!("--confirm `{named}` is an alias of `{env}`: {what_to_do}")
    } else if named.trim().eq_ignore_ascii_case(env) {
        format!(
            "--confirm `{named}` is not `{env}`: the name must match exactly, case and spaces included"
        )
    } else {
        format!("--confirm `{named}` names another environment; it must name `{env}`")
    };
    Err(refused(message, Some(format!("pass --confirm {env}"))))
}

/// Decides whether the run may proceed, asking `prompter` when the tier requires it.
pub fn approve(
    approval: &Approval,
    flags: &Flags,
    prompter: &dyn Prompter,
) -> Result<(), TfenvError> {
    let env = &approval.env;
    check_confirm(approval, flags)?;
    let production = approval.tier == Tier::Production;
    let confirmed_by_flags = flags.yes
        && (!production
            || (flags.confirm.as_deref() == Some(env.as_str())
                && (approval.destroys == 0 || flags.allow_destroy)));
    if confirmed_by_flags {
        return Ok(());
    }
    if !flags.interactive {
        let needed = if production {
            let mut flags = format!("--yes --confirm {env}");
            if approval.destroys > 0 {
                flags.push_str(" --allow-destroy");
            }
            flags
        } else {
            "--yes".to_string()
        };
        let why = if production && approval.destroys > 0 && flags.yes && flags.confirm.is_some() {
            format!(
                "this change destroys {} in production `{env}`",
                approval.destroyed()
            )
        } else {
            format!(
                "{} `{env}` needs confirmation and this run cannot prompt",
                approval.action
            )
        };
        return Err(refused(
            why,
            Some(format!(
                "{}, then pass {needed} (non-interactive: stdin is not a terminal or tfenv runs in its background, CI is set, or --non-interactive)",
                approval.review
            )),
        ));
    }
    let ask = |question: Question, expected: &str| -> Result<(), TfenvError> {
        match prompter.ask(&question) {
            Ok(Some(answer)) if answer.trim() == expected => Ok(()),
            Ok(Some(answer)) => Err(refused(
                match approval.alias_typed(answer.trim()) {
                    Some(what_to_do) if expected == env.as_str() => format!(
                        "confirmation not given (answered `{}`): {what_to_do}",
                        answer.trim()
                    ),
                    _ if answer.trim().eq_ignore_ascii_case(expected) => format!(
                        "confirmation not given (answered `{}`): type `{expected}` exactly, case included",
                        answer.trim()
                    ),
                    _ => format!("confirmation not given (answered `{}`)", answer.trim()),
                },
                Some("nothing was changed".to_string()),
            )),
            Ok(None) | Err(_) => Err(refused(
                "confirmation not given (no answer)".to_string(),
                Some("nothing was changed".to_string()),
            )),
        }
    };
    match approval.tier {
        Tier::Development => ask(
            Question::YesNo {
                prompt: format!("{} `{env}`?", capitalize(&approval.action)),
            },
            "y",
        ),
        Tier::Staging => ask(
            Question::TypeExactly {
                prompt: format!(
                    "{} staging environment `{env}`? Type `yes` to continue",
                    capitalize(&approval.action)
                ),
                expected: "yes".to_string(),
            },
            "yes",
        ),
        Tier::Production => {
            ask(
                Question::TypeExactly {
                    prompt: format!(
                        "Project {}\n{} PRODUCTION environment `{env}`? Type the environment name to continue",
                        approval.project,
                        capitalize(&approval.action)
                    ),
                    expected: env.clone(),
                },
                env,
            )?;
            if approval.destroys > 0 {
                let count = approval.destroys.to_string();
                ask(
                    Question::TypeExactly {
                        prompt: format!(
                            "This destroys {} in production. Type {count} to confirm",
                            approval.destroyed()
                        ),
                        expected: count.clone(),
                    },
                    &count,
                )?;
            }
            Ok(())
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// A prompter for tests: answers from a list (`None`: end of input) and records each
/// question; a question nobody scripted an answer for fails the test.
#[cfg(test)]
pub struct ScriptedPrompter {
    answers: std::sync::Mutex<Vec<Option<&'static str>>>,
    asked: std::sync::Mutex<Vec<Question>>,
}

#[cfg(test)]
impl ScriptedPrompter {
    pub fn new(answers: &[Option<&'static str>]) -> ScriptedPrompter {
        ScriptedPrompter {
            answers: std::sync::Mutex::new(answers.iter().rev().copied().collect()),
            asked: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn questions(&self) -> Vec<Question> {
        self.asked.lock().unwrap().clone()
    }

    pub fn asked(&self) -> usize {
        self.asked.lock().unwrap().len()
    }
}

#[cfg(test)]
impl Prompter for ScriptedPrompter {
    fn ask(&self, question: &Question) -> anyhow::Result<Option<String>> {
        self.asked.lock().unwrap().push(question.clone());
        let next = self
            .answers
            .lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| panic!("an unexpected question was asked: {question:?}"));
        Ok(next.map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::ScriptedPrompter as Answers;
    use super::*;

    fn approval(tier: Tier, destroys: u64) -> Approval {
        Approval {
            tier,
            env: match tier {
                Tier::Production => "production".into(),
                Tier::Staging => "staging".into(),
                Tier::Development => "dev".into(),
            },
            aliases: match tier {
                Tier::Production => vec!["prod".into()],
                _ => Vec::new(),
            },
            project: "`/repo` (config `tfenv.toml`)".into(),
            action: "apply this plan to".into(),
            destroys,
            replaces: 0,
            review: "review the plan".into(),
        }
    }

    fn interactive() -> Flags {
        Flags {
            interactive: true,
            ..Flags::default()
        }
    }

    #[test]
    fn each_tier_proceeds_on_the_right_answer() {
        for (tier, answers) in [
            (Tier::Development, vec![Some("y")]),
            (Tier::Staging, vec![Some("yes")]),
            (Tier::Production, vec![Some("production")]),
        ] {
            let prompter = Answers::new(&answers);
            approve(&approval(tier, 0), &interactive(), &prompter).unwrap();
            assert_eq!(prompter.asked(), 1);
        }
    }

    #[test]
    fn a_wrong_answer_or_no_answer_refuses() {
        for (tier, answer) in [
            (Tier::Development, Some("n")),
            (Tier::Development, None),
            (Tier::Staging, Some("y")),
            (Tier::Staging, None),
            (Tier::Production, Some("prod")),
            (Tier::Production, None),
        ] {
            let err =
                approve(&approval(tier, 0), &interactive(), &Answers::new(&[answer])).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::Refused, "{tier} {answer:?}");
        }
    }

    #[test]
    fn production_destroys_need_the_count_typed_too() {
        let prompter = Answers::new(&[Some("production"), Some("2")]);
        approve(&approval(Tier::Production, 2), &interactive(), &prompter).unwrap();
        assert_eq!(prompter.asked(), 2);
        let prompter = Answers::new(&[Some("production"), Some("1")]);
        assert!(approve(&approval(Tier::Production, 2), &interactive(), &prompter).is_err());
    }

    #[test]
    fn non_interactive_needs_the_tiers_flags() {
        let none = Answers::new(&[]);
        let ci = |yes, confirm: Option<&str>, allow_destroy| Flags {
            yes,
            confirm: confirm.map(str::to_string),
            allow_destroy,
            interactive: false,
        };
        assert!(
            approve(
                &approval(Tier::Development, 0),
                &ci(false, None, false),
                &none
            )
            .is_err()
        );
        approve(
            &approval(Tier::Development, 3),
            &ci(true, None, false),
            &none,
        )
        .unwrap();
        approve(&approval(Tier::Staging, 3), &ci(true, None, false), &none).unwrap();
        let err = approve(
            &approval(Tier::Production, 0),
            &ci(true, None, false),
            &none,
        )
        .unwrap_err();
        assert!(
            err.hint().unwrap().contains("--yes --confirm production"),
            "{:?}",
            err.hint()
        );
        approve(
            &approval(Tier::Production, 0),
            &ci(true, Some("production"), false),
            &none,
        )
        .unwrap();
        let err = approve(
            &approval(Tier::Production, 1),
            &ci(true, Some("production"), false),
            &none,
        )
        .unwrap_err();
        assert!(err.to_string().contains("destroys 1 resource(s)"), "{err}");
        approve(
            &approval(Tier::Production, 1),
            &ci(true, Some("production"), true),
            &none,
        )
        .unwrap();
        assert_eq!(none.asked(), 0);
    }

    #[test]
    fn the_destroy_count_says_how_many_are_replaced() {
        let ci = Flags {
            yes: true,
            confirm: Some("production".into()),
            ..Flags::default()
        };
        let err = approve(
            &approval(Tier::Production, 2).with_replaced(1),
            &ci,
            &Answers::new(&[]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this change destroys 2 resource(s) (1 destroyed, 1 replaced) in production `production`"
        );
        let err = approve(
            &approval(Tier::Production, 1).with_replaced(1),
            &ci,
            &Answers::new(&[]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("destroys 1 resource(s) (1 replaced) in production"),
            "{err}"
        );
        let prompter = Answers::new(&[Some("production"), Some("2")]);
        approve(
            &approval(Tier::Production, 2).with_replaced(1),
            &interactive(),
            &prompter,
        )
        .unwrap();
        let asked = prompter.questions();
        let Question::TypeExactly { prompt, .. } = &asked[1] else {
            panic!("the count is typed");
        };
        assert_eq!(
            prompt,
            "This destroys 2 resource(s) (1 destroyed, 1 replaced) in production. Type 2 to confirm"
        );
    }

    #[test]
    fn confirm_naming_another_environment_is_refused() {
        let flags = Flags {
            yes: true,
            confirm: Some("staging".into()),
            ..Flags::default()
        };
        let err = approve(&approval(Tier::Production, 0), &flags, &Answers::new(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("--confirm `staging` names another environment"),
            "{err}"
        );
    }

    #[test]
    fn confirm_in_another_case_or_with_spaces_says_it_must_match_exactly() {
        for named in ["PRODUCTION", " production", "production ", "Production"] {
            let flags = Flags {
                yes: true,
                confirm: Some(named.into()),
                ..Flags::default()
            };
            let err =
                approve(&approval(Tier::Production, 0), &flags, &Answers::new(&[])).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--confirm `{named}` is not `production`: the name must match exactly, case and spaces included"
                )
            );
            assert_eq!(err.hint(), Some("pass --confirm production"));
        }
        let err = approve(
            &approval(Tier::Production, 0),
            &interactive(),
            &Answers::new(&[Some("PRODUCTION")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("case included"), "{err}");
    }

    #[test]
    fn the_early_check_refuses_on_flags_alone_and_leaves_destroys_for_later() {
        let gate = |tier, flags: Flags| Gate::new(approval(tier, 0), flags);
        let ci = |yes, confirm: Option<&str>| Flags {
            yes,
            confirm: confirm.map(str::to_string),
            allow_destroy: false,
            interactive: false,
        };
        assert!(
            gate(Tier::Development, ci(false, None))
                .check_flags_early()
                .is_err()
        );
        assert!(
            gate(Tier::Production, ci(true, None))
                .check_flags_early()
                .is_err()
        );
        gate(Tier::Production, ci(true, Some("production")))
            .check_flags_early()
            .unwrap();
        // Interactive: the prompt comes later, but a wrong --confirm is refused now.
        let wrong = Flags {
            confirm: Some("staging".into()),
            ..interactive()
        };
        assert!(gate(Tier::Production, wrong).check_flags_early().is_err());
        gate(Tier::Production, interactive())
            .check_flags_early()
            .unwrap();
    }

    #[test]
    fn an_alias_is_refused_with_a_request_for_the_full_name() {
        let full_name = "type the environment's full name `production` (aliases don't count)";
        let err = approve(
            &approval(Tier::Production, 0),
            &interactive(),
            &Answers::new(&[Some("prod")]),
        )
        .unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Refused);
        assert!(err.to_string().contains(full_name), "{err}");
        assert!(err.to_string().contains("answered `prod`"), "{err}");

        let flags = Flags {
            yes: true,
            confirm: Some("prod".into()),
            ..Flags::default()
        };
        let err = approve(&approval(Tier::Production, 0), &flags, &Answers::new(&[])).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Refused);
        assert!(err.to_string().contains(full_name), "{err}");
        assert_eq!(err.hint(), Some("pass --confirm production"));
    }

    #[test]
    fn the_production_prompt_names_the_project_and_its_config() {
        let prompter = Answers::new(&[Some("production")]);
        approve(&approval(Tier::Production, 0), &interactive(), &prompter).unwrap();
        let asked = prompter.questions();
        let Question::TypeExactly { prompt, .. } = &asked[0] else {
            panic!("production asks for the name to be typed");
        };
        assert!(
            prompt.starts_with("Project `/repo` (config `tfenv.toml`)\n"),
            "{prompt}"
        );
        assert!(
            prompt.contains("PRODUCTION environment `production`"),
            "{prompt}"
        );
    }
}

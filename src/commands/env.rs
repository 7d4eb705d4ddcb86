//! `tfenv env <env>`: the shell lines that make a bare `terraform` act on an environment
//! (what switch-env.sh did), for bash/zsh, fish or PowerShell — and `--unset`, the lines
//! that undo them. The variables are the ones tfenv's own runs get (`Terraform::environment`).

use std::path::Path;

use crate::Context;
use crate::backend::Backends;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::settings::{EnvSettings, ShellSyntax};
use crate::terraform::{self, InitOptions};

/// One thing the printed lines do.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Comment(String),
    Set(String, String),
    Unset(String),
    Cd(String),
}

pub async fn env(ctx: &Context, settings: EnvSettings) -> anyhow::Result<Exit> {
    let lines = match &settings.env {
        Some(name) => environment_lines(ctx, name, settings.shell).await?,
        None => unset_lines(settings.shell),
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&document(&settings, &lines))?;
    } else {
        ctx.printer
            .result(render(settings.shell, &lines).trim_end());
    }
    Ok(Exit::Success)
}

async fn environment_lines(
    ctx: &Context,
    name: &str,
    shell: ShellSyntax,
) -> anyhow::Result<Vec<Line>> {
    let project = ctx.project()?;
    let env = project.environment(name)?.clone();
    let backend = Backends::default().resolve(&env, &project)?;
    let tf = ctx.terraform(&project).await?;
    // A bare `terraform plan` in an uninitialized data dir fails: init it now, as every
    // command does (its output goes to stderr, never into the lines).
    ctx.ensure_init(&tf, &project, &env, &backend, InitOptions::default(), None)
        .await?;
    let vars = tf.environment(&env);
    let mut lines = vec![
        Line::Comment(format!(
            "tfenv env {}: a bare `terraform` in this shell acts on `{}` ({} tier). Undo: {}",
            env.name,
            env.name,
            env.tier,
            undo_hint(shell)
        )),
        Line::Set(terraform::SHELL_MARKER.to_string(), env.name.clone()),
    ];
    for (key, value) in &vars.set {
        lines.push(Line::Set(key.clone(), text(value, key)?));
    }
    // TF_CLI_ARGS_* (removed for tfenv's own runs in a switched shell) are set below.
    lines.extend(
        vars.remove
            .iter()
            .filter(|key| !key.starts_with("TF_CLI_ARGS_"))
            .cloned()
            .map(Line::Unset),
    );
    let var_files = env
        .var_files
        .iter()
        .map(|path| {
            let flag = format!("-var-file={}", text(path.as_os_str(), "a var file")?);
            Ok(words_quote(&flag))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    for command in terraform::VAR_FILE_COMMANDS {
        let key = format!("TF_CLI_ARGS_{command}");
        if var_files.is_empty() {
            lines.push(Line::Unset(key));
        } else {
            lines.push(Line::Set(key, var_files.join(" ")));
        }
    }
    lines.push(Line::Cd(text(env.root.as_os_str(), "the root")?));
    Ok(lines)
}

/// The lines that undo `tfenv env`: the variables it sets, unset. TF_PLUGIN_CACHE_DIR
/// only when it is tfenv's own (`tfenv env` sets it only when the shell had none).
fn unset_lines(shell: ShellSyntax) -> Vec<Line> {
    let mut lines = vec![
        Line::Comment(format!(
            "tfenv env --unset: back to a plain shell (the working directory stays). Again: {}",
            match shell {
                ShellSyntax::Posix => "eval \"$(tfenv env ENV)\"",
                ShellSyntax::Fish => "tfenv env ENV --shell fish | source",
                ShellSyntax::Pwsh => "tfenv env ENV --shell pwsh | Out-String | Invoke-Expression",
            }
        )),
        Line::Unset(terraform::SHELL_MARKER.to_string()),
        Line::Unset("TF_DATA_DIR".to_string()),
        Line::Unset("TF_WORKSPACE".to_string()),
    ];
    let own_cache = std::env::var_os("TF_PLUGIN_CACHE_DIR")
        .is_some_and(|dir| Path::new(&dir).ends_with(Path::new(".terraform/tfenv/plugin-cache")));
    if own_cache {
        lines.push(Line::Unset("TF_PLUGIN_CACHE_DIR".to_string()));
    }
    lines.extend(
        terraform::VAR_FILE_COMMANDS
            .iter()
            .map(|command| Line::Unset(format!("TF_CLI_ARGS_{command}"))),
    );
    lines
}

fn undo_hint(shell: ShellSyntax) -> &'static str {
    match shell {
        ShellSyntax::Posix => "eval \"$(tfenv env --unset)\"",
        ShellSyntax::Fish => "tfenv env --unset --shell fish | source",
        ShellSyntax::Pwsh => "tfenv env --unset --shell pwsh | Out-String | Invoke-Expression",
    }
}

/// A value the lines can carry: shell lines are text.
fn text(value: &std::ffi::OsStr, what: &str) -> anyhow::Result<String> {
    value.to_str().map(str::to_string).ok_or_else(|| {
        TfenvError::config(
            format!(
                "{what} `{}` is not valid UTF-8: it cannot be written as a shell line",
                value.to_string_lossy()
            ),
            Some("rename the folder or file, or use `tfenv exec ENV -- …`, which passes paths as they are".to_string()),
        )
        .into()
    })
}

/// The lines in `shell`'s syntax, every value quoted so the shell takes it literally.
fn render(shell: ShellSyntax, lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        let rendered = match (shell, line) {
            (_, Line::Comment(text)) => format!("# {text}"),
            (ShellSyntax::Posix, Line::Set(key, value)) => {
                format!("export {key}={}", posix_quote(value))
            }
            (ShellSyntax::Posix, Line::Unset(key)) => format!("unset {key}"),
            (ShellSyntax::Posix, Line::Cd(dir)) => format!("cd -- {}", posix_quote(dir)),
            (ShellSyntax::Fish, Line::Set(key, value)) => {
                format!("set -gx {key} {}", fish_quote(value))
            }
            (ShellSyntax::Fish, Line::Unset(key)) => format!("set -e {key}"),
            (ShellSyntax::Fish, Line::Cd(dir)) => format!("cd {}", fish_quote(dir)),
            (ShellSyntax::Pwsh, Line::Set(key, value)) => {
                format!("$env:{key} = {}", pwsh_quote(value))
            }
            (ShellSyntax::Pwsh, Line::Unset(key)) => {
                format!("Remove-Item -Path Env:{key} -ErrorAction SilentlyContinue")
            }
            (ShellSyntax::Pwsh, Line::Cd(dir)) => {
                format!("Set-Location -LiteralPath {}", pwsh_quote(dir))
            }
        };
        out.push_str(&rendered);
        out.push('\n');
    }
    out
}

/// `--output json`: what the lines set and unset, for tools that set variables
/// themselves (direnv, an IDE).
fn document(settings: &EnvSettings, lines: &[Line]) -> serde_json::Value {
    let mut set = serde_json::Map::new();
    let mut unset = Vec::new();
    let mut cd = None;
    for line in lines {
        match line {
            Line::Set(key, value) => {
                set.insert(key.clone(), serde_json::Value::String(value.clone()));
            }
            Line::Unset(key) => unset.push(key.clone()),
            Line::Cd(dir) => cd = Some(dir.clone()),
            Line::Comment(_) => {}
        }
    }
    serde_json::json!({
        "environment": settings.env,
        "set": set,
        "unset": unset,
        "cd": cd,
    })
}

/// Single quotes for sh, bash and zsh (a `'` inside: `'\''`). terraform reads the
/// TF_CLI_ARGS_* values with the same rules, so the var files are quoted this way twice.
fn posix_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// One word of a TF_CLI_ARGS_* value: terraform splits it like a POSIX shell, so a word
/// with anything but plain path characters is single-quoted for it.
fn words_quote(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain && !word.is_empty() {
        word.to_string()
    } else {
        posix_quote(word)
    }
}

/// Single quotes for fish: `\` and `'` are the two characters escaped inside them.
fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Single quotes for PowerShell: a `'` inside is doubled; nothing else is special.
fn pwsh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Line> {
        vec![
            Line::Comment("tfenv env dev".to_string()),
            Line::Set(
                "TF_DATA_DIR".to_string(),
                "/p/it's here/.terraform".to_string(),
            ),
            Line::Set(
                "TF_CLI_ARGS_plan".to_string(),
                format!(
                    "-var-file=/p/dev.tfvars {}",
                    words_quote("-var-file=/p/a b/dev's.tfvars")
                ),
            ),
            Line::Unset("TF_WORKSPACE".to_string()),
            Line::Cd("/p/it's here".to_string()),
        ]
    }

    #[test]
    fn lines_for_each_shell() {
        insta::assert_snapshot!("env_bash", render(ShellSyntax::Posix, &sample()));
        insta::assert_snapshot!("env_fish", render(ShellSyntax::Fish, &sample()));
        insta::assert_snapshot!("env_pwsh", render(ShellSyntax::Pwsh, &sample()));
    }
}

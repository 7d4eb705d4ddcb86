//! Flags + environment → one resolved `Settings`. Nothing below this module sees clap.
//! May use: cli, project, output, error.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::error::TfenvError;
use crate::output::Format;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Where tfenv acts from (`-C` applied).
    pub cwd: PathBuf,
    pub config: Option<PathBuf>,
    pub format: Format,
    /// 0 normal, 1 debug (-v), 2 trace and full error details (-vv).
    pub verbosity: u8,
    pub quiet: bool,
    pub color_stdout: bool,
    pub color_stderr: bool,
    /// Prompts may be shown: stdin is a terminal, no `--non-interactive`, no `CI`.
    pub interactive: bool,
    pub terraform: Option<PathBuf>,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Settings> {
        let here = std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
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
        let no_color =
            global.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        Ok(Settings {
            config: global.config.as_ref().map(|path| cwd.join(path)),
            cwd,
            format: match global.output {
                OutputFormat::Human => Format::Human,
                OutputFormat::Json => Format::Json,
            },
            verbosity: global.verbose,
            quiet: global.quiet,
            color_stdout: !no_color && std::io::stdout().is_terminal(),
            color_stderr: !no_color && std::io::stderr().is_terminal(),
            interactive: !global.non_interactive && !in_ci && std::io::stdin().is_terminal(),
            terraform: global.terraform.clone(),
        })
    }
}

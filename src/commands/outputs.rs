//! `tfenv outputs`: live from the state (terraform output -json) or the cached
//! outputs.json; sensitive values redacted unless asked for.

use serde_json::Value;

use crate::Context;
use crate::artifacts::outputs;
use crate::backend::Backends;
use crate::error::TfenvError;
use crate::exit::Exit;
use crate::output;
use crate::settings::OutputsSettings;
use crate::terraform::InitOptions;

pub async fn outputs(ctx: &Context, settings: OutputsSettings) -> anyhow::Result<Exit> {
    let project = ctx.project()?;
    let env = project.environment(&settings.env)?;
    let values = if settings.cached {
        let Some(values) = outputs::read(&env.artifacts_dir)? else {
            return Err(TfenvError::config(
                format!(
                    "`{}` has no cached outputs (state/{}/outputs.json)",
                    env.name, env.name
                ),
                Some(format!(
                    "deploy it first, or drop --cached to read the live state: `tfenv outputs {}`",
                    env.name
                )),
            )
            .into());
        };
        let redacted_on_disk = values
            .values()
            .any(|o| o.get("value").and_then(Value::as_str) == Some(outputs::REDACTED));
        if settings.include_sensitive && redacted_on_disk {
            ctx.printer.warn(
                "outputs.json was written redacted: drop --cached to read the sensitive values from the state",
            );
        }
        // A deploy with --include-sensitive wrote them in clear: never print them unasked.
        outputs::redact(&values, settings.include_sensitive)
    } else {
        let backend = Backends::default().resolve(env, &project)?;
        let tf = ctx.terraform(&project).await?;
        ctx.ensure_init(&tf, &project, env, &backend, InitOptions::default(), None)
            .await?;
        outputs::redact(&tf.outputs(env).await?, settings.include_sensitive)
    };
    if ctx.printer.is_json() {
        ctx.printer.json(&values)?;
        return Ok(Exit::Success);
    }
    let Some(map) = values.as_object().filter(|m| !m.is_empty()) else {
        ctx.printer
            .result(&format!("`{}` has no outputs", env.name));
        return Ok(Exit::Success);
    };
    let mut rows = vec![vec!["NAME".to_string(), "VALUE".to_string()]];
    for (name, output) in map {
        let value = match output.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "-".to_string(),
        };
        rows.push(vec![name.clone(), value]);
    }
    ctx.printer.result(output::table(&rows).trim_end());
    Ok(Exit::Success)
}

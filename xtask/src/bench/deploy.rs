//! The deploy section, on a copy of the demo (tfenv.toml, environments/,
//! examples/quickstart): each timed deploy applies one output change, made by flipping
//! `beta_ui` in the environment's var file before the run (`cargo xtask flip-var`).
//! Side by side, in one run: `tfenv deploy dev`, the seed scripts' flow, terraform's
//! floor, `tfenv deploy production`, and `tfenv plan` / `terraform plan` with no changes.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

use super::backups::find_key;
use super::measure::{Cmd, Plan, Samples};
use super::report::{Section, Table, Target};
use super::{Ctx, argv, say};

const SEED_RATIO: f64 = 1.0;
const FLOOR_RATIO: f64 = 1.5;
const PRODUCTION_RATIO: f64 = 1.3;
const PLAN_RATIO: f64 = 1.3;

/// Toggles `true` ↔ `false` on the line of `beta_ui` in a var file: the one change
/// each timed deploy applies (the `enabled_flags` output changes with it).
pub fn flip_var(text: &str) -> anyhow::Result<String> {
    let mut flipped = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.contains("beta_ui") && !flipped {
                if line.contains("true") {
                    flipped = true;
                    return line.replace("true", "false");
                }
                if line.contains("false") {
                    flipped = true;
                    return line.replace("false", "true");
                }
            }
            line.to_string()
        })
        .collect();
    ensure!(flipped, "no `beta_ui = true|false` line to flip");
    Ok(lines.join("\n") + "\n")
}

pub fn flip_var_file(path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let flipped = flip_var(&text).with_context(|| format!("in `{}`", path.display()))?;
    std::fs::write(path, flipped).with_context(|| format!("writing `{}`", path.display()))
}

struct Demo {
    dir: PathBuf,
    module: PathBuf,
}

impl Demo {
    fn var_file(&self, env: &str) -> PathBuf {
        self.dir.join("environments").join(format!("{env}.tfvars"))
    }
}

/// A copy of the demo, committed to git (production wants a clean tree; the flips make
/// it dirty, hence `--allow-dirty` below). production.tfvars gets a `feature_flags`
/// line equal to common.tfvars' so that it has a `beta_ui` to flip.
fn copy_demo(ctx: &Ctx) -> anyhow::Result<Demo> {
    let dir = ctx.tmp.join("demo");
    let module = dir.join("examples/quickstart");
    std::fs::create_dir_all(&module)?;
    std::fs::create_dir_all(dir.join("environments"))?;
    std::fs::create_dir_all(dir.join("state"))?;
    std::fs::copy(ctx.repo.join("tfenv.toml"), dir.join("tfenv.toml"))?;
    std::fs::copy(
        ctx.repo.join("examples/quickstart/main.tf"),
        module.join("main.tf"),
    )?;
    for entry in std::fs::read_dir(ctx.repo.join("environments"))? {
        let entry = entry?;
        std::fs::copy(
            entry.path(),
            dir.join("environments").join(entry.file_name()),
        )?;
    }
    let prod = dir.join("environments/production.tfvars");
    let mut text = std::fs::read_to_string(&prod)?;
    text.push_str(
        "# Added by cargo xtask bench: a flag each timed run flips.\n\
         feature_flags = {\n  audit_log = true\n  beta_ui   = false\n}\n",
    );
    std::fs::write(&prod, text)?;
    std::fs::write(
        dir.join(".gitignore"),
        "/state/*\n!/state/README.md\n.terraform/\n",
    )?;
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@localhost",
                "-C",
            ])
            .arg(&dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()?;
        ensure!(
            status.success(),
            "git {} failed in the demo copy",
            args.join(" ")
        );
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "demo"])?;
    Ok(Demo { dir, module })
}

fn median_ratio(a: &Samples, b: &Samples) -> f64 {
    a.median() / b.median()
}

fn ratio_target(what: String, a: &Samples, b: &Samples, limit: f64) -> Target {
    let ratio = median_ratio(a, b);
    let met = ratio <= limit;
    Target {
        what,
        met,
        figures: format!(
            "{:.1} ms vs {:.1} ms: {ratio:.2}× {} {limit}×",
            a.median(),
            b.median(),
            if met { "≤" } else { ">" }
        ),
    }
}

pub fn deploy(ctx: &Ctx) -> anyhow::Result<Section> {
    let demo = copy_demo(ctx)?;
    let tf = ctx.terraform.display().to_string();
    let proj = demo.dir.display().to_string();
    let module = demo.module.display().to_string();
    let scratch = ctx.tmp.join("deploy-scratch");
    std::fs::create_dir_all(&scratch)?;
    let scratch_s = scratch.display().to_string();
    let dev_vars = format!(
        "-var-file='{proj}/environments/common.tfvars' -var-file='{proj}/environments/dev.tfvars'"
    );

    // The seed scripts' deploy-dev.sh: switch the one data dir to dev's backend, plan,
    // apply that plan, write the outputs.
    let seed = scratch.join("seed-deploy.sh");
    std::fs::write(
        &seed,
        format!(
            "# The seed scripts' deploy of dev (cargo xtask bench)\nset -e\ncd '{module}'\n\
             '{tf}' init -input=false -reconfigure -backend-config='{proj}/environments/dev.backend.conf' >/dev/null\n\
             '{tf}' plan -input=false -out='{scratch_s}/seed.plan' {dev_vars} >/dev/null\n\
             '{tf}' apply -input=false '{scratch_s}/seed.plan' >/dev/null\n\
             '{tf}' output -json >'{scratch_s}/seed-outputs.json'\n"
        ),
    )?;
    // terraform's floor: what no wrapper can beat, in tfenv's own (initialized) data dir.
    let floor = scratch.join("floor-deploy.sh");
    std::fs::write(
        &floor,
        format!(
            "# terraform's floor for a deploy of dev: plan -out + apply (cargo xtask bench)\nset -e\ncd '{module}'\n\
             export TF_DATA_DIR='{module}/.terraform/tfenv/dev'\n\
             '{tf}' plan -input=false -out='{scratch_s}/floor.plan' {dev_vars} >/dev/null\n\
             '{tf}' apply -input=false '{scratch_s}/floor.plan' >/dev/null\n"
        ),
    )?;

    let tfenv = |args: &[&str]| {
        let mut v = ctx.tfenv_argv(&demo.dir);
        v.extend(argv(args));
        v
    };
    let flip = |env: &str| {
        argv([
            ctx.xtask_exe.as_os_str().to_owned(),
            "flip-var".into(),
            demo.var_file(env).into(),
        ])
    };
    let dev_deploy = tfenv(&["deploy", "dev", "--yes"]);
    let prod_deploy = tfenv(&[
        "deploy",
        "production",
        "--yes",
        "--confirm",
        "production",
        "--allow-dirty",
    ]);
    let tfenv_plan = tfenv(&["plan", "dev", "--detailed-exitcode"]);
    let tf_plan = argv([
        OsString::from("env"),
        format!("TF_DATA_DIR={module}/.terraform/tfenv/dev").into(),
        ctx.terraform.clone().into(),
        format!("-chdir={module}").into(),
        "plan".into(),
        "-detailed-exitcode".into(),
        "-input=false".into(),
        format!("-var-file={proj}/environments/common.tfvars").into(),
        format!("-var-file={proj}/environments/dev.tfvars").into(),
    ]);
    let seed_cmd = argv([OsString::from("bash"), seed.clone().into()]);
    let floor_cmd = argv([OsString::from("bash"), floor.clone().into()]);

    // First deploys (they create the states), then one checked run of each: a deploy
    // applies exactly one output change, production takes its backup, plan sees none.
    say("deploy: first deploys of dev and production on a copy of the demo");
    ctx.run_ok(&ctx.env, &dev_deploy, None)?;
    ctx.run_ok(&ctx.env, &prod_deploy, None)?;
    let json = |cmd: &[OsString]| -> anyhow::Result<serde_json::Value> {
        let mut with_json = cmd[..1].to_vec();
        with_json.extend(argv(["--output", "json"]));
        with_json.extend_from_slice(&cmd[1..]);
        let out = ctx.run_ok(&ctx.env, &with_json, None)?;
        serde_json::from_slice(&out.stdout).context("tfenv printed no JSON")
    };
    let changed_one_output = |doc: &serde_json::Value, what: &str| -> anyhow::Result<()> {
        let plan = find_key(doc, "plan").cloned().unwrap_or_default();
        let n = |k: &str| plan[k].as_u64().unwrap_or(u64::MAX);
        ensure!(
            doc["result"] == "applied"
                && n("outputs") == 1
                && n("add") + n("change") + n("destroy") + n("replace") == 0,
            "{what} did not apply exactly one output change: {doc}"
        );
        Ok(())
    };
    flip_var_file(&demo.var_file("dev"))?;
    changed_one_output(&json(&dev_deploy)?, "tfenv deploy dev")?;
    flip_var_file(&demo.var_file("production"))?;
    let prod = json(&prod_deploy)?;
    changed_one_output(&prod, "tfenv deploy production")?;
    ensure!(
        prod["backup"].is_object(),
        "tfenv deploy production took no backup: {prod}"
    );
    flip_var_file(&demo.var_file("dev"))?;
    ctx.run_ok(&ctx.env, &seed_cmd, None)?;
    flip_var_file(&demo.var_file("dev"))?;
    ctx.run_ok(&ctx.env, &floor_cmd, None)?;
    let plan = json(&tfenv_plan)?;
    ensure!(
        plan["result"] == "no-changes",
        "tfenv plan dev found changes where there are none: {plan}"
    );
    ctx.run_ok(&ctx.env, &tf_plan, None)?;

    // What tfenv runs for a dev deploy, from its debug log.
    flip_var_file(&demo.var_file("dev"))?;
    let mut verbose = dev_deploy.clone();
    verbose.insert(1, "-v".into());
    let out = ctx.run_ok(&ctx.env, &verbose, None)?;
    let processes = started_processes(&String::from_utf8_lossy(&out.stderr));

    say(&format!(
        "deploy: {} runs of each command, side by side",
        ctx.deploy_runs
    ));
    let samples = ctx.timer.measure(
        &ctx.env,
        &scratch,
        &[
            Cmd::new("tfenv deploy dev --yes", dev_deploy).prepare(flip("dev")),
            Cmd::new("seed scripts' deploy of dev", seed_cmd).prepare(flip("dev")),
            Cmd::new("terraform's floor (plan -out + apply)", floor_cmd).prepare(flip("dev")),
            Cmd::new("tfenv deploy production", prod_deploy).prepare(flip("production")),
            Cmd::new("tfenv plan dev (no changes)", tfenv_plan),
            Cmd::new("terraform plan -detailed-exitcode", tf_plan),
        ],
        Plan::alternating(ctx.deploy_runs),
    )?;
    let [dev, seed_s, floor_s, prod_s, plan_s, tf_plan_s] = &samples[..] else {
        bail!("six commands measured, not {}", samples.len());
    };
    let backups = std::fs::read_dir(demo.dir.join("state/production/backups"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("terraform.tfstate.")
                })
                .count()
        })
        .unwrap_or(0);
    let state_bytes = std::fs::metadata(demo.dir.join("state/production/terraform.tfstate"))
        .map_or(0, |m| m.len());
    say(&format!(
        "deploy dev {:.1} ms, seed flow {:.1} ms, floor {:.1} ms, production {:.1} ms, plan {:.1} ms vs terraform plan {:.1} ms",
        dev.median(),
        seed_s.median(),
        floor_s.median(),
        prod_s.median(),
        plan_s.median(),
        tf_plan_s.median()
    ));

    let targets = vec![
        ratio_target(
            format!(
                "`tfenv deploy dev` (one output change) at most {SEED_RATIO}× the seed scripts' flow"
            ),
            dev,
            seed_s,
            SEED_RATIO,
        ),
        ratio_target(
            format!(
                "`tfenv deploy dev` at most {FLOOR_RATIO}× terraform's floor (`plan -out` + `apply`)"
            ),
            dev,
            floor_s,
            FLOOR_RATIO,
        ),
        ratio_target(
            format!(
                "`tfenv deploy production` (verified backup) at most {PRODUCTION_RATIO}× the dev deploy"
            ),
            prod_s,
            dev,
            PRODUCTION_RATIO,
        ),
        ratio_target(
            format!(
                "`tfenv plan` with no changes at most {PLAN_RATIO}× `terraform plan -detailed-exitcode`"
            ),
            plan_s,
            tf_plan_s,
            PLAN_RATIO,
        ),
    ];
    let mut table = Table::new([
        "command",
        "median, ms",
        "min, ms",
        "CPU (user + sys), ms",
        "ratio",
    ]);
    let rows: [(&str, &Samples, String); 6] = [
        ("`tfenv deploy dev --yes`", dev, "1.00".into()),
        (
            "seed scripts: `init -reconfigure`, `plan -out`, `apply`, `output -json`",
            seed_s,
            format!("dev deploy ÷ this: {:.2}", median_ratio(dev, seed_s)),
        ),
        (
            "terraform's floor: `plan -out` + `apply` (initialized)",
            floor_s,
            format!("dev deploy ÷ this: {:.2}", median_ratio(dev, floor_s)),
        ),
        (
            "`tfenv deploy production --yes --confirm production --allow-dirty`",
            prod_s,
            format!("this ÷ dev deploy: {:.2}", median_ratio(prod_s, dev)),
        ),
        (
            "`tfenv plan dev --detailed-exitcode` (no changes)",
            plan_s,
            format!(
                "this ÷ terraform plan: {:.2}",
                median_ratio(plan_s, tf_plan_s)
            ),
        ),
        (
            "`terraform plan -detailed-exitcode` (no changes)",
            tf_plan_s,
            String::new(),
        ),
    ];
    for (name, s, ratio) in rows {
        table.row([
            name.to_string(),
            format!("{:.1}", s.median()),
            format!("{:.1}", s.min()),
            format!("{:.0}", s.cpu_median()),
            ratio,
        ]);
    }
    let mut targets_text = String::new();
    for t in &targets {
        let _ = writeln!(targets_text, "- {} — {}.", t.what, t.verdict());
    }
    let process_list = if processes.is_empty() {
        "(its debug log named no process starts)".to_string()
    } else {
        processes
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let body = format!(
        "## Deploys: tfenv against the seed scripts and terraform's floor

**Method.** A copy of the demo (`tfenv.toml`, `environments/`, `examples/quickstart`:
the local backend, no provider), committed to git, with dev and production deployed
once. Before each timed deploy the harness flips `beta_ui` in that environment's var
file (`environments/dev.tfvars`, or a `feature_flags` line added to
`production.tfvars`), so every run applies exactly one output change (`enabled_flags`;
checked once through `--output json`: `outputs: 1`, nothing added, changed or
destroyed). Median of {runs} runs each, the six commands side by side in one run, each
round in a rotated order (timing: {timer}; the flip is hyperfine's `--prepare`, not
timed):

- `tfenv deploy dev --yes`: the whole pipeline (no backup for development).
- The seed scripts' flow (`deploy-dev.sh`, as a bash script): `terraform init -reconfigure
  -backend-config=environments/dev.backend.conf`, `plan -out`, `apply` of that plan,
  `output -json > file`, in the root module's one data dir.
- terraform's floor: `plan -out` + `apply` of that plan in tfenv's data dir for dev
  (already initialized): what any wrapper of a saved-plan deploy must run.
- `tfenv deploy production --yes --confirm production --allow-dirty` (the var-file
  flips make the tree dirty): the same change with production's backup, re-read and
  checked against its SHA-256 before the apply; {backups} backups of a {state_bytes}-byte
  state by the end.
- With no change left: `tfenv plan dev --detailed-exitcode` against `TF_DATA_DIR=...
  terraform plan -detailed-exitcode` with the same var files (both exit 0).

For the record, the processes one `tfenv deploy dev` started (`-v` debug log, in order):
{process_list}.

{table}
**Targets** (issue 9):

{targets_text}
**Reading the figures.**

- Every command here is a handful of terraform processes on a module with no
  provider, so the times are terraform's start-up and configuration loading, once per
  process: a deploy is as fast as the fewest terraform processes it can run one after
  another. The floor runs two; the seed flow four (one a fast `init`); tfenv's dev
  deploy the ones listed above.
- tfenv reads itself what it used to ask terraform: the binary's version is remembered
  between runs (`.terraform/tfenv/terraform-version.json`), the outputs come from the
  local state file, and a plan terraform says has no changes (`-detailed-exitcode`)
  needs no `show -json`. What does not depend on each other runs at the same time: the
  version check and git, and for production the backup's `state pull` and `show -json`.
- On a busy machine (see the CPU used by other processes above) running two processes
  at once saves less: the production deploy's `state pull` then costs close to its
  CPU time.
",
        runs = ctx.deploy_runs,
        timer = ctx.timer.label(),
        state_bytes = state_bytes,
        table = table.render(),
    );
    Ok(Section {
        load_label: "deploys".into(),
        targets,
        body,
    })
}

/// The programs tfenv's debug log says it started, with their first argument(s):
/// `terraform plan`, `git rev-parse`, ….
fn started_processes(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains("DEBUG"))
        .filter_map(|line| {
            let rest = line.split_once("running ")?.1;
            let mut words = rest.split_whitespace();
            let program = Path::new(words.next()?)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            let sub = words.find(|w| !w.starts_with('-') && !w.contains('/') && !w.contains('='));
            Some(match sub {
                Some(sub) => format!("{program} {sub}"),
                None => program,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_var_toggles_beta_ui_both_ways() {
        let dev =
            "environment = \"dev\"\nfeature_flags = {\n  audit_log = true\n  beta_ui   = true\n}\n";
        let once = flip_var(dev).unwrap();
        assert!(once.contains("beta_ui   = false"));
        assert!(once.contains("audit_log = true"));
        assert_eq!(flip_var(&once).unwrap(), dev);
        assert!(flip_var("environment = \"dev\"\n").is_err());
    }

    #[test]
    fn started_processes_come_from_the_debug_log() {
        let log = "DEBUG running /usr/local/bin/terraform version -json cwd=/p\n\
                   [dev] running plan\n\
                   DEBUG running git -C /p status --porcelain cwd=/p\n\
                   DEBUG `terraform` exited 0\n";
        assert_eq!(started_processes(log), ["terraform version", "git status"]);
    }
}

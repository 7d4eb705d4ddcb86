//! The figures as Markdown: a table helper, targets with their verdicts, the machine,
//! and the whole of docs/performance.md.

use std::process::Command;

use super::Ctx;

/// A Markdown table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    pub fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// One target: what it asks, whether it is met, and the figures that say so.
pub struct Target {
    pub what: String,
    pub met: bool,
    /// e.g. "mean 4.6 ms < 20 ms" / "mean 24.6 ms ≥ 20 ms"
    pub figures: String,
}

impl Target {
    pub fn verdict(&self) -> String {
        if self.met {
            format!("**met** ({})", self.figures)
        } else {
            format!("**not met** ({})", self.figures)
        }
    }
}

/// What a section hands back: its targets, its part of the page, and the label of its
/// line in "CPU used by other processes".
pub struct Section {
    pub load_label: String,
    pub targets: Vec<Target>,
    pub body: String,
}

/// The machine the figures come from.
pub struct Machine {
    pub lines: Vec<String>,
}

impl Machine {
    pub fn read(ctx: &Ctx, commit: &str, loads: &[String]) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kib| kib.parse::<f64>().ok())
            })
            .map_or("?".to_string(), |kib| {
                format!("{:.0} GiB", kib / 1_048_576.0)
            });
        let disk = output(Command::new("df").arg("-PT").arg("--").arg(&ctx.tmp))
            .and_then(|text| {
                let line = text.lines().nth(1)?.to_string();
                let f: Vec<&str> = line.split_whitespace().collect();
                Some(format!("{} on {}", f.get(1)?, f.first()?))
            })
            .unwrap_or_else(|| "?".to_string());
        let tf_version = output(Command::new(&ctx.terraform).arg("version"))
            .and_then(|t| t.lines().next().map(str::to_string))
            .unwrap_or_default();
        let tfenv_version = output(Command::new(&ctx.tfenv).arg("--version"))
            .and_then(|t| t.lines().next().map(str::to_string))
            .unwrap_or_default();
        let when = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
        Machine {
            lines: vec![
                format!(
                    "- CPUs (nproc): {}; CPU model: {model}; memory: {mem}",
                    ctx.cpus
                ),
                format!("- Disk of the temp folder (backups, states): {disk}"),
                format!(
                    "- Terraform: {} (`{}`)",
                    tf_version.trim_start_matches("Terraform "),
                    ctx.terraform.display()
                ),
                format!(
                    "- tfenv: {} (commit {commit}), {}",
                    tfenv_version.trim_start_matches("tfenv "),
                    ctx.build
                ),
                format!("- Timing: {}", ctx.timer.label()),
                format!("- Date: {when}"),
                format!(
                    "- CPU used by other processes while measuring, in % of the machine (above 10 %, the\n  figures of that section are noisy): {}",
                    loads.join(", ")
                ),
            ],
        }
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Page {
    /// What is printed: machine, targets, sections.
    pub body: String,
    /// docs/performance.md: the same with an introduction and how to reproduce it.
    pub doc: String,
}

pub fn render(machine: &Machine, sections: &[Section]) -> Page {
    let mut body = String::from("## Machine\n\n");
    for line in &machine.lines {
        body.push_str(line);
        body.push('\n');
    }
    body.push_str("\n## Targets\n\n");
    body.push_str(&targets_table(sections));
    for section in sections {
        body.push('\n');
        body.push_str(&section.body);
    }
    let mut doc = String::new();
    doc.push_str(INTRO);
    doc.push_str(&body);
    doc.push_str(REPRODUCING);
    Page { body, doc }
}

pub fn targets_table(sections: &[Section]) -> String {
    let mut table = Table::new(["target", "result"]);
    for target in sections.iter().flat_map(|s| &s.targets) {
        table.row([target.what.clone(), target.verdict()]);
    }
    table.render()
}

/// Seconds with two decimals, from ms.
pub fn secs(ms: f64) -> String {
    format!("{:.2}", ms / 1000.0)
}

/// "1.7× faster" / "2.0× slower": `a` against `b`.
pub fn speed(a: f64, b: f64) -> String {
    if a <= b {
        format!("{:.1}× faster", b / a)
    } else {
        format!("{:.1}× slower", a / b)
    }
}

const INTRO: &str = "# Performance

These figures come from `cargo xtask bench --write-doc`, which rewrites this page;
run it again after a change that could matter. To rerun some sections and print
their figures without touching this page: `cargo xtask bench --only backup,lock`
(sections: `startup`, `status`, `backup`, `verify`, `lock`, `s3-status`, `deploy`,
`plan-all`, `drift-all`; `s3` = `lock,s3-status`).

What it measures, each on projects it generates in a temp folder:

- **Start-up**: `tfenv envs` on 50 environments in the demo's layout
  (`tfenv.toml`, `environments/<env>.backend.conf` + `.tfvars`, the local backend,
  the root module of `examples/quickstart`): the fixed cost of every command.
- **`tfenv status`** on 1, 10 and 50 of those environments, against the same
  number of `terraform state pull` calls one after another.
- **Backups** (local backend): `tfenv backup` of a 200 MB state — time, tfenv's own
  peak memory, throughput — against `terraform state pull > file`; and
  `tfenv verify` over 1000 backups, cold and warm.
- **Locks** (s3 + DynamoDB on a local moto server, 50 environments each applied
  once): `tfenv lock` against the aws CLI read it made before it used the AWS SDK
  (`aws dynamodb get-item --consistent-read`) and against the `terraform plan
  -lock-timeout=0s` scripts use, and `tfenv lock --all` over the 50 against one.
- **`tfenv status` on s3** (the same 50 environments, DynamoDB-locked, each with a
  real state in the bucket): against the seed scripts' sequential loop of
  `terraform state pull`, wall and CPU time.
- **Deploys** (a copy of the demo, one output change per run): `tfenv deploy dev`
  against the seed scripts' flow and against terraform's own floor; a production
  deploy with its verified backup against the dev deploy; `tfenv plan` with no
  changes against `terraform plan -detailed-exitcode`.
- **Many environments at once**: `tfenv plan --all` over 12 environments in the demo's
  layout against the same 12 plans as `tfenv plan <env>` one after another; the same
  for `tfenv drift --all` against 12 `tfenv drift <env>`.

Each section says how it measures, the figures, whether its targets are met, and how
to read them. Times are wall-clock times of the whole command.

";

const REPRODUCING: &str = "
## Reproducing

```sh
cargo xtask bench                          # print the figures
cargo xtask bench --write-doc              # and rewrite this page
cargo xtask bench --only status,deploy     # some sections only (this page is left alone)
cargo xtask bench --only plan-all --tfenv target/debug/tfenv   # a tfenv already built, no release build
cargo xtask bench --help                   # --runs, --reps, --deploy-runs, --terraform, --tfenv
cargo bench --bench hot_paths              # micro-benchmarks of the hot paths (divan)
```

The harness is `xtask/` (`cargo xtask` is an alias in `.cargo/config.toml`). It needs
cargo, Terraform ≥ 1.6 (the s3 settings of the `lock` and `s3-status` sections; the
other sections run with ≥ 1.0), python3 for the moto server that `scripts/test.sh
--install-only` installs and for the aws CLI the s3 sections measure against (the one
`scripts/test.sh` installs next to moto, or, if it installs none, one the harness
installs itself with `pip install awscli` into `.cache/bench-tools/awscli`), and about
3 GB in `$TMPDIR`. It works in a temp folder it
removes and stops the moto server it started. It times with hyperfine
(`apt-get install hyperfine` or `cargo install hyperfine --locked`) when it is on
`PATH`, and otherwise with its own timer, which the Machine section then says; the
backup section always uses its own runs, because it reads tfenv's memory from `/proc`
while tfenv runs.

The micro-benchmarks (`benches/hot_paths.rs`) time tfenv's own code without any
process: reading a state's header (streamed and from memory), checking a backup
against its manifest line (SHA-256 + header), and summarizing `terraform show -json`
of a plan. `cargo test` runs each of them once as a test.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_renders_header_rule_and_rows() {
        let mut table = Table::new(["N", "ms"]);
        table.row(["1", "6.3"]).row(["50", "9.9"]);
        assert_eq!(
            table.render(),
            "| N | ms |\n| --- | --- |\n| 1 | 6.3 |\n| 50 | 9.9 |\n"
        );
    }

    #[test]
    fn targets_table_lists_each_verdict() {
        let section = Section {
            load_label: "x".into(),
            targets: vec![
                Target {
                    what: "fast".into(),
                    met: true,
                    figures: "1 < 2".into(),
                },
                Target {
                    what: "faster".into(),
                    met: false,
                    figures: "3 > 2".into(),
                },
            ],
            body: String::new(),
        };
        assert_eq!(
            targets_table(&[section]),
            "| target | result |\n| --- | --- |\n| fast | **met** (1 < 2) |\n| faster | **not met** (3 > 2) |\n"
        );
    }

    #[test]
    fn speed_says_faster_or_slower() {
        assert_eq!(speed(1.0, 2.0), "2.0× faster");
        assert_eq!(speed(3.0, 2.0), "1.5× slower");
    }
}

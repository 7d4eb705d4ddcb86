//! How the harness measures: hyperfine (`--export-json`) or its own timer for batches of
//! commands, a /proc-polled run for peak memory of one process alone, CPU time of
//! children (getrusage), and how much CPU the rest of the machine used meanwhile.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::resource::{UsageWho, getrusage};

use super::{Env, say, shell_quote, show_argv};

/// One command of a batch; `prepare` runs before each of its timed runs, untimed.
pub struct Cmd {
    pub name: String,
    pub argv: Vec<OsString>,
    pub prepare: Option<Vec<OsString>>,
}

impl Cmd {
    pub fn new(name: impl Into<String>, argv: Vec<OsString>) -> Self {
        Cmd {
            name: name.into(),
            argv,
            prepare: None,
        }
    }

    pub fn prepare(mut self, argv: Vec<OsString>) -> Self {
        self.prepare = Some(argv);
        self
    }
}

/// The runs of one command: wall time and CPU time (user + sys of it and its children).
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub wall_ms: Vec<f64>,
    pub cpu_ms: Vec<f64>,
}

impl Samples {
    pub fn median(&self) -> f64 {
        median(&self.wall_ms)
    }
    pub fn min(&self) -> f64 {
        self.wall_ms.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub fn mean(&self) -> f64 {
        mean(&self.wall_ms)
    }
    pub fn cpu_median(&self) -> f64 {
        median(&self.cpu_ms)
    }
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// How many runs, and how they are spread: `rounds` times, each command `per_round`
/// runs in turn (the order rotating), so that load changing on the machine hits every
/// command alike. `warmup` untimed runs of each command come first.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub warmup: usize,
    pub rounds: usize,
    pub per_round: usize,
}

impl Plan {
    /// `runs` runs of each command, one command after another each round.
    pub fn alternating(runs: usize) -> Self {
        Plan {
            warmup: 0,
            rounds: runs,
            per_round: 1,
        }
    }
}

pub enum Timer {
    Hyperfine { exe: PathBuf, version: String },
    Own,
}

impl Timer {
    pub fn detect(disabled: bool) -> Timer {
        if disabled {
            return Timer::Own;
        }
        let Some(exe) = super::find_on_path("hyperfine") else {
            say(
                "warning: hyperfine is not installed (`apt-get install hyperfine` or \
                 `cargo install hyperfine --locked`): timing with the harness's own timer",
            );
            return Timer::Own;
        };
        match Command::new(&exe).arg("--version").output() {
            Ok(out) if out.status.success() => Timer::Hyperfine {
                version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
                exe,
            },
            _ => {
                say("warning: `hyperfine --version` failed: timing with the harness's own timer");
                Timer::Own
            }
        }
    }

    /// For the page: "hyperfine 1.15.0" or what replaced it.
    pub fn label(&self) -> String {
        match self {
            Timer::Hyperfine { version, .. } => format!("{version} (`--export-json`, `-N`)"),
            Timer::Own => "the harness's own timer (std::time::Instant around each \
                           process, CPU from getrusage; hyperfine not installed)"
                .to_string(),
        }
    }

    /// Runs every command as `plan` says; each must exit 0. Returns one `Samples` per
    /// command, in the order given.
    pub fn measure(
        &self,
        env: &Env,
        scratch: &Path,
        cmds: &[Cmd],
        plan: Plan,
    ) -> anyhow::Result<Vec<Samples>> {
        let mut samples = vec![Samples::default(); cmds.len()];
        for round in 0..plan.rounds {
            let order: Vec<usize> = (0..cmds.len()).map(|i| (i + round) % cmds.len()).collect();
            let warmup = if round == 0 { plan.warmup } else { 0 };
            match self {
                Timer::Hyperfine { exe, .. } => hyperfine_round(
                    exe,
                    env,
                    scratch,
                    cmds,
                    &order,
                    warmup,
                    plan.per_round,
                    &mut samples,
                )?,
                Timer::Own => {
                    for &i in &order {
                        let cmd = &cmds[i];
                        for _ in 0..warmup {
                            if let Some(prepare) = &cmd.prepare {
                                run_quiet(env, prepare, scratch)?;
                            }
                            run_quiet(env, &cmd.argv, scratch)?;
                        }
                        for _ in 0..plan.per_round {
                            if let Some(prepare) = &cmd.prepare {
                                run_quiet(env, prepare, scratch)?;
                            }
                            let cpu0 = children_cpu_ms();
                            let t0 = Instant::now();
                            run_quiet(env, &cmd.argv, scratch)?;
                            let wall = t0.elapsed().as_secs_f64() * 1000.0;
                            samples[i].wall_ms.push(wall);
                            samples[i].cpu_ms.push(children_cpu_ms() - cpu0);
                        }
                    }
                }
            }
        }
        Ok(samples)
    }
}

#[allow(clippy::too_many_arguments)]
fn hyperfine_round(
    exe: &Path,
    env: &Env,
    scratch: &Path,
    cmds: &[Cmd],
    order: &[usize],
    warmup: usize,
    runs: usize,
    samples: &mut [Samples],
) -> anyhow::Result<()> {
    let json = scratch.join("hyperfine.json");
    let mut cmd = Command::new(exe);
    cmd.args(["-N", "--style", "none", "--runs"])
        .arg(runs.to_string())
        .arg("--warmup")
        .arg(warmup.to_string())
        .arg("--export-json")
        .arg(&json);
    let with_prepare = order.iter().any(|&i| cmds[i].prepare.is_some());
    for &i in order {
        if with_prepare {
            let prepare = cmds[i]
                .prepare
                .clone()
                .unwrap_or_else(|| vec![OsString::from("true")]);
            cmd.arg("--prepare").arg(show_argv(&prepare));
        }
    }
    for &i in order {
        cmd.arg("--command-name").arg(&cmds[i].name);
    }
    for &i in order {
        let words: Vec<String> = cmds[i]
            .argv
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect();
        cmd.arg(words.join(" "));
    }
    cmd.current_dir(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    env.apply(&mut cmd);
    let out = cmd.output().context("running hyperfine")?;
    if !out.status.success() {
        let names: Vec<&str> = order.iter().map(|&i| cmds[i].name.as_str()).collect();
        bail!(
            "hyperfine failed on one of: {}\n{}",
            names.join("; "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).context("reading hyperfine's --export-json")?)
            .context("parsing hyperfine's --export-json")?;
    let results = doc["results"]
        .as_array()
        .context("hyperfine's JSON has no `results`")?;
    ensure!(
        results.len() == order.len(),
        "hyperfine reported {} results for {} commands",
        results.len(),
        order.len()
    );
    for (result, &i) in results.iter().zip(order) {
        let times: Vec<f64> = result["times"]
            .as_array()
            .context("hyperfine's JSON has no `times`")?
            .iter()
            .filter_map(|t| t.as_f64())
            .map(|t| t * 1000.0)
            .collect();
        // hyperfine reports CPU time as a mean over the runs.
        let cpu = (result["user"].as_f64().unwrap_or(0.0)
            + result["system"].as_f64().unwrap_or(0.0))
            * 1000.0;
        samples[i]
            .cpu_ms
            .extend(std::iter::repeat_n(cpu, times.len()));
        samples[i].wall_ms.extend(times);
    }
    Ok(())
}

/// Runs `argv` with stdout discarded (as hyperfine does); an error with its stderr when
/// it does not exit 0.
pub fn run_quiet(env: &Env, argv: &[OsString], cwd: &Path) -> anyhow::Result<()> {
    let err_path = cwd.join(".run-quiet.err");
    let mut cmd = env.command(argv);
    cmd.current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(File::create(&err_path)?);
    let status = cmd
        .status()
        .with_context(|| format!("starting `{}`", show_argv(argv)))?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}):\n{}",
            show_argv(argv),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    }
    Ok(())
}

/// CPU time (user + sys) of every child this process has waited for so far, and of
/// their waited-for descendants, in ms.
pub fn children_cpu_ms() -> f64 {
    cpu_ms(UsageWho::RUSAGE_CHILDREN)
}

fn cpu_ms(who: UsageWho) -> f64 {
    getrusage(who).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            tv.tv_sec() as f64 * 1000.0 + tv.tv_usec() as f64 / 1000.0
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// Times one command, in ms, with its CPU time; it must exit 0. Stdout and stderr go
/// to `out` / `err`.
pub fn time_once(
    env: &Env,
    argv: &[OsString],
    cwd: &Path,
    out: &Path,
    err: &Path,
) -> anyhow::Result<(f64, f64)> {
    let mut cmd = env.command(argv);
    cmd.current_dir(cwd)
        .stdout(File::create(out)?)
        .stderr(File::create(err)?);
    let cpu0 = children_cpu_ms();
    let t0 = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("starting `{}`", show_argv(argv)))?;
    let wall = t0.elapsed().as_secs_f64() * 1000.0;
    let cpu = children_cpu_ms() - cpu0;
    if !status.success() {
        bail!(
            "`{}` failed ({status}):\n{}{}",
            show_argv(argv),
            std::fs::read_to_string(out).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        );
    }
    Ok((wall, cpu))
}

/// What a /proc-polled run saw.
#[derive(Clone, Debug, Default)]
pub struct Polled {
    pub success: bool,
    pub wall_ms: f64,
    /// VmHWM of the process alone (its children not counted), last value seen, KiB.
    pub hwm_kib: u64,
    /// The largest VmHWM seen of its direct children, KiB (0: none seen).
    pub child_hwm_kib: u64,
    /// user + sys of the process alone, last seen, in s.
    pub own_cpu_s: f64,
    /// user + sys of it and every descendant (getrusage of children), in s.
    pub total_cpu_s: f64,
    /// When a child of it was last seen, ms from the start.
    pub child_end_ms: Option<f64>,
    /// When its stdout file was first seen non-empty, ms from the start.
    pub first_out_ms: Option<f64>,
}

/// Runs `argv` with stdout into `out` and stderr into `err`, reading /proc/<pid>/status
/// every ~10 ms until it exits: its own peak RSS (VmHWM; /usr/bin/time and wait4 would
/// report the largest of it and its descendants instead), its CPU time, its children's
/// peak RSS, and when its output starts and its children end.
pub fn run_polled(
    env: &Env,
    argv: &[OsString],
    cwd: &Path,
    out: &Path,
    err: &Path,
) -> anyhow::Result<Polled> {
    let hz = clock_ticks();
    let mut cmd = env.command(argv);
    cmd.current_dir(cwd)
        .stdout(File::create(out)?)
        .stderr(File::create(err)?);
    let mut polled = Polled::default();
    let cpu0 = children_cpu_ms();
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{}`", show_argv(argv)))?;
    let pid = child.id();
    let status_path = PathBuf::from(format!("/proc/{pid}/status"));
    let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
    let children_path = PathBuf::from(format!("/proc/{pid}/task/{pid}/children"));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = t0.elapsed().as_secs_f64() * 1000.0;
        if polled.first_out_ms.is_none() && std::fs::metadata(out).is_ok_and(|m| m.len() > 0) {
            polled.first_out_ms = Some(now);
        }
        if let Some(hwm) = vm_hwm_kib(&status_path) {
            polled.hwm_kib = polled.hwm_kib.max(hwm);
        }
        if let Ok(stat) = std::fs::read_to_string(&stat_path) {
            // utime and stime: fields 14 and 15, counted after the ")" ending the name.
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
                let ticks = u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0);
                polled.own_cpu_s = ticks as f64 / hz;
            }
        }
        let kids = std::fs::read_to_string(&children_path).unwrap_or_default();
        if !kids.trim().is_empty() {
            polled.child_end_ms = Some(now);
        }
        for kid in kids.split_whitespace() {
            if let Some(hwm) = vm_hwm_kib(Path::new(&format!("/proc/{kid}/status"))) {
                polled.child_hwm_kib = polled.child_hwm_kib.max(hwm);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    polled.wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    polled.total_cpu_s = (children_cpu_ms() - cpu0) / 1000.0;
    polled.success = status.success();
    Ok(polled)
}

fn vm_hwm_kib(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of /proc's times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU used by *other* processes while a section runs, in % of the machine: the busy
/// time in /proc/stat less this process's own and its waited-for children's.
pub struct LoadMeter {
    start: Option<(f64, f64)>,
    own_ms: f64,
}

impl LoadMeter {
    pub fn start() -> Self {
        LoadMeter {
            start: proc_stat_ms(),
            own_ms: cpu_ms(UsageWho::RUSAGE_SELF) + children_cpu_ms(),
        }
    }

    /// "tfenv status: 12%" (or "?" without /proc/stat), with a warning above 10 %.
    pub fn finish(&self, label: &str) -> String {
        let own = cpu_ms(UsageWho::RUSAGE_SELF) + children_cpu_ms() - self.own_ms;
        let pct = match (self.start, proc_stat_ms()) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                let other = (busy1 - busy0) - own;
                Some((100.0 * other.max(0.0) / (total1 - total0)).round() as u64)
            }
            _ => None,
        };
        match pct {
            Some(pct) => {
                if pct > 10 {
                    say(&format!(
                        "warning: other processes used {pct}% of the CPUs during {label}: the figures are noisy"
                    ));
                }
                format!("{label}: {pct}%")
            }
            None => format!("{label}: ?"),
        }
    }
}

/// (busy, total) CPU time of the whole machine from /proc/stat, in ms.
fn proc_stat_ms() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    if v.len() < 8 {
        return None;
    }
    // user nice system idle iowait irq softirq steal
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    let total: f64 = v.iter().sum();
    let ms = 1000.0 / clock_ticks();
    Some((busy * ms, total * ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}

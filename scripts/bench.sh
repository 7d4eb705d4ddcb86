#!/usr/bin/env bash
# tfenv's performance benchmark. Builds the release binary, generates a
# throw-away project with 50 environments (the demo's layout: local backend,
# environments/<env>.backend.conf + .tfvars, the root module of
# examples/quickstart), and measures:
#
#   1. start-up cost: `tfenv envs` on the 50 environments, many runs
#      (hyperfine when it is installed, else a timed bash loop);
#   2. `tfenv status env01..envN` for N = 1, 10, 50, against the sequential
#      `terraform state pull` of the same N environments one after another,
#      the way a bash script does it.
#
# Prints the figures as markdown; --write-doc also rewrites docs/performance.md.
# Run `scripts/bench.sh --help` for the options.
set -euo pipefail

prog='bench.sh'
readonly ENV_COUNT=50
readonly STATUS_SIZES=(1 10 50)
readonly ENVS_TARGET_MS=20
readonly STATUS_TARGET_RATIO='0.3333' # status at most 1/3 of the sequential sum

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	cat <<'EOF'
Usage: scripts/bench.sh [--write-doc] [--runs N] [--reps N] [--terraform BIN]

Builds `cargo build --release`, generates a 50-environment project in a temp
folder (removed on exit), and measures:

  - `tfenv envs` on 50 environments (start-up cost): mean and min of --runs runs
  - `tfenv status env01..envN` for N = 1, 10, 50 (median of --reps runs), next to
    the sequential `terraform state pull` of the same N environments

Options:
  --write-doc      also rewrite docs/performance.md with the figures
  --runs N         runs of `tfenv envs` (default 50)
  --reps N         runs of each status / sequential measurement (default 5)
  --terraform BIN  the terraform to use (default: `terraform` on PATH)
  -h, --help       show this help

Needs cargo, terraform (>= 1.0) and ~2 minutes on a 2-core machine.
EOF
}

# --- arguments ---------------------------------------------------------------
write_doc=0
envs_runs=50
reps=5
tf_arg=''
while [[ $# -gt 0 ]]; do
	case "$1" in
	--write-doc) write_doc=1 ;;
	--runs)
		[[ $# -ge 2 ]] || die '--runs needs a number'
		envs_runs="$2"
		shift
		;;
	--reps)
		[[ $# -ge 2 ]] || die '--reps needs a number'
		reps="$2"
		shift
		;;
	--terraform)
		[[ $# -ge 2 ]] || die '--terraform needs a path'
		tf_arg="$2"
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument \`$1\` (see --help)" ;;
	esac
	shift
done
[[ "$envs_runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number, not \`$envs_runs\`"
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive number, not \`$reps\`"

# --- environment -------------------------------------------------------------
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/.." && pwd -P)"
cd -- "$repo_root"
exec </dev/null

if [[ -n "$tf_arg" ]]; then
	terraform_bin="$tf_arg"
else
	terraform_bin="$(command -v terraform 2>/dev/null)" ||
		die 'terraform not found on PATH; pass --terraform BIN'
fi
case "$terraform_bin" in
/*) ;;
*) terraform_bin="$PWD/$terraform_bin" ;;
esac
[[ -x "$terraform_bin" ]] || die "$terraform_bin is not an executable file"
command -v cargo >/dev/null 2>&1 || die 'cargo not found'

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tfenv-bench.XXXXXX")"
cleanup() { rm -rf -- "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Terraform without the checkpoint call home, without the caller's TF_* settings.
printf 'disable_checkpoint = true\n' >"$tmp/terraformrc"
export TF_CLI_CONFIG_FILE="$tmp/terraformrc"
export CHECKPOINT_DISABLE=1
unset TF_DATA_DIR TF_WORKSPACE TF_LOG TF_LOG_PATH TF_CLI_ARGS \
	TF_CLI_ARGS_init TF_CLI_ARGS_apply TF_CLI_ARGS_state TFENV_LOG
export NO_COLOR=1

# Wall-clock time in nanoseconds: $EPOCHREALTIME (bash >= 5, no fork) when there
# is one, else date +%s%N.
if [[ -n "${EPOCHREALTIME:-}" ]]; then
	clock='EPOCHREALTIME'
	now_ns() {
		local t="${EPOCHREALTIME/[.,]/}"
		printf '%s' "$((10#$t * 1000))"
	}
else
	clock='date +%s%N'
	now_ns() { date +%s%N; }
fi

# ms between two now_ns readings, one decimal.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
# mean and min of the numbers on stdin: "MEAN MIN"
mean_min() { awk 'NR == 1 || $1 < min { min = $1 } { s += $1 } END { printf "%.1f %.1f\n", s / NR, min }'; }
# median and min of the numbers on stdin: "MEDIAN MIN"
median_min() {
	sort -n | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f\n", m, v[1] }'
}

# Other load on the machine skews every figure. other_load_begin / other_load_end
# WHAT measure how much CPU *other* processes used meanwhile, in % of the machine:
# the busy time in /proc/stat less this script's own and its children's (`times`).
# Both run in this shell (never in $(...)), since `times` only sees its own shell.
hz="$(getconf CLK_TCK 2>/dev/null || echo 100)"
other_load_seen=()
load_before=""
load_mark() { # VAR: "busy total own", all in clock ticks
	local busy_total own
	busy_total="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat 2>/dev/null || true)"
	times >"$tmp/times"
	own="$(awk -v hz="$hz" '{ for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } }
		END { printf "%.0f", s * hz }' "$tmp/times")"
	printf -v "$1" '%s %s' "${busy_total:-0 0}" "$own"
}
other_load_begin() { load_mark load_before; }
other_load_end() { # WHAT
	local after pct
	load_mark after
	pct="$(awk -v a="$load_before" -v b="$after" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[2] - x[2]; o = (y[1] - x[1]) - (y[3] - x[3]);
		if (t <= 0) { print "?"; exit } printf "%.0f", (o > 0 ? 100 * o / t : 0) }')"
	other_load_seen+=("$pct")
	if [[ "$pct" =~ ^[0-9]+$ && "$pct" -gt 10 ]]; then
		say "warning: other processes used $pct% of the CPUs during $1: the figures are noisy"
	fi
}

# --- build -------------------------------------------------------------------
say 'cargo build --release'
cargo build --release >&2
tfenv="$repo_root/target/release/tfenv"
[[ -x "$tfenv" ]] || die "the build made no $tfenv"
# What was built, read right after the build: the tree may change while this runs.
commit="$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$repo_root" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
	commit="$commit, with uncommitted changes in src/"
fi

# --- the 50-environment project ----------------------------------------------
proj="$tmp/project"
module="$proj/examples/quickstart"
mkdir -p -- "$module" "$proj/environments" "$proj/state"
cp -- "$repo_root/examples/quickstart/main.tf" "$module/main.tf"
cat >"$proj/environments/common.tfvars" <<'EOF'
feature_flags = {
  audit_log = true
  beta_ui   = false
}
EOF
envs=()
{
	printf '# Generated by scripts/bench.sh: %d environments in the demo'"'"'s layout.\n\n' "$ENV_COUNT"
	printf '[project]\nroot = "examples/quickstart"\nrequired_version = ">= 1.0"\nstate_dir = "state"\n'
	for i in $(seq 1 "$ENV_COUNT"); do
		env="$(printf 'env%02d' "$i")"
		envs+=("$env")
		printf '\n[environments.%s]\n' "$env"
		printf 'backend_config = "environments/%s.backend.conf"\n' "$env"
		printf 'var_files = ["environments/common.tfvars", "environments/%s.tfvars"]\n' "$env"
		printf '# Local backend; the path is relative to the root module, examples/quickstart.\npath = "../../state/%s/terraform.tfstate"\n' \
			"$env" >"$proj/environments/$env.backend.conf"
		printf 'environment    = "%s"\ninstance_count = %d\n' \
			"$env" $((i % 3 + 1)) >"$proj/environments/$env.tfvars"
	done
} >"$proj/tfenv.toml"
# A real project lives in git with state and data dirs ignored; status checks that.
printf '/state/*\n.terraform/\n' >"$proj/.gitignore"
if command -v git >/dev/null 2>&1; then
	git -C "$proj" init -q
fi

tfenv_run() { "$tfenv" -C "$proj" --terraform "$terraform_bin" --non-interactive "$@"; }

# --- 1. start-up: tfenv envs ---------------------------------------------------
out="$tmp/envs.out"
tfenv_run envs >"$out" 2>&1 || die "tfenv envs failed:
$(cat -- "$out")"
listed="$(grep -c '^env[0-9]' "$out" || true)"
[[ "$listed" -eq "$ENV_COUNT" ]] ||
	die "tfenv envs listed $listed environments, not $ENV_COUNT:
$(cat -- "$out")"

other_load_begin
if command -v hyperfine >/dev/null 2>&1; then
	envs_method="$(hyperfine --version | awk 'NR == 1'), $envs_runs runs after 3 warm-up runs"
	say "tfenv envs: $envs_method"
	hyperfine --shell=none --warmup 3 --runs "$envs_runs" --style none \
		--export-csv "$tmp/envs.csv" --command-name 'tfenv envs' \
		"$(printf '%q ' "$tfenv" -C "$proj" --terraform "$terraform_bin" --non-interactive envs)" >&2
	# Columns by name, in seconds: `mean`, `min` (hyperfine 1.x) or
	# `time_wall_clock_mean`, `time_wall_clock_min` (newer).
	read -r envs_mean envs_min < <(awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		NR == 2 {
			m = ("mean" in col) ? col["mean"] : col["time_wall_clock_mean"]
			n = ("min" in col) ? col["min"] : col["time_wall_clock_min"]
			if (!m || !n) exit 1
			printf "%.1f %.1f\n", $m * 1000, $n * 1000
		}' "$tmp/envs.csv")
	[[ -n "${envs_min:-}" ]] || die "cannot read hyperfine's CSV:
$(cat -- "$tmp/envs.csv")"
else
	envs_method="bash loop timed with $clock, $envs_runs runs after 3 warm-up runs (hyperfine not installed)"
	say "tfenv envs: $envs_method"
	for _ in 1 2 3; do tfenv_run envs >/dev/null 2>&1; done
	: >"$tmp/envs.ms"
	for _ in $(seq 1 "$envs_runs"); do
		t0="$(now_ns)"
		tfenv_run envs >/dev/null 2>&1
		t1="$(now_ns)"
		printf '%s\n' "$(ms_between "$t0" "$t1")" >>"$tmp/envs.ms"
	done
	read -r envs_mean envs_min < <(mean_min <"$tmp/envs.ms")
fi
other_load_end 'tfenv envs'
say "tfenv envs: mean $envs_mean ms, min $envs_min ms"

# --- 2. init every environment, apply each once --------------------------------
say "tfenv init --all ($ENV_COUNT environments)"
t0="$(now_ns)"
tfenv_run init --all >"$tmp/init.out" 2>&1 || die "tfenv init --all failed:
$(cat -- "$tmp/init.out")"
init_ms="$(ms_between "$t0" "$(now_ns)")"
say "tfenv init --all: $(awk -v ms="$init_ms" 'BEGIN { printf "%.1f", ms / 1000 }') s"

say "terraform apply in each environment (state for status to read)"
t0="$(now_ns)"
for env in "${envs[@]}"; do
	(
		cd -- "$module"
		TF_DATA_DIR="$module/.terraform/tfenv/$env" "$terraform_bin" apply \
			-auto-approve -input=false -no-color \
			-var-file="$proj/environments/common.tfvars" \
			-var-file="$proj/environments/$env.tfvars"
	) >"$tmp/apply.out" 2>&1 || die "terraform apply for $env failed:
$(cat -- "$tmp/apply.out")"
	[[ -s "$proj/state/$env/terraform.tfstate" ]] ||
		die "terraform apply for $env wrote no state/$env/terraform.tfstate"
done
state_bytes="$(cat -- "$proj"/state/env*/terraform.tfstate | wc -c)"
state_avg="$(awk -v b="$state_bytes" -v n="$ENV_COUNT" 'BEGIN { printf "%.0f", b / n }')"
say "applies: $(awk -v ms="$(ms_between "$t0" "$(now_ns)")" 'BEGIN { printf "%.1f", ms / 1000 }') s"

# --- 3. tfenv status vs sequential state pull ----------------------------------
jobs_default=$(($(nproc) * 2))

# status_once N: time of one `tfenv status env01..envN`, in ms; it must exit 0.
status_once() {
	local n="$1" t0 t1 rc=0
	t0="$(now_ns)"
	tfenv_run status "${envs[@]:0:n}" >"$tmp/status.out" 2>"$tmp/status.err" || rc=$?
	t1="$(now_ns)"
	if [[ $rc -ne 0 ]]; then
		die "tfenv status (${n} environments) exited $rc, not 0. stdout:
$(cat -- "$tmp/status.out")
stderr:
$(cat -- "$tmp/status.err")"
	fi
	if [[ -s "$tmp/status.err" ]]; then
		say "warning: tfenv status printed on stderr:"
		sed 's/^/    /' "$tmp/status.err" >&2
	fi
	ms_between "$t0" "$t1"
}

# sequential_once N: time of `terraform state pull` for env01..envN one after
# another, in ms.
sequential_once() {
	local n="$1" t0 t1
	t0="$(now_ns)"
	(
		cd -- "$module"
		for env in "${envs[@]:0:n}"; do
			TF_DATA_DIR="$module/.terraform/tfenv/$env" "$terraform_bin" state pull >/dev/null 2>"$tmp/pull.err" || {
				printf '%s: error: terraform state pull for %s failed:\n' "$prog" "$env" >&2
				cat -- "$tmp/pull.err" >&2
				exit 1
			}
		done
	) || exit 1
	t1="$(now_ns)"
	ms_between "$t0" "$t1"
}

# Check once that status reads every state (what the comparison assumes), see how
# (`state_source`: "terraform" = state pull, "file" = the local state file read
# directly), and warm the caches.
json="$tmp/status.json"
tfenv_run --output json status "${envs[@]}" >"$json" 2>"$tmp/status.err" || die "tfenv status --output json exited $?, not 0:
$(cat -- "$json" "$tmp/status.err")"
count_in_json() { grep -o "$1" "$json" | wc -l || true; }
states_read="$(count_in_json '"lineage": *"')"
read_via_tf="$(count_in_json '"state_source": *"terraform"')"
read_via_file="$(count_in_json '"state_source": *"file"')"
[[ "$states_read" -eq "$ENV_COUNT" ]] ||
	die "tfenv status read $states_read of $ENV_COUNT states:
$(cat -- "$json")"
say "tfenv status reads the states: $read_via_tf with terraform state pull, $read_via_file from the file"
sequential_once "$ENV_COUNT" >/dev/null

# The CPU time (user + sys) the sequential state pulls of all environments take:
# with C cores, no concurrency brings them under CPU time / C.
TIMEFORMAT='%3U %3S'
{ time sequential_once "$ENV_COUNT" >/dev/null; } 2>"$tmp/cpu.txt" || die "$(cat -- "$tmp/cpu.txt")"
unset TIMEFORMAT
seq_cpu_ms="$(awk 'END { printf "%.0f", ($1 + $2) * 1000 }' "$tmp/cpu.txt")"
say "sequential state pull of $ENV_COUNT environments: $seq_cpu_ms ms of CPU time"

other_load_begin
status_rows=()
status_ratio_50=''
for n in "${STATUS_SIZES[@]}"; do
	: >"$tmp/status.ms"
	: >"$tmp/seq.ms"
	for _ in $(seq 1 "$reps"); do
		# (assignments, so that a failure inside stops the script under set -e)
		ms="$(status_once "$n")"
		printf '%s\n' "$ms" >>"$tmp/status.ms"
		ms="$(sequential_once "$n")"
		printf '%s\n' "$ms" >>"$tmp/seq.ms"
	done
	read -r st_med st_min < <(median_min <"$tmp/status.ms")
	read -r seq_med seq_min < <(median_min <"$tmp/seq.ms")
	ratio="$(awk -v a="$st_med" -v b="$seq_med" 'BEGIN { printf "%.2f", a / b }')"
	# "1.7× faster" / "2.0× slower"
	speed="$(awk -v a="$st_med" -v b="$seq_med" 'BEGIN {
		if (a <= b) printf "%.1f× faster", b / a; else printf "%.1f× slower", a / b }')"
	say "N=$n: tfenv status $st_med ms (min $st_min), sequential $seq_med ms (min $seq_min), ratio $ratio (medians)"
	status_rows+=("| $n | $st_med | $seq_med | $ratio ($speed) |")
	if [[ "$n" -eq "$ENV_COUNT" ]]; then
		status_ratio_50="$(awk -v a="$st_med" -v b="$seq_med" 'BEGIN { printf "%.4f", a / b }')"
		status_ratio_50_shown="$ratio"
		status_50="$st_med"
		seq_med_50="$seq_med"
	elif [[ "$n" -eq 1 ]]; then
		status_1="$st_med"
		seq_1="$seq_med"
	fi
done
other_load_end 'tfenv status'

# --- 4. report -----------------------------------------------------------------
cpus="$(nproc)"
cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
[[ -n "$cpu_model" ]] || cpu_model="$(uname -m)"
tf_version="$("$terraform_bin" version 2>/dev/null | awk 'NR == 1')"
tfenv_version="$("$tfenv" --version 2>/dev/null | awk 'NR == 1')"
when="$(date -u '+%Y-%m-%d %H:%M UTC')"

if awk -v m="$envs_mean" -v t="$ENVS_TARGET_MS" 'BEGIN { exit !(m < t) }'; then
	envs_verdict="**met** (mean $envs_mean ms < $ENVS_TARGET_MS ms)"
else
	envs_verdict="**not met** (mean $envs_mean ms ≥ $ENVS_TARGET_MS ms)"
fi
if awk -v r="$status_ratio_50" -v t="$STATUS_TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
	status_verdict="**met** (ratio $status_ratio_50_shown ≤ 0.33)"
else
	status_verdict="**not met** (ratio $status_ratio_50_shown > 0.33)"
fi
if [[ "$cpus" -ne 2 ]]; then
	status_verdict="$status_verdict — note: the target is set for 2 cores, this machine has $cpus"
fi
# What the CPUs allow: the sequential pulls' CPU time spread over every core.
cpu_floor_ms="$(awk -v c="$seq_cpu_ms" -v n="$cpus" 'BEGIN { printf "%.0f", c / n }')"
best_ratio="$(awk -v f="$cpu_floor_ms" -v s="$seq_med_50" 'BEGIN { printf "%.2f", f / s }')"
fixed_ms="$(awk -v a="$status_1" -v b="$seq_1" 'BEGIN { printf "%.0f", a - b }')"
pull_cpu_ms="$(awk -v c="$seq_cpu_ms" -v n="$ENV_COUNT" 'BEGIN { printf "%.0f", c / n }')"
pull_ms="$(awk -v s="$seq_med_50" -v n="$ENV_COUNT" 'BEGIN { printf "%.0f", s / n }')"
load_shown="$(printf '%s%%, ' "${other_load_seen[@]}")"
load_shown="${load_shown%, }"

results() {
	cat <<EOF
## Machine

- CPUs (nproc): $cpus
- CPU model: $cpu_model
- Terraform: ${tf_version#Terraform } (\`$terraform_bin\`)
- tfenv: ${tfenv_version#tfenv } (commit $commit), \`cargo build --release\`
- Date: $when
- CPU used by other processes while measuring (tfenv envs, tfenv status): $load_shown
  of the machine (above 10 %, the figures are noisy)

## Targets

| target | result |
| --- | --- |
| \`tfenv envs\` on $ENV_COUNT environments under $ENVS_TARGET_MS ms | $envs_verdict |
| \`tfenv status\` of $ENV_COUNT environments at most 1/3 of the sequential \`state pull\` sum (2-core machine) | $status_verdict |

## Start-up: \`tfenv envs\` on $ENV_COUNT environments

Method: $envs_method.

| runs | mean, ms | min, ms |
| --- | --- | --- |
| $envs_runs | $envs_mean | $envs_min |

## \`tfenv status\` vs. sequential \`terraform state pull\`

Median of $reps runs each. \`tfenv status envNN...\` with the default \`-j\`
(CPUs × 2 = $jobs_default here); the sequential column runs
\`TF_DATA_DIR=... terraform state pull > /dev/null\` for the same environments one
after another in \`examples/quickstart\`. Ratio = status ÷ sequential (lower is better).

| N | tfenv status, ms | sequential state pull, ms | ratio |
| --- | --- | --- | --- |
EOF
	printf '%s\n' "${status_rows[@]}"
	cat <<EOF

How \`tfenv status\` read the $ENV_COUNT states: $read_via_tf with \`terraform state pull\`,
$read_via_file straight from the local state file. The $ENV_COUNT sequential state pulls use
$seq_cpu_ms ms of CPU time (user + sys), about $pull_cpu_ms ms each.
EOF
	if [[ "$read_via_tf" -gt 0 ]]; then
		cat <<EOF
On $cpus cores, running the pulls concurrently cannot take less than about
$cpu_floor_ms ms, a ratio of $best_ratio at best.
EOF
	fi
}

say 'done'
printf '\n'
results

if [[ $write_doc -eq 1 ]]; then
	mkdir -p -- "$repo_root/docs"
	doc_tmp="$tmp/performance.md"
	{
		cat <<EOF
# Performance

These figures come from \`scripts/bench.sh --write-doc\`, which rewrites this page;
run it again after a change that could matter (start-up, project loading, status).

What it measures, on a generated project with $ENV_COUNT environments (env01..env$ENV_COUNT) in
the demo's layout: \`tfenv.toml\`, \`environments/<env>.backend.conf\` + \`.tfvars\`, the
local backend and the root module of \`examples/quickstart\`:

- **Start-up cost**: \`tfenv envs\`, which reads \`tfenv.toml\` and the HCL files and
  runs no terraform process. This is the fixed cost of every tfenv command.
- **\`tfenv status\`**: after \`tfenv init --all\` and one \`terraform apply\` per
  environment (so each has a real state: the module's outputs only, $state_avg bytes on
  average), \`tfenv status env01..envN\` for N = 1, 10 and $ENV_COUNT, which reads the
  state of each environment, several at once (\`-j\`). Next to it, the same N
  \`terraform state pull\` calls one after another, the way a bash script does it.
  Times are wall-clock times of the whole command.

EOF
		results
		cat <<EOF

## Reading the figures

EOF
		if [[ "$read_via_tf" -gt 0 ]]; then
			cat <<EOF
- The fixed cost of \`tfenv status\`: with N = 1 it takes $status_1 ms against $seq_1 ms
  for a single \`terraform state pull\`. The difference, about $fixed_ms ms, is tfenv's
  own start-up plus the processes it runs once per call (a \`terraform version -json\`
  check before any state pull, and a \`git check-ignore\`).
- Beyond that, \`status\` is terraform's time: each \`terraform state pull\` starts a
  Go binary and loads the configuration, which costs far more than tfenv's own work.
  Those processes are CPU-bound, so the gain from running them concurrently is capped
  by the number of cores (a ratio of $best_ratio here), whatever \`-j\` is.
EOF
			if awk -v b="$best_ratio" -v t="$STATUS_TARGET_RATIO" 'BEGIN { exit !(b > t) }'; then
				cat <<EOF
  On this machine the 1/3 target is out of reach of concurrency alone: it needs
  \`status\` to start fewer terraform processes than one per environment.
EOF
			fi
		else
			cat <<EOF
- With the local backend, \`tfenv status\` reads each state straight from its file,
  the same file \`terraform state pull\` would read, and starts no terraform process
  at all (its only child process is one \`git check-ignore\`). Its time is tfenv's
  own: $status_1 ms for 1 environment, $status_50 ms for $ENV_COUNT.
- The sequential script pays for one terraform process per environment: about
  $pull_ms ms of wall time ($pull_cpu_ms ms of CPU) each for these small states.
- Remote backends (s3, azurerm, gcs) still go through \`terraform state pull\`, several
  at once (\`-j\`); this benchmark does not measure them.
EOF
		fi
		cat <<EOF

## Reproducing

\`\`\`sh
scripts/bench.sh              # print the figures
scripts/bench.sh --write-doc  # and rewrite this page
scripts/bench.sh --help       # --runs, --reps, --terraform
\`\`\`

It needs cargo and Terraform ≥ 1.0, works in a temp folder it removes, and uses
hyperfine for the start-up figure when it is installed.
EOF
	} >"$doc_tmp"
	mv -- "$doc_tmp" "$repo_root/docs/performance.md"
	say "wrote docs/performance.md"
fi

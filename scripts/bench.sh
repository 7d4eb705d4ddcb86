#!/usr/bin/env bash
# tfenv's performance benchmark. Builds the release binary, generates throw-away
# projects in a temp folder, and measures, section by section:
#
#   startup  `tfenv envs` on a 50-environment project in the demo's layout (local
#            backend, environments/<env>.backend.conf + .tfvars, the root module of
#            examples/quickstart), many runs (hyperfine when it is installed, else a
#            timed bash loop);
#   status   `tfenv status env01..envN` for N = 1, 10, 50 on that project, against
#            the sequential `terraform state pull` of the same N environments, the
#            way a bash script does it;
#   backup   `tfenv backup` of a generated ~200 MB state (local backend): wall time,
#            tfenv's own peak RSS (VmHWM of the tfenv process alone, polled from
#            /proc) and throughput, next to a plain `terraform state pull > file`;
#   verify   `tfenv verify` over 1,000 generated backups of ~1 MB (1 GB), cold
#            (page cache dropped for those files) and warm;
#   lock     `tfenv lock` on the s3 backend with a DynamoDB lock table, on a moto
#            server (installed by scripts/test.sh): one environment against
#            `terraform plan -lock-timeout=0s` and its "Lock Info", and `--all`
#            over 10 environments against one.
#
# Prints the figures as markdown; --write-doc also rewrites docs/performance.md.
# Run `scripts/bench.sh --help` for the options.
set -euo pipefail

prog='bench.sh'
readonly ALL_SECTIONS=(startup status backup verify lock)
readonly ENV_COUNT=50
readonly STATUS_SIZES=(1 10 50)
readonly ENVS_TARGET_MS=20
readonly STATUS_TARGET_RATIO='0.3333' # status at most 1/3 of the sequential sum
readonly BIG_STATE_BYTES=200000000    # the state `tfenv backup` copies
readonly RSS_TARGET_MIB=32            # tfenv's own peak RSS during that backup
readonly BACKUP_TARGET_RATIO='1.5'    # backup at most 1.5x a plain state pull
readonly BACKUP_MAX_REPS=3            # a 200 MB backup takes ~10 s
readonly ARCHIVE_COUNT=1000           # backups `tfenv verify` checks...
readonly ARCHIVE_FILE_BYTES=1000000   # ...of about this size each
readonly VERIFY_TARGET_MBPS=500
readonly VERIFY_MAX_REPS=3
readonly LOCK_ENV_COUNT=10
readonly LOCK_TARGET_RATIO=2 # lock --all at most 2x one lock
readonly S3_BUCKET='tfstate-bench'
readonly S3_TABLE='tf-locks'

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	cat <<'EOF'
Usage: scripts/bench.sh [--write-doc] [--only SECTIONS] [--runs N] [--reps N]
                        [--terraform BIN]

Builds `cargo build --release`, generates projects in a temp folder (removed
on exit), and measures these sections:

  startup  `tfenv envs` on 50 environments (start-up cost): mean and min of
           --runs runs
  status   `tfenv status env01..envN` for N = 1, 10, 50 (median of --reps runs),
           next to the sequential `terraform state pull` of the same N
  backup   `tfenv backup` of a ~200 MB local state: wall time, tfenv's own peak
           RSS, MB/s, next to `terraform state pull > file` (median of
           min(--reps, 3) runs)
  verify   `tfenv verify` over 1,000 backups of ~1 MB: one cold run (page cache
           dropped for those files), then the median of min(--reps, 3) warm runs
  lock     s3 backend + DynamoDB lock table on a moto server: `tfenv lock env01`
           vs `terraform plan -lock-timeout=0s`, and `tfenv lock --all` over 10
           environments vs one (median of --reps runs). Installs moto and the
           aws CLI with `scripts/test.sh --install-only` when they are missing

Options:
  --write-doc       also rewrite docs/performance.md with the figures (runs every
                    section: it cannot be combined with --only)
  --only SECTIONS   run only these sections, comma-separated, e.g.
                    `--only status,backup,lock` (`backups` = backup,verify)
  --runs N          runs of `tfenv envs` (default 50)
  --reps N          runs of each other measurement (default 5)
  --terraform BIN   the terraform to use (default: `terraform` on PATH)
  -h, --help        show this help

Needs cargo, terraform (>= 1.0; the lock section needs >= 1.6 for its s3
settings), ~3 GB of free space in $TMPDIR, python3 for the lock section, and
about 6 minutes on a 2-core machine for every section.
EOF
}

# --- arguments ---------------------------------------------------------------
write_doc=0
envs_runs=50
reps=5
tf_arg=''
only=''
while [[ $# -gt 0 ]]; do
	case "$1" in
	--write-doc) write_doc=1 ;;
	--only)
		[[ $# -ge 2 ]] || die '--only needs a list of sections, e.g. --only status,backup'
		only="$2"
		shift
		;;
	--only=*) only="${1#--only=}" ;;
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

# The sections to run, in ALL_SECTIONS order.
declare -A chosen=()
if [[ -z "$only" ]]; then
	for s in "${ALL_SECTIONS[@]}"; do chosen[$s]=1; done
else
	IFS=',' read -r -a parts <<<"$only"
	for part in "${parts[@]}"; do
		part="${part// /}"
		case "$part" in
		startup | status | backup | verify | lock) chosen[$part]=1 ;;
		envs) chosen[startup]=1 ;;
		backups)
			chosen[backup]=1
			chosen[verify]=1
			;;
		locks) chosen[lock]=1 ;;
		all) for s in "${ALL_SECTIONS[@]}"; do chosen[$s]=1; done ;;
		'') ;;
		*) die "unknown section \`$part\` in --only (sections: ${ALL_SECTIONS[*]}, backups, all)" ;;
		esac
	done
	[[ ${#chosen[@]} -gt 0 ]] || die "--only names no section (sections: ${ALL_SECTIONS[*]})"
fi
sections=()
for s in "${ALL_SECTIONS[@]}"; do
	if [[ -n "${chosen[$s]:-}" ]]; then sections+=("$s"); fi
done
want() { [[ -n "${chosen[$1]:-}" ]]; }
if [[ $write_doc -eq 1 && ${#sections[@]} -ne ${#ALL_SECTIONS[@]} ]]; then
	die '--write-doc rewrites the whole of docs/performance.md, so it runs every section: drop --only'
fi

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
moto_pid=''
stop_moto() {
	if [[ -n "$moto_pid" ]]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
		moto_pid=''
	fi
}
cleanup() {
	stop_moto
	rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Terraform without the checkpoint call home, without the caller's TF_* settings.
printf 'disable_checkpoint = true\n' >"$tmp/terraformrc"
export TF_CLI_CONFIG_FILE="$tmp/terraformrc"
export CHECKPOINT_DISABLE=1
unset TF_DATA_DIR TF_WORKSPACE TF_LOG TF_LOG_PATH TF_CLI_ARGS \
	TF_CLI_ARGS_init TF_CLI_ARGS_apply TF_CLI_ARGS_state TF_CLI_ARGS_plan TFENV_LOG
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
# median and max of the numbers on stdin: "MEDIAN MAX"
median_max() {
	sort -n | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f\n", m, v[NR] }'
}
# calc EXPR [FORMAT]: awk arithmetic on numbers, e.g. calc '1 / 3' '%.2f'
calc() { awk "BEGIN { printf \"${2:-%.1f}\", $1 }"; }
# is EXPR: awk comparison as an exit status, e.g. is '2 < 3'
is() { awk "BEGIN { exit !($1) }"; }
# ms -> seconds, two decimals
secs() { calc "$1 / 1000" '%.2f'; }
# json_string KEY FILE: the first "KEY": "value" in tfenv's (pretty-printed) JSON.
json_string() { grep -o -m 1 "\"$1\": *\"[^\"]*\"" "$2" | sed 's/.*"\([^"]*\)"$/\1/' || true; }
min_of() { if [[ "$1" -lt "$2" ]]; then printf '%s' "$1"; else printf '%s' "$2"; fi; }

new_uuid() {
	if [[ -r /proc/sys/kernel/random/uuid ]]; then
		cat /proc/sys/kernel/random/uuid
	else
		od -An -tx1 -N16 /dev/urandom | tr -d ' \n' |
			awk '{ printf "%s-%s-4%s-a%s-%s\n", substr($0, 1, 8), substr($0, 9, 4),
				substr($0, 14, 3), substr($0, 18, 3), substr($0, 21, 12) }'
	fi
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
	other_load_seen+=("$1: $pct%")
	if [[ "$pct" =~ ^[0-9]+$ && "$pct" -gt 10 ]]; then
		say "warning: other processes used $pct% of the CPUs during $1: the figures are noisy"
	fi
}

# children_cpu VAR: CPU seconds (user + sys) used so far by this shell's finished
# children (and theirs). Call it in this shell, never in $(...).
children_cpu() {
	times >"$tmp/times"
	printf -v "$1" '%s' "$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } }
		END { printf "%.3f", s }' "$tmp/times")"
}

# A FIFO nobody writes to: `read -t` on it is a sleep that forks nothing.
mkfifo -- "$tmp/tick"
exec {tick_fd}<>"$tmp/tick"
nap() { read -r -t "$1" -u "$tick_fd" _ || true; }

# run_polled OUT ERR CMD...: runs CMD in the background with stdout in OUT and stderr
# in ERR, and reads /proc/PID/status every ~10 ms (no fork per poll) until it exits.
# Sets polled_rc, polled_ms (wall), polled_hwm_kib (VmHWM: peak RSS of that process
# alone, the last value seen before it exited), polled_child_hwm_kib (the largest
# VmHWM seen of its direct children, 0 when /proc does not list them) and
# polled_cpu_s (user + sys of the process alone, last seen). /usr/bin/time would
# report the largest of the process and its descendants instead. Also
# polled_child_end_ms: when a child was last seen, and polled_first_out_ms: when OUT
# was first seen non-empty (both in ms from the start, with the polls' ~10 ms grain).
run_polled() {
	local out="$1" err="$2" pid t0 t1 key value kid kids stat now
	shift 2
	polled_hwm_kib=0
	polled_child_hwm_kib=0
	polled_cpu_s=0
	polled_child_end_ms=''
	polled_first_out_ms=''
	local ticks=0
	: >"$out" # (empty before the first poll can look at it)
	t0="$(now_ns)"
	"$@" >"$out" 2>"$err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		now="${EPOCHREALTIME:-}"
		now="${now/,/.}"
		if [[ -z "$polled_first_out_ms" && -s "$out" ]]; then polled_first_out_ms="$now"; fi
		while read -r key value _; do
			if [[ "$key" == VmHWM: ]]; then
				if [[ "$value" -gt "$polled_hwm_kib" ]]; then polled_hwm_kib="$value"; fi
				break
			fi
		done 2>/dev/null <"/proc/$pid/status" || true
		if read -r -a stat 2>/dev/null <"/proc/$pid/stat"; then
			# fields 14 and 15 (utime, stime), counted after the ")" ending the name
			ticks="${stat[*]}"
			ticks="${ticks##*) }"
			read -r -a stat <<<"$ticks"
			ticks=$((stat[11] + stat[12]))
		fi
		kids=''
		read -r kids 2>/dev/null <"/proc/$pid/task/$pid/children" || true
		if [[ -n "$kids" ]]; then polled_child_end_ms="$now"; fi
		for kid in $kids; do
			while read -r key value _; do
				if [[ "$key" == VmHWM: ]]; then
					if [[ "$value" -gt "$polled_child_hwm_kib" ]]; then polled_child_hwm_kib="$value"; fi
					break
				fi
			done 2>/dev/null <"/proc/$kid/status" || true
		done
		nap 0.01
	done
	polled_rc=0
	wait "$pid" || polled_rc=$?
	t1="$(now_ns)"
	polled_ms="$(ms_between "$t0" "$t1")"
	polled_cpu_s="$(calc "$ticks / $hz" '%.2f')"
	# EPOCHREALTIME readings (seconds) -> ms since t0; empty without EPOCHREALTIME
	if [[ -n "$polled_first_out_ms" ]]; then
		polled_first_out_ms="$(calc "$polled_first_out_ms * 1000 - $t0 / 1e6")"
	fi
	if [[ -n "$polled_child_end_ms" ]]; then
		polled_child_end_ms="$(calc "$polled_child_end_ms * 1000 - $t0 / 1e6")"
	fi
}

# Terraform v4 state in terraform's own layout (what `terraform state pull` prints),
# made of terraform_data resources of 4 instances each, ~2.4 KB per instance.
#   awk -f state.awk -v target=BYTES -v lineage=UUID -v serial=N   a whole state
#   awk -f state.awk -v target=BYTES -v body_only=1                all after the header
cat >"$tmp/state.awk" <<'EOF'
function q(s) { return "\"" s "\"" }
function instance(r, i,   id, kv, k) {
	id = sprintf("%08x-%04x-%04x-%04x-%012x", r, i, (r * 7 + i) % 65536, (r * 13) % 65536, r * 4 + i)
	kv = ""
	for (k = 1; k <= nkeys; k++)
		kv = kv (k > 1 ? ",\n" : "") "                " q(key[k]) ": " q(val[k] "-" r "-" i)
	kv = kv ",\n                " q("user_data") ": " q(blob)
	return "        {\n" \
		"          \"index_key\": " i ",\n" \
		"          \"schema_version\": 0,\n" \
		"          \"attributes\": {\n" \
		"            \"id\": " q(id) ",\n" \
		"            \"input\": {\n" \
		"              \"value\": {\n" kv "\n              },\n" \
		"              \"type\": [\n                \"map\",\n                \"string\"\n              ]\n" \
		"            },\n" \
		"            \"output\": {\n" \
		"              \"value\": {\n" kv "\n              },\n" \
		"              \"type\": [\n                \"map\",\n                \"string\"\n              ]\n" \
		"            },\n" \
		"            \"triggers_replace\": null\n" \
		"          },\n" \
		"          \"sensitive_attributes\": []\n" \
		"        }"
}
BEGIN {
	nkeys = split("name owner team cost_center environment region subnet_id ami instance_type security_group", key, " ")
	for (k = 1; k <= nkeys; k++) val[k] = "bench-" key[k]
	blob = ""
	for (k = 0; k < 16; k++) blob = blob "IyEvYmluL3NoCmVjaG8gImJlbmNobWFyayBzdGF0ZSBmb3IgdGZlbnYiCg=="
	head = "{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.4\",\n  \"serial\": " serial ",\n" \
		"  \"lineage\": " q(lineage) ",\n  \"outputs\": {},\n  \"resources\": [\n"
	tail = "\n  ],\n  \"check_results\": null\n}\n"
	if (!body_only) printf "%s", head
	n = length(head) + length(tail)
	for (r = 1; n < target; r++) {
		res = (r > 1 ? ",\n" : "") "    {\n      \"mode\": \"managed\",\n      \"type\": \"terraform_data\",\n" \
			"      \"name\": " q(sprintf("r%06d", r)) ",\n" \
			"      \"provider\": \"provider[\\\"terraform.io/builtin/terraform\\\"]\",\n" \
			"      \"instances\": [\n"
		for (i = 0; i < 4; i++) res = res (i ? ",\n" : "") instance(r, i)
		res = res "\n      ]\n    }"
		printf "%s", res
		n += length(res)
	}
	printf "%s", tail
}
EOF

# --- build -------------------------------------------------------------------
say "sections: ${sections[*]}"
say 'cargo build --release'
cargo build --release >&2
tfenv="$repo_root/target/release/tfenv"
[[ -x "$tfenv" ]] || die "the build made no $tfenv"
# What was built, read right after the build: the tree may change while this runs.
commit="$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$repo_root" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
	commit="$commit, with uncommitted changes in src/"
fi

# =============================================================================
# startup + status: the 50-environment project
# =============================================================================
proj="$tmp/project"
module="$proj/examples/quickstart"
envs=()
tfenv_run() { "$tfenv" -C "$proj" --terraform "$terraform_bin" --non-interactive "$@"; }

make_project() {
	mkdir -p -- "$module" "$proj/environments" "$proj/state"
	cp -- "$repo_root/examples/quickstart/main.tf" "$module/main.tf"
	cat >"$proj/environments/common.tfvars" <<'EOF'
feature_flags = {
  audit_log = true
  beta_ui   = false
}
EOF
	local i env
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
}

# --- startup: tfenv envs -------------------------------------------------------
section_startup() {
	local out="$tmp/envs.out" listed t0 t1
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
}

# --- status: init every environment, apply each once, then measure ---------------
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

section_status() {
	local t0 init_ms env json n ms st_med st_min seq_med seq_min ratio speed
	say "tfenv init --all ($ENV_COUNT environments)"
	t0="$(now_ns)"
	tfenv_run init --all >"$tmp/init.out" 2>&1 || die "tfenv init --all failed:
$(cat -- "$tmp/init.out")"
	init_ms="$(ms_between "$t0" "$(now_ns)")"
	say "tfenv init --all: $(secs "$init_ms") s"

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
	state_avg="$(calc "$state_bytes / $ENV_COUNT" '%.0f')"
	say "applies: $(secs "$(ms_between "$t0" "$(now_ns)")") s"

	jobs_default=$(($(nproc) * 2))

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
		ratio="$(calc "$st_med / $seq_med" '%.2f')"
		# "1.7× faster" / "2.0× slower"
		speed="$(awk -v a="$st_med" -v b="$seq_med" 'BEGIN {
			if (a <= b) printf "%.1f× faster", b / a; else printf "%.1f× slower", a / b }')"
		say "N=$n: tfenv status $st_med ms (min $st_min), sequential $seq_med ms (min $seq_min), ratio $ratio (medians)"
		status_rows+=("| $n | $st_med | $seq_med | $ratio ($speed) |")
		if [[ "$n" -eq "$ENV_COUNT" ]]; then
			status_ratio_50="$(calc "$st_med / $seq_med" '%.4f')"
			status_ratio_50_shown="$ratio"
			status_50="$st_med"
			seq_med_50="$seq_med"
		elif [[ "$n" -eq 1 ]]; then
			status_1="$st_med"
			seq_1="$seq_med"
		fi
	done
	other_load_end 'tfenv status'
}

# =============================================================================
# backup + verify: the local-backend project with a big state and many backups
# =============================================================================
bk_proj="$tmp/backup-project"
tfenv_bk() { "$tfenv" -C "$bk_proj" --terraform "$terraform_bin" --non-interactive "$@"; }

make_backup_project() {
	[[ -d "$bk_proj" ]] && return 0
	mkdir -p -- "$bk_proj/environments"
	cat >"$bk_proj/main.tf" <<'EOF'
# Generated by scripts/bench.sh: the local backend, and generated states.
terraform {
  backend "local" {}
}
EOF
	cat >"$bk_proj/tfenv.toml" <<'EOF'
# Generated by scripts/bench.sh.
[project]
state_dir = "state"

# A ~200 MB state, for `tfenv backup`.
[environments.big]
backend_config = "environments/big.backend.conf"

# 1,000 backups of ~1 MB, for `tfenv verify`.
[environments.archive]
backend_config = "environments/archive.backend.conf"
EOF
	printf 'path = "state/big/terraform.tfstate"\n' >"$bk_proj/environments/big.backend.conf"
	printf 'path = "state/archive/terraform.tfstate"\n' >"$bk_proj/environments/archive.backend.conf"
	printf '/state/*\n.terraform/\n' >"$bk_proj/.gitignore"
	if command -v git >/dev/null 2>&1; then
		git -C "$bk_proj" init -q
	fi
}

# pull_once: `terraform state pull > file` for `big`, as a script would run it (in the
# terraform root, with the environment's data dir), polled like the backup. Sets
# pull_run_ms, pull_first_ms (its first byte of output) and pull_sync_ms (an fsync of
# the file it wrote, `sync FILE`, timed apart).
pull_once() {
	local t1 t2
	cd -- "$bk_proj"
	TF_DATA_DIR="$bk_proj/.terraform/tfenv/big" run_polled "$tmp/pulled.tfstate" "$tmp/pull.err" \
		"$terraform_bin" state pull
	cd -- "$repo_root"
	[[ $polled_rc -eq 0 ]] || die "terraform state pull for big exited $polled_rc:
$(cat -- "$tmp/pull.err")"
	pull_run_ms="$polled_ms"
	pull_first_ms="${polled_first_out_ms:-?}"
	t1="$(now_ns)"
	sync -- "$tmp/pulled.tfstate" 2>/dev/null || true
	t2="$(now_ns)"
	pull_sync_ms="$(ms_between "$t1" "$t2")"
}

section_backup() {
	local dir="$bk_proj/state/big" backups_dir i cpu0 cpu1 file sha
	local n_reps
	n_reps="$(min_of "$reps" "$BACKUP_MAX_REPS")"
	backup_reps="$n_reps"
	make_backup_project
	tfenv_bk init big >"$tmp/init-big.out" 2>&1 || die "tfenv init big failed:
$(cat -- "$tmp/init-big.out")"
	say "generating a $((BIG_STATE_BYTES / 1000000)) MB state for big"
	mkdir -p -- "$dir"
	chmod 700 -- "$bk_proj/state" "$dir"
	(umask 077 && awk -f "$tmp/state.awk" -v target="$BIG_STATE_BYTES" -v lineage="$(new_uuid)" \
		-v serial=1 >"$dir/terraform.tfstate")
	big_bytes="$(wc -c <"$dir/terraform.tfstate")"
	big_mb="$(calc "$big_bytes / 1e6" '%.0f')"
	big_resources="$(grep -c '"mode": "managed"' "$dir/terraform.tfstate" || true)"
	backups_dir="$dir/backups"

	# Warm-up (and the reference copy): the state file is in the page cache for both.
	say "terraform state pull > file (warm-up)"
	pull_once
	pulled_bytes="$(wc -c <"$tmp/pulled.tfstate")"
	pulled_sha="$(sha256sum "$tmp/pulled.tfstate" | awk '{ print $1 }')"

	: >"$tmp/backup.ms"
	: >"$tmp/backup.rss"
	: >"$tmp/backup.tfcpu"
	: >"$tmp/pull.ms"
	: >"$tmp/sync.ms"
	: >"$tmp/backup.cpu"
	: >"$tmp/pull.cpu"
	: >"$tmp/pull.first"
	: >"$tmp/backup.childend"
	terraform_hwm_kib=0
	other_load_begin
	for i in $(seq 1 "$n_reps"); do
		rm -f -- "$backups_dir"/terraform.tfstate.* "$backups_dir/MANIFEST.jsonl"
		children_cpu cpu0
		# (the binary itself, not a shell function: run_polled must watch tfenv's pid)
		run_polled "$tmp/backup.json" "$tmp/backup.err" \
			"$tfenv" -C "$bk_proj" --terraform "$terraform_bin" --non-interactive --output json backup big
		children_cpu cpu1
		if [[ $polled_rc -ne 0 ]]; then
			die "tfenv backup big exited $polled_rc, not 0:
$(cat -- "$tmp/backup.json" "$tmp/backup.err")"
		fi
		file="$(json_string file "$tmp/backup.json")"
		[[ -n "$file" && -f "$backups_dir/$file" ]] || die "tfenv backup big made no backup file:
$(cat -- "$tmp/backup.json" "$tmp/backup.err")"
		if [[ $i -eq 1 ]]; then
			sha="$(json_string sha256 "$tmp/backup.json")"
			[[ "$sha" == "$pulled_sha" ]] ||
				die "the backup's SHA-256 ($sha) is not that of \`terraform state pull\` ($pulled_sha)"
			cmp -s -- "$backups_dir/$file" "$tmp/pulled.tfstate" ||
				die "the backup differs from what \`terraform state pull\` prints"
			backup_file_bytes="$(wc -c <"$backups_dir/$file")"
		fi
		printf '%s\n' "$polled_ms" >>"$tmp/backup.ms"
		calc "$polled_hwm_kib / 1024" '%.1f\n' >>"$tmp/backup.rss"
		printf '%s\n' "$polled_cpu_s" >>"$tmp/backup.tfcpu"
		printf '%s\n' "${polled_child_end_ms:-0}" >>"$tmp/backup.childend"
		calc "$cpu1 - $cpu0" '%.2f\n' >>"$tmp/backup.cpu"
		if [[ "$polled_child_hwm_kib" -gt "$terraform_hwm_kib" ]]; then terraform_hwm_kib="$polled_child_hwm_kib"; fi
		say "backup $i/$n_reps: $(secs "$polled_ms") s, tfenv peak RSS $(calc "$polled_hwm_kib / 1024") MiB"

		children_cpu cpu0
		pull_once
		children_cpu cpu1
		printf '%s\n' "$pull_run_ms" >>"$tmp/pull.ms"
		printf '%s\n' "$pull_sync_ms" >>"$tmp/sync.ms"
		printf '%s\n' "$pull_first_ms" >>"$tmp/pull.first"
		calc "$cpu1 - $cpu0" '%.2f\n' >>"$tmp/pull.cpu"
		say "state pull $i/$n_reps: $(secs "$pull_run_ms") s, first byte at $(secs "$pull_first_ms") s (+ $(secs "$pull_sync_ms") s fsync)"
	done
	other_load_end 'tfenv backup'
	rm -f -- "$backups_dir"/terraform.tfstate.* "$backups_dir/MANIFEST.jsonl" "$tmp/pulled.tfstate"

	read -r backup_med backup_min < <(median_min <"$tmp/backup.ms")
	read -r pull_med pull_min < <(median_min <"$tmp/pull.ms")
	read -r sync_med _ < <(median_min <"$tmp/sync.ms")
	read -r rss_med rss_max < <(median_max <"$tmp/backup.rss")
	read -r tfenv_cpu_med _ < <(median_min <"$tmp/backup.tfcpu")
	read -r backup_cpu_med _ < <(median_min <"$tmp/backup.cpu")
	read -r pull_cpu_med _ < <(median_min <"$tmp/pull.cpu")
	read -r pull_first_med _ < <(median_min <"$tmp/pull.first")
	read -r child_end_med _ < <(median_min <"$tmp/backup.childend")
	# After terraform's first byte, tfenv takes the state in until terraform can exit.
	drain_s="$(calc "($child_end_med - $pull_first_med) / 1000" '%.2f')"
	drain_mbps="$(calc "$pulled_bytes / 1e6 / (($child_end_med - $pull_first_med) / 1000)" '%.0f')"
	backup_mbps="$(calc "$backup_file_bytes / 1e6 / ($backup_med / 1000)" '%.0f')"
	pull_mbps="$(calc "$pulled_bytes / 1e6 / ($pull_med / 1000)" '%.0f')"
	backup_ratio="$(calc "$backup_med / $pull_med" '%.2f')"
	terraform_rss_mib="$(calc "$terraform_hwm_kib / 1024" '%.0f')"
	say "tfenv backup: median $(secs "$backup_med") s ($backup_mbps MB/s), state pull median $(secs "$pull_med") s, ratio $backup_ratio; tfenv peak RSS max $rss_max MiB"
}

# make_archive: ARCHIVE_COUNT backups of about ARCHIVE_FILE_BYTES in
# state/archive/backups, one minute apart, and their MANIFEST.jsonl.
make_archive() {
	local dir="$bk_proj/state/archive/backups" lineage base body_bytes i t name header created
	mkdir -p -- "$dir"
	chmod 700 -- "$bk_proj/state" "$bk_proj/state/archive" "$dir"
	lineage="$(new_uuid)"
	awk -f "$tmp/state.awk" -v target="$ARCHIVE_FILE_BYTES" -v body_only=1 >"$tmp/archive-body"
	body_bytes="$(wc -c <"$tmp/archive-body")"
	base=$(($(date +%s) / 60 * 60 - (ARCHIVE_COUNT + 60) * 60))
	(
		export TZ=UTC0
		umask 077
		: >"$tmp/archive.list"
		for i in $(seq 1 "$ARCHIVE_COUNT"); do
			t=$((base + i * 60))
			printf -v name 'terraform.tfstate.%(%Y%m%d-%H%M%S)T' "$t"
			printf -v created '%(%Y-%m-%dT%H:%M:%SZ)T' "$t"
			printf -v header '{\n  "version": 4,\n  "terraform_version": "1.11.4",\n  "serial": %d,\n  "lineage": "%s",\n  "outputs": {},\n  "resources": [\n' \
				"$i" "$lineage"
			printf '%s' "$header" >"$dir/$name"
			cat -- "$tmp/archive-body" >>"$dir/$name"
			printf '%s %s %s %s\n' "$name" "$i" "$((${#header} + body_bytes))" "$created" >>"$tmp/archive.list"
		done
	)
	# One sha256sum over every file, in the list's order; then the manifest lines.
	(cd -- "$dir" && awk '{ print $1 }' "$tmp/archive.list" | xargs sha256sum) >"$tmp/archive.sums"
	paste -d ' ' "$tmp/archive.list" "$tmp/archive.sums" |
		awk -v lineage="$lineage" '{
			if ($1 != $6) { print "sha256sum order mismatch: " $1 " " $6 > "/dev/stderr"; exit 1 }
			printf "{\"file\":\"%s\",\"sha256\":\"%s\",\"bytes\":%d,\"serial\":%d,\"lineage\":\"%s\",\"terraform_version\":\"1.11.4\",\"created\":\"%s\",\"reason\":\"manual\"}\n",
				$1, $5, $3, $2, lineage, $4 }' >"$dir/MANIFEST.jsonl"
	chmod 600 -- "$dir/MANIFEST.jsonl"
	archive_bytes="$(awk '{ s += $3 } END { printf "%.0f", s }' "$tmp/archive.list")"
	archive_mb="$(calc "$archive_bytes / 1e6" '%.0f')"
	[[ "$(wc -l <"$dir/MANIFEST.jsonl")" -eq "$ARCHIVE_COUNT" ]] || die "the archive's manifest is incomplete"
}

# MB of the archive's backup files in the page cache ("?" without fincore).
archive_cached_mb() {
	if command -v fincore >/dev/null 2>&1; then
		(cd -- "$bk_proj/state/archive/backups" && fincore --bytes --noheadings --output RES -- terraform.tfstate.* 2>/dev/null) |
			awk '{ s += $1 } END { printf "%.0f", s / 1e6 }'
	else
		printf '?'
	fi
}

# verify_once: one `tfenv verify archive`; it must exit 0 having checked every backup.
# Prints "WALL_MS CPU_S" (CPU: user + sys of tfenv).
verify_once() {
	local t0 t1 rc=0
	TIMEFORMAT='%3U %3S'
	{
		time {
			t0="$(now_ns)"
			tfenv_bk --output json verify archive >"$tmp/verify.json" 2>"$tmp/verify.err" || rc=$?
			t1="$(now_ns)"
		}
	} 2>"$tmp/verify.time"
	unset TIMEFORMAT
	if [[ $rc -ne 0 ]] || ! grep -q '"ok": *true' "$tmp/verify.json" ||
		! grep -q "\"checked\": *$ARCHIVE_COUNT\\b" "$tmp/verify.json"; then
		die "tfenv verify archive exited $rc, or did not verify all $ARCHIVE_COUNT backups:
$(head -c 3000 -- "$tmp/verify.json") $(cat -- "$tmp/verify.err")"
	fi
	printf '%s %s\n' "$(ms_between "$t0" "$t1")" "$(awk '{ printf "%.2f", $1 + $2 }' "$tmp/verify.time")"
}

section_verify() {
	local dir f n_reps ms cpu times_ms
	make_backup_project
	say "generating $ARCHIVE_COUNT backups of ~$((ARCHIVE_FILE_BYTES / 1000000)) MB for archive, with their manifest"
	make_archive
	dir="$bk_proj/state/archive/backups"

	# Cold: write the files out, then ask the kernel to drop them from the page cache
	# (posix_fadvise DONTNEED through dd iflag=nocache: no root needed).
	say "dropping the backups from the page cache"
	sync -- "$dir"/terraform.tfstate.* 2>/dev/null || sync
	verify_evicted='no'
	if dd if=/dev/null iflag=nocache count=0 status=none 2>/dev/null; then
		for f in "$dir"/terraform.tfstate.*; do
			dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
		done
		verify_evicted='yes'
	fi
	verify_cached_before="$(archive_cached_mb)"
	say "page cache holds $verify_cached_before MB of the $archive_mb MB before the cold run"

	other_load_begin
	times_ms="$(verify_once)"
	read -r verify_cold_ms verify_cold_cpu <<<"$times_ms"
	verify_cold_mbps="$(calc "$archive_bytes / 1e6 / ($verify_cold_ms / 1000)" '%.0f')"
	say "tfenv verify (cold): $(secs "$verify_cold_ms") s, $verify_cold_mbps MB/s"
	n_reps="$(min_of "$reps" "$VERIFY_MAX_REPS")"
	verify_reps="$n_reps"
	: >"$tmp/verify.ms"
	: >"$tmp/verify.cpu"
	for _ in $(seq 1 "$n_reps"); do
		times_ms="$(verify_once)"
		read -r ms cpu <<<"$times_ms"
		printf '%s\n' "$ms" >>"$tmp/verify.ms"
		printf '%s\n' "$cpu" >>"$tmp/verify.cpu"
	done
	other_load_end 'tfenv verify'
	verify_cached_warm="$(archive_cached_mb)"
	read -r verify_warm_ms _ < <(median_min <"$tmp/verify.ms")
	read -r verify_warm_cpu _ < <(median_min <"$tmp/verify.cpu")
	verify_warm_mbps="$(calc "$archive_bytes / 1e6 / ($verify_warm_ms / 1000)" '%.0f')"
	verify_core_mbps="$(calc "$archive_bytes / 1e6 / $verify_warm_cpu" '%.0f')"
	verify_cores_used="$(calc "$verify_warm_cpu / ($verify_warm_ms / 1000)" '%.1f')"
	say "tfenv verify (warm): median $(secs "$verify_warm_ms") s, $verify_warm_mbps MB/s; $verify_warm_cpu s of CPU"
	rm -rf -- "$bk_proj/state/archive/backups"
}

# =============================================================================
# lock: s3 + DynamoDB on moto
# =============================================================================
s3_proj="$tmp/s3-project"
aws_path=''
tfenv_s3() { PATH="$aws_path:$PATH" "$tfenv" -C "$s3_proj" --terraform "$terraform_bin" --non-interactive "$@"; }
# The aws CLI against moto, with test credentials and none of the host's AWS settings.
moto_aws() {
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
		"$aws_cli" --endpoint-url "$moto_url" --output json "$@"
}

# moto_answers PORT: GET /moto-api/ answers 200.
moto_answers() {
	local status=''
	# (a connection refused just means "not up yet")
	status="$( (
		printf 'GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
		read -r -t 2 line <&3 && printf '%s' "$line"
	) 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || true)"
	[[ "$status" == HTTP/1.?\ 200* ]]
}

start_moto() {
	local python attempt port i
	python="$(dirname -- "$moto_server")/python"
	[[ -x "$python" ]] || python="$(command -v python3)"
	for attempt in 1 2 3; do
		port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
		"$moto_server" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
		moto_pid=$!
		for i in $(seq 1 200); do
			if moto_answers "$port"; then
				moto_url="http://127.0.0.1:$port"
				say "moto_server up on $moto_url (pid $moto_pid)"
				return 0
			fi
			kill -0 "$moto_pid" 2>/dev/null || break
			nap 0.1
		done
		say "moto_server did not come up on port $port (attempt $attempt):"
		sed 's/^/    /' "$tmp/moto.log" >&2
		stop_moto
	done
	die "moto_server ($moto_server) did not start"
}

# check_locks: tfenv lock reads env01 as held by $lock_id and env02 as free.
# Returns 1 with the reason in $lock_check_error otherwise.
check_locks() {
	local rc=0
	lock_check_error=''
	tfenv_s3 --output json lock env01 >"$tmp/lock1.json" 2>"$tmp/lock1.err" || rc=$?
	if [[ $rc -ne 0 ]] || ! grep -q '"held": *true' "$tmp/lock1.json" ||
		! grep -q "\"id\": *\"$lock_id\"" "$tmp/lock1.json"; then
		lock_check_error="\`tfenv lock env01\` (held) exited $rc: $(head -n 3 "$tmp/lock1.err" "$tmp/lock1.json" | grep -v '^==>' | tr '\n' ' ')"
		return 1
	fi
	rc=0
	tfenv_s3 --output json lock env02 >"$tmp/lock2.json" 2>"$tmp/lock2.err" || rc=$?
	if [[ $rc -ne 0 ]] || ! grep -q '"held": *false' "$tmp/lock2.json"; then
		lock_check_error="\`tfenv lock env02\` (not held) exited $rc: $(head -n 3 "$tmp/lock2.err" "$tmp/lock2.json" | grep -v '^==>' | tr '\n' ' ')"
		return 1
	fi
}

# lock_once: one `tfenv lock ARGS...` in ms; it must exit 0.
lock_once() {
	local t0 t1 rc=0
	t0="$(now_ns)"
	tfenv_s3 lock "$@" >"$tmp/lock.out" 2>"$tmp/lock.err" || rc=$?
	t1="$(now_ns)"
	[[ $rc -eq 0 ]] || die "tfenv lock $* exited $rc:
$(cat -- "$tmp/lock.out" "$tmp/lock.err")"
	ms_between "$t0" "$t1"
}

# plan_once: what scripts do today: `terraform plan -lock-timeout=0s` in env01's data
# dir, and the lock ID out of the "Lock Info:" of its error, in ms.
plan_once() {
	local t0 t1 rc=0 id
	t0="$(now_ns)"
	(
		cd -- "$s3_proj"
		TF_DATA_DIR="$s3_proj/.terraform/tfenv/env01" "$terraform_bin" plan \
			-lock-timeout=0s -input=false -no-color
	) >"$tmp/plan.out" 2>&1 || rc=$?
	id="$(awk '/^Lock Info:/ { f = 1 } f && $1 == "ID:" { print $2; exit }' "$tmp/plan.out")"
	t1="$(now_ns)"
	[[ $rc -ne 0 && "$id" == "$lock_id" ]] ||
		die "terraform plan on the locked env01 exited $rc and named lock \`$id\`, not \`$lock_id\`:
$(cat -- "$tmp/plan.out")"
	ms_between "$t0" "$t1"
}

# aws_once ARGS...: one `aws ARGS` against moto, in ms.
aws_once() {
	local t0 t1
	t0="$(now_ns)"
	moto_aws "$@" >"$tmp/aws.out" 2>"$tmp/aws.err" || die "aws $* failed:
$(cat -- "$tmp/aws.err")"
	t1="$(now_ns)"
	ms_between "$t0" "$t1"
}

section_lock() {
	local exports i env t0 ms info item keys lock_path
	say 'lock: scripts/test.sh --install-only (moto server + aws CLI)'
	exports="$("$repo_root/scripts/test.sh" --install-only)" ||
		die 'scripts/test.sh --install-only failed: the lock section needs python3 (see its messages above); skip it with --only'
	eval "$exports"
	moto_server="${TFENV_TEST_MOTO_SERVER:?scripts/test.sh set no TFENV_TEST_MOTO_SERVER}"
	aws_cli="${TFENV_TEST_AWS:?scripts/test.sh set no TFENV_TEST_AWS}"
	aws_version="$("$aws_cli" --version 2>&1 | awk 'NR == 1 { print $1 }')"
	tf_minor="$("$terraform_bin" version 2>/dev/null | awk 'NR == 1 { sub(/^Terraform v/, ""); split($1, v, "."); print v[1] * 1000 + v[2]; exit }')"
	[[ "${tf_minor:-0}" -ge 1006 ]] ||
		die "the lock section writes s3 backend settings of Terraform >= 1.6 (endpoints, use_path_style); $terraform_bin is older"

	# None of the host's AWS settings; tfenv passes the backend's own.
	export AWS_CONFIG_FILE="$tmp/aws-config" AWS_SHARED_CREDENTIALS_FILE="$tmp/aws-credentials"
	export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=''
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL \
		AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

	start_moto
	moto_aws s3api create-bucket --bucket "$S3_BUCKET" >/dev/null
	moto_aws s3api put-bucket-versioning --bucket "$S3_BUCKET" \
		--versioning-configuration Status=Enabled >/dev/null
	moto_aws dynamodb create-table --table-name "$S3_TABLE" \
		--attribute-definitions AttributeName=LockID,AttributeType=S \
		--key-schema AttributeName=LockID,KeyType=HASH \
		--billing-mode PAY_PER_REQUEST >/dev/null

	mkdir -p -- "$s3_proj/environments"
	cat >"$s3_proj/main.tf" <<'EOF'
# Generated by scripts/bench.sh: the s3 backend (settings per environment).
terraform {
  backend "s3" {}
}

resource "terraform_data" "app" {
  input = "bench"
}
EOF
	lock_envs=()
	{
		printf '# Generated by scripts/bench.sh: %d environments on the s3 backend.\n\n' "$LOCK_ENV_COUNT"
		printf '[project]\nstate_dir = "state"\n'
		for i in $(seq 1 "$LOCK_ENV_COUNT"); do
			env="$(printf 'env%02d' "$i")"
			lock_envs+=("$env")
			printf '\n[environments.%s]\nbackend_config = "environments/%s.backend.conf"\n' "$env" "$env"
			cat >"$s3_proj/environments/$env.backend.conf" <<EOF
bucket         = "$S3_BUCKET"
key            = "$env/terraform.tfstate"
region         = "us-east-1"
dynamodb_table = "$S3_TABLE"
endpoints = { s3 = "$moto_url", dynamodb = "$moto_url" }
access_key = "test"
secret_key = "test"
use_path_style = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
EOF
		done
	} >"$s3_proj/tfenv.toml"
	printf '/state/*\n.terraform/\n' >"$s3_proj/.gitignore"
	if command -v git >/dev/null 2>&1; then
		git -C "$s3_proj" init -q
	fi

	aws_path="$(dirname -- "$aws_cli")"
	say "tfenv init --all ($LOCK_ENV_COUNT environments on s3)"
	t0="$(now_ns)"
	tfenv_s3 init --all >"$tmp/init-s3.out" 2>&1 || die "tfenv init --all (s3) failed:
$(cat -- "$tmp/init-s3.out")"
	lock_init_ms="$(ms_between "$t0" "$(now_ns)")"

	# env01's state lock, as a terraform apply elsewhere would hold it.
	lock_id="$(new_uuid)"
	lock_path="$S3_BUCKET/env01/terraform.tfstate"
	info="$(printf '{"ID":"%s","Operation":"OperationTypeApply","Info":"","Who":"bench@%s","Version":"1.11.4","Created":"%s","Path":"%s"}' \
		"$lock_id" "$(hostname 2>/dev/null || echo host)" "$(date -u '+%Y-%m-%dT%H:%M:%S.%NZ')" "$lock_path")"
	item="{\"LockID\":{\"S\":\"$lock_path\"},\"Info\":{\"S\":\"${info//\"/\\\"}\"}}"
	moto_aws dynamodb put-item --table-name "$S3_TABLE" --item "$item" >/dev/null

	# tfenv runs `aws` from PATH: it must read env01's lock and see env02's as free.
	check_locks || die "tfenv cannot read the locks with $aws_version: $lock_check_error"
	say 'tfenv lock reads env01 as held (with the right ID) and env02 as free'

	# The same read by hand, and the 10 reads as one request.
	lock_key="{\"LockID\":{\"S\":\"$lock_path\"}}"
	keys=''
	for env in "${lock_envs[@]}"; do
		keys="$keys${keys:+,}{\"LockID\":{\"S\":\"$S3_BUCKET/$env/terraform.tfstate\"}}"
	done
	batch_request="{\"$S3_TABLE\":{\"Keys\":[$keys],\"ConsistentRead\":true}}"

	# warm-up
	lock_once env01 >/dev/null
	plan_once >/dev/null
	lock_once --all >/dev/null

	other_load_begin
	: >"$tmp/lock1.ms"
	: >"$tmp/lockall.ms"
	: >"$tmp/plan.ms"
	: >"$tmp/getitem.ms"
	: >"$tmp/batch.ms"
	: >"$tmp/awsversion.ms"
	for _ in $(seq 1 "$reps"); do
		ms="$(lock_once env01)"
		printf '%s\n' "$ms" >>"$tmp/lock1.ms"
		ms="$(plan_once)"
		printf '%s\n' "$ms" >>"$tmp/plan.ms"
		ms="$(lock_once --all)"
		printf '%s\n' "$ms" >>"$tmp/lockall.ms"
		ms="$(aws_once dynamodb get-item --table-name "$S3_TABLE" --key "$lock_key" --consistent-read)"
		printf '%s\n' "$ms" >>"$tmp/getitem.ms"
		ms="$(aws_once dynamodb batch-get-item --request-items "$batch_request")"
		printf '%s\n' "$ms" >>"$tmp/batch.ms"
		grep -q "$lock_id" "$tmp/aws.out" || die "batch-get-item did not return env01's lock"
		ms="$(aws_once --version)"
		printf '%s\n' "$ms" >>"$tmp/awsversion.ms"
	done
	other_load_end 'tfenv lock'

	# CPU time (user + sys, tfenv and every process it started) of one of each.
	TIMEFORMAT='%3U %3S'
	{ time lock_once env01 >/dev/null; } 2>"$tmp/cpu1.txt" || die "$(cat -- "$tmp/cpu1.txt")"
	{ time lock_once --all >/dev/null; } 2>"$tmp/cpuall.txt" || die "$(cat -- "$tmp/cpuall.txt")"
	unset TIMEFORMAT
	lock1_cpu_ms="$(awk 'END { printf "%.0f", ($1 + $2) * 1000 }' "$tmp/cpu1.txt")"
	lockall_cpu_ms="$(awk 'END { printf "%.0f", ($1 + $2) * 1000 }' "$tmp/cpuall.txt")"

	stop_moto

	read -r lock1_med lock1_min < <(median_min <"$tmp/lock1.ms")
	read -r lockall_med lockall_min < <(median_min <"$tmp/lockall.ms")
	read -r plan_med plan_min < <(median_min <"$tmp/plan.ms")
	read -r getitem_med getitem_min < <(median_min <"$tmp/getitem.ms")
	read -r batch_med batch_min < <(median_min <"$tmp/batch.ms")
	read -r awsversion_med awsversion_min < <(median_min <"$tmp/awsversion.ms")
	# With C cores, the --all reads cannot take less than their CPU time / C.
	lock_best_ratio="$(calc "$lockall_cpu_ms / $(nproc) / $lock1_med" '%.1f')"
	lock_ratio="$(calc "$lockall_med / $lock1_med" '%.2f')"
	lock_vs_plan="$(calc "$lock1_med / $plan_med" '%.1f')"
	say "tfenv lock env01 $lock1_med ms, terraform plan $plan_med ms, tfenv lock --all $lockall_med ms (ratio $lock_ratio)"
}

# --- run the sections ------------------------------------------------------------
if want startup || want status; then
	make_project
fi
if want startup; then section_startup; fi
if want status; then section_status; fi
if want backup; then section_backup; fi
if want verify; then section_verify; fi
if want lock; then section_lock; fi

# =============================================================================
# report
# =============================================================================
cpus="$(nproc)"
cpu_model="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
[[ -n "$cpu_model" ]] || cpu_model="$(uname -m)"
mem_total="$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576; exit }' /proc/meminfo 2>/dev/null || echo '?')"
tmp_fs="$(df -PT -- "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')"
tf_version="$("$terraform_bin" version 2>/dev/null | awk 'NR == 1')"
tfenv_version="$("$tfenv" --version 2>/dev/null | awk 'NR == 1')"
when="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_shown="$(printf '%s, ' "${other_load_seen[@]}")"
load_shown="${load_shown%, }"

# verdict OK TEXT_MET TEXT_NOT_MET
verdict() { if [[ "$1" -eq 1 ]]; then printf '**met** (%s)' "$2"; else printf '**not met** (%s)' "$3"; fi; }
yes_if() { if is "$1"; then printf 1; else printf 0; fi; }

target_rows=()
if want startup; then
	envs_verdict="$(verdict "$(yes_if "$envs_mean < $ENVS_TARGET_MS")" \
		"mean $envs_mean ms < $ENVS_TARGET_MS ms" "mean $envs_mean ms ≥ $ENVS_TARGET_MS ms")"
	target_rows+=("| \`tfenv envs\` on $ENV_COUNT environments under $ENVS_TARGET_MS ms | $envs_verdict |")
fi
if want status; then
	status_verdict="$(verdict "$(yes_if "$status_ratio_50 <= $STATUS_TARGET_RATIO")" \
		"ratio $status_ratio_50_shown ≤ 0.33" "ratio $status_ratio_50_shown > 0.33")"
	if [[ "$cpus" -ne 2 ]]; then
		status_verdict="$status_verdict — note: the target is set for 2 cores, this machine has $cpus"
	fi
	target_rows+=("| \`tfenv status\` of $ENV_COUNT environments at most 1/3 of the sequential \`state pull\` sum (2-core machine) | $status_verdict |")
	# What the CPUs allow: the sequential pulls' CPU time spread over every core.
	cpu_floor_ms="$(calc "$seq_cpu_ms / $cpus" '%.0f')"
	best_ratio="$(calc "$cpu_floor_ms / $seq_med_50" '%.2f')"
	fixed_ms="$(calc "$status_1 - $seq_1" '%.0f')"
	pull_cpu_ms="$(calc "$seq_cpu_ms / $ENV_COUNT" '%.0f')"
	pull_ms="$(calc "$seq_med_50 / $ENV_COUNT" '%.0f')"
fi
if want backup; then
	rss_verdict="$(verdict "$(yes_if "$rss_max < $RSS_TARGET_MIB")" \
		"at most $rss_max MiB < $RSS_TARGET_MIB MiB" "up to $rss_max MiB ≥ $RSS_TARGET_MIB MiB")"
	backup_verdict="$(verdict "$(yes_if "$backup_ratio <= $BACKUP_TARGET_RATIO")" \
		"$(secs "$backup_med") s vs $(secs "$pull_med") s: ${backup_ratio}× ≤ ${BACKUP_TARGET_RATIO}×" \
		"$(secs "$backup_med") s vs $(secs "$pull_med") s: ${backup_ratio}× > ${BACKUP_TARGET_RATIO}×")"
	target_rows+=("| \`tfenv backup\` of a $big_mb MB state: tfenv's own peak RSS under $RSS_TARGET_MIB MiB | $rss_verdict |")
	target_rows+=("| \`tfenv backup\` of that state within ${BACKUP_TARGET_RATIO}× of \`terraform state pull > file\` | $backup_verdict |")
fi
if want verify; then
	verify_cold_verdict="$(verdict "$(yes_if "$verify_cold_mbps >= $VERIFY_TARGET_MBPS")" \
		"$verify_cold_mbps MB/s ≥ $VERIFY_TARGET_MBPS" "$verify_cold_mbps MB/s < $VERIFY_TARGET_MBPS")"
	verify_warm_verdict="$(verdict "$(yes_if "$verify_warm_mbps >= $VERIFY_TARGET_MBPS")" \
		"$verify_warm_mbps MB/s ≥ $VERIFY_TARGET_MBPS" "$verify_warm_mbps MB/s < $VERIFY_TARGET_MBPS")"
	target_rows+=("| \`tfenv verify\` of $ARCHIVE_COUNT backups ($archive_mb MB) at ≥ $VERIFY_TARGET_MBPS MB/s, cold | $verify_cold_verdict |")
	target_rows+=("| the same, warm (files in the page cache) | $verify_warm_verdict |")
fi
if want lock; then
	lock_verdict="$(verdict "$(yes_if "$lock_ratio <= $LOCK_TARGET_RATIO")" \
		"$lockall_med ms vs $lock1_med ms: ${lock_ratio}× ≤ ${LOCK_TARGET_RATIO}×" \
		"$lockall_med ms vs $lock1_med ms: ${lock_ratio}× > ${LOCK_TARGET_RATIO}×")"
	target_rows+=("| \`tfenv lock --all\` over $LOCK_ENV_COUNT s3 environments at most ${LOCK_TARGET_RATIO}× one \`tfenv lock\` | $lock_verdict |")
fi

report_machine() {
	cat <<EOF
## Machine

- CPUs (nproc): $cpus; CPU model: $cpu_model; memory: $mem_total
- Disk of the temp folder (backups, states): $tmp_fs
- Terraform: ${tf_version#Terraform } (\`$terraform_bin\`)
- tfenv: ${tfenv_version#tfenv } (commit $commit), \`cargo build --release\`
- Date: $when
- CPU used by other processes while measuring, in % of the machine (above 10 %, the
  figures of that section are noisy): $load_shown

## Targets

| target | result |
| --- | --- |
EOF
	printf '%s\n' "${target_rows[@]}"
}

report_startup() {
	cat <<EOF

## Start-up: \`tfenv envs\` on $ENV_COUNT environments

**Method.** \`tfenv envs\` on the generated $ENV_COUNT-environment project: it reads
\`tfenv.toml\` and the HCL files and runs no terraform process, so this is the fixed
cost of every tfenv command. Timing: $envs_method.

| runs | mean, ms | min, ms |
| --- | --- | --- |
| $envs_runs | $envs_mean | $envs_min |

**Target:** under $ENVS_TARGET_MS ms — $envs_verdict.

**Reading the figures.** This is tfenv's own start-up, project discovery and
configuration parsing for $ENV_COUNT environments; every other command pays it once.
EOF
}

report_status() {
	cat <<EOF

## \`tfenv status\` vs. sequential \`terraform state pull\`

**Method.** After \`tfenv init --all\` and one \`terraform apply\` per environment (so each
has a real state: the module's outputs only, $state_avg bytes on average),
\`tfenv status env01..envN\` for N = 1, 10 and $ENV_COUNT, with the default \`-j\`
(CPUs × 2 = $jobs_default here). Next to it, the sequential column runs
\`TF_DATA_DIR=... terraform state pull > /dev/null\` for the same environments one
after another in \`examples/quickstart\`, the way a bash script does it. Wall-clock
times of the whole command, median of $reps runs each. Ratio = status ÷ sequential
(lower is better).

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
	cat <<EOF

**Target:** $ENV_COUNT environments in at most 1/3 of the sequential sum (2-core machine) — $status_verdict.

**Reading the figures.**

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
		if is "$best_ratio > $STATUS_TARGET_RATIO"; then
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
  at once (\`-j\`); this section does not measure them.
EOF
	fi
}

report_backups() {
	if ! want backup && ! want verify; then return 0; fi
	cat <<EOF

## Backups (local backend)

MB = 10⁶ bytes; RSS in MiB (2²⁰ bytes).
EOF
	if want backup; then
		local overhead_s terraform_rss_text
		if [[ "$terraform_hwm_kib" -gt 0 ]]; then
			terraform_rss_text="about $terraform_rss_mib MiB"
		else
			terraform_rss_text="not measured (no /proc/<pid>/task/<pid>/children here)"
		fi
		overhead_s="$(calc "($backup_med - $pull_med) / 1000" '%.2f')"
		cat <<EOF

### \`tfenv backup\` of a $big_mb MB state

**Method.** A generated project (\`tfenv.toml\` + a root module with \`backend "local" {}\`)
with an environment \`big\`: \`tfenv init big\`, then a generated state put at its
backend path: valid state JSON in terraform's own layout, $big_resources \`terraform_data\`
resources of 4 instances each, $big_bytes bytes. Then, alternating, $backup_reps runs each
(median) after one warm-up pull, so the state file is in the page cache for both:

- \`tfenv backup big\` (wall time; its backup is checked once to be byte for byte what
  \`terraform state pull\` prints). While it runs, the script reads
  \`/proc/<tfenv pid>/status\` every ~10 ms and keeps \`VmHWM\` of the tfenv process
  alone (its child, terraform, is not counted; \`/usr/bin/time\` would report the
  largest descendant instead): the last value seen before it exits.
- \`TF_DATA_DIR=<root>/.terraform/tfenv/big terraform state pull > file\` in the
  terraform root, alone; then, timed apart, \`sync file\` (an fsync: tfenv fsyncs its
  backup before naming it).

| | median, s | min, s | MB/s | CPU (user + sys), s |
| --- | --- | --- | --- | --- |
| \`tfenv backup big\` | $(secs "$backup_med") | $(secs "$backup_min") | $backup_mbps | $backup_cpu_med (tfenv alone: $tfenv_cpu_med) |
| \`terraform state pull > file\` | $(secs "$pull_med") | $(secs "$pull_min") | $pull_mbps | $pull_cpu_med |
| \`sync file\` after the pull | $(secs "$sync_med") | | | |

Timeline, medians from the start of each command: the plain pull's first byte of
output comes at $(secs "$pull_first_med") s of $(secs "$pull_med") s; in the backup, terraform (tfenv's child) is
last seen at $(secs "$child_end_med") s of $(secs "$backup_med") s.

tfenv's peak RSS (VmHWM): median $rss_med MiB, largest $rss_max MiB over the $backup_reps runs.
terraform's own peak RSS in the same runs: $terraform_rss_text.

**Targets:** tfenv's peak RSS under $RSS_TARGET_MIB MiB — $rss_verdict.
Backup within ${BACKUP_TARGET_RATIO}× of the plain pull — $backup_verdict.
EOF
		cat <<EOF

**Reading the figures.**

- The state streams through tfenv: its peak RSS ($rss_max MiB) does not depend on the
  state's size, while terraform holds the whole state in memory (peak RSS
  $terraform_rss_text).
- \`tfenv backup\` takes ${backup_ratio}× the plain pull, $overhead_s s more.
- terraform prints nothing until it has the whole state in memory, then all of it at
  once (first byte at $(secs "$pull_first_med") s of $(secs "$pull_med") s). So tfenv's work on the stream does not
  overlap terraform's: terraform cannot exit before tfenv has read everything, which
  takes until $(secs "$child_end_med") s — about $drain_s s for $big_mb MB after the first byte
  ($drain_mbps MB/s), where a plain redirect to a file needs $(calc "($pull_med - $pull_first_med) / 1000" '%.2f') s. tfenv's own
  CPU time is $tfenv_cpu_med s: writing, SHA-256, and parsing the JSON to read the header and
  count resources, which reads the pipe only as fast as it parses.
- The rest is tfenv's start-up and \`terraform version\` check, and the fsync of the
  backup before it is named (about $(secs "$sync_med") s for the plain pull's file).
EOF
	fi
	if want verify; then
		local cold_note
		if [[ "$verify_evicted" == yes ]]; then
			cold_note="after \`sync\` and \`dd iflag=nocache count=0\` on every backup file
(posix_fadvise DONTNEED, no root needed), which left $verify_cached_before MB of the $archive_mb MB
in the page cache (\`fincore\`)"
		else
			cold_note="right after writing the files (this dd cannot drop them from the page
cache, so they are still cached: cold-ish at best)"
		fi
		cat <<EOF

### \`tfenv verify\` over $ARCHIVE_COUNT backups

**Method.** In the same project, environment \`archive\`: $ARCHIVE_COUNT generated backups in
\`state/archive/backups/\`, named \`terraform.tfstate.YYYYMMDD-HHMMSS\` one minute apart,
each a valid state of about $((ARCHIVE_FILE_BYTES / 1000000)) MB (same lineage, serial 1 to $ARCHIVE_COUNT), $archive_mb MB in
all, with a \`MANIFEST.jsonl\` line each (file, sha256, bytes, serial, lineage,
terraform_version, created, reason \`manual\`). \`tfenv verify archive\` must exit 0
having checked all of them. One **cold** run $cold_note; then $verify_reps **warm**
runs (median), the files now in the page cache ($verify_cached_warm MB of them cached after those
runs).

| run | wall, s | MB/s | CPU (user + sys), s |
| --- | --- | --- | --- |
| cold | $(secs "$verify_cold_ms") | $verify_cold_mbps | $verify_cold_cpu |
| warm (median of $verify_reps) | $(secs "$verify_warm_ms") | $verify_warm_mbps | $verify_warm_cpu |

**Target:** ≥ $VERIFY_TARGET_MBPS MB/s on this machine's disk — cold: $verify_cold_verdict;
warm: $verify_warm_verdict.

**Reading the figures.**

- Warm, no disk is involved, and verify uses $verify_warm_cpu s of CPU for $archive_mb MB:
  $verify_core_mbps MB/s per core. It keeps about $verify_cores_used of the $cpus cores busy,
  so on this machine it cannot go faster than about $(calc "$verify_core_mbps * $cpus" '%.0f') MB/s
  without using less CPU per byte.
- Cold, the difference to the warm run ($(calc "($verify_cold_ms - $verify_warm_ms) / 1000" '%.2f') s) is reading the files from disk.
EOF
		if is "$verify_warm_mbps < $VERIFY_TARGET_MBPS"; then
			cat <<EOF
- The target is missed on CPU, not on the disk: each backup is hashed (SHA-256)
  and parsed as JSON to check its header; at $verify_core_mbps MB/s per core the
  per-byte cost of that is what has to come down.
EOF
		fi
	fi
}

report_locks() {
	cat <<EOF

## Locks: s3 backend with a DynamoDB lock table (moto)

**Method.** A moto server (S3 + DynamoDB emulator, from \`scripts/test.sh --install-only\`)
on a free loopback port, a versioned bucket \`$S3_BUCKET\` and a lock table \`$S3_TABLE\`,
and a generated project with $LOCK_ENV_COUNT environments on the s3 backend (keys
\`env01/terraform.tfstate\`…, \`dynamodb_table\`, Terraform ≥ 1.6 settings), all
initialized with \`tfenv init --all\` ($(secs "$lock_init_ms") s). A lock item for env01 is put into
DynamoDB by hand (terraform's lock JSON: ID, Operation, Who, Version, Created, Path), as
a running apply would hold it. tfenv runs \`aws\` from \`PATH\`: the aws CLI from
\`scripts/test.sh\` ($aws_version) is put there. Median of $reps runs each, alternating:

- \`tfenv lock env01\`: reads the lock item (and must name its holder and ID);
- what scripts do today: \`terraform plan -lock-timeout=0s -input=false -no-color\` with
  \`TF_DATA_DIR=<root>/.terraform/tfenv/env01\` in the terraform root, and the lock ID
  taken from the "Lock Info:" of its error;
- \`tfenv lock --all\`: the $LOCK_ENV_COUNT environments' locks, read concurrently;
- for reference, the aws CLI alone: one \`aws dynamodb get-item --consistent-read\`
  of env01's lock, one \`aws dynamodb batch-get-item\` of all $LOCK_ENV_COUNT lock IDs, and
  \`aws --version\`.
EOF
	cat <<EOF

| command | median, ms | min, ms | CPU (user + sys), ms |
| --- | --- | --- | --- |
| \`tfenv lock env01\` | $lock1_med | $lock1_min | $lock1_cpu_ms |
| \`terraform plan -lock-timeout=0s\` + parse "Lock Info" | $plan_med | $plan_min | |
| \`tfenv lock --all\` ($LOCK_ENV_COUNT environments) | $lockall_med | $lockall_min | $lockall_cpu_ms |
| \`aws dynamodb get-item\` (1 lock) | $getitem_med | $getitem_min | |
| \`aws dynamodb batch-get-item\` ($LOCK_ENV_COUNT locks) | $batch_med | $batch_min | |
| \`aws --version\` (the CLI's start-up) | $awsversion_med | $awsversion_min | |

**Target:** \`tfenv lock --all\` over $LOCK_ENV_COUNT environments at most ${LOCK_TARGET_RATIO}× one \`tfenv lock\` — $lock_verdict.

**Reading the figures.**

- \`tfenv lock env01\` is the aws CLI's time: one \`aws dynamodb get-item\` takes
  $getitem_med ms here (\`aws --version\` alone: $awsversion_med ms), against $lock1_med ms
  for the whole \`tfenv lock\`. \`terraform plan\` on the held lock fails in $plan_med ms, so tfenv is
  ${lock_vs_plan}× its time — but the plan is no way to read a lock: when the lock is
  free it takes it and runs a whole plan.
- \`tfenv lock --all\` reads the locks of environments that share a DynamoDB table,
  endpoint and credentials with one \`batch-get-item\` (up to 100 keys, \`ConsistentRead\`):
  one aws CLI process for all $LOCK_ENV_COUNT environments ($lockall_cpu_ms ms of CPU measured),
  where one process each would cost $LOCK_ENV_COUNT × about $lock1_cpu_ms ms of CPU on $cpus cores.
  That batch request alone, run by hand, takes $batch_med ms.
EOF
}

report() {
	report_machine
	if want startup; then report_startup; fi
	if want status; then report_status; fi
	report_backups
	if want lock; then report_locks; fi
}

say 'done'
printf '\n'
report

if [[ $write_doc -eq 1 ]]; then
	mkdir -p -- "$repo_root/docs"
	doc_tmp="$tmp/performance.md"
	{
		cat <<EOF
# Performance

These figures come from \`scripts/bench.sh --write-doc\`, which rewrites this page;
run it again after a change that could matter. To rerun some sections and print
their figures without touching this page: \`scripts/bench.sh --only backup,lock\`
(sections: \`startup\`, \`status\`, \`backup\`, \`verify\`, \`lock\`).

What it measures, each on projects it generates in a temp folder:

- **Start-up**: \`tfenv envs\` on $ENV_COUNT environments in the demo's layout
  (\`tfenv.toml\`, \`environments/<env>.backend.conf\` + \`.tfvars\`, the local backend,
  the root module of \`examples/quickstart\`): the fixed cost of every command.
- **\`tfenv status\`** on 1, 10 and $ENV_COUNT of those environments, against the same
  number of \`terraform state pull\` calls one after another.
- **Backups** (local backend): \`tfenv backup\` of a $big_mb MB state — time, tfenv's own
  peak memory, throughput — against \`terraform state pull > file\`; and
  \`tfenv verify\` over $ARCHIVE_COUNT backups ($archive_mb MB), cold and warm.
- **Locks** (s3 + DynamoDB on a local moto server): \`tfenv lock\` against the
  \`terraform plan -lock-timeout=0s\` scripts use, and \`tfenv lock --all\` over
  $LOCK_ENV_COUNT environments against one.

Each section says how it measures, the figures, whether its targets are met, and how
to read them. Times are wall-clock times of the whole command.

EOF
		report
		cat <<EOF

## Reproducing

\`\`\`sh
scripts/bench.sh                         # print the figures
scripts/bench.sh --write-doc             # and rewrite this page
scripts/bench.sh --only status,backup    # some sections only (this page is left alone)
scripts/bench.sh --help                  # --runs, --reps, --terraform
\`\`\`

It needs cargo, Terraform ≥ 1.6 (the s3 settings of the lock section; the other
sections run with ≥ 1.0), python3 for the moto server and aws CLI that
\`scripts/test.sh\` installs, and about 3 GB in \`\$TMPDIR\`. It works in a temp folder
it removes, stops the moto server it started, and uses hyperfine for the start-up
figure when it is installed.
EOF
	} >"$doc_tmp"
	mv -- "$doc_tmp" "$repo_root/docs/performance.md"
	say "wrote docs/performance.md"
fi

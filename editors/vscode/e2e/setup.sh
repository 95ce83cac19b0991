#!/usr/bin/env bash
# Installs what the end-to-end tests of the VS Code extension need (tests/test_vscode_e2e.py),
# and builds the extension's .vsix. Idempotent: a second run changes nothing and takes seconds.
#
#   - Debian's chromium, chromium-driver (the browser and its WebDriver) and libkrb5-dev
#     (code-server's native `kerberos` module builds against it), through apt-get;
#   - a Node 22+ for code-server (Debian's Node 20 is too old for it), as the npm registry's
#     `node-linux-<arch>` package;
#   - code-server itself from the npm registry, run by that Node;
#   - the extension's .vsix (`npx @vscode/vsce package`), rebuilt when its sources changed
#     (its file name holds a hash of them).
#
# Everything but the apt packages goes to $TANDEM_E2E_CACHE (default ~/.cache/tandem-vscode-e2e)
# and is kept between runs: the first run takes about 4 minutes on 2 cores, later ones seconds.
# Nothing is downloaded at test time. Usage: bash editors/vscode/e2e/setup.sh [--vsix-only]
set -euo pipefail

CODE_SERVER_VERSION=4.139.1
NODE_VERSION=24.22.3
EXTENSION="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${TANDEM_E2E_CACHE:-$HOME/.cache/tandem-vscode-e2e}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

say() { printf 'e2e setup: %s\n' "$*" >&2; }

apt_packages() {
	local missing=()
	for package in chromium chromium-driver libkrb5-dev; do
		dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
			|| missing+=("$package")
	done
	[ ${#missing[@]} -eq 0 ] && return
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { say "needs root (or sudo) to install: ${missing[*]}"; exit 1; }
		sudo=(sudo)
	fi
	say "apt-get install ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

node_for_code_server() {
	local arch
	case "$(uname -m)" in
		x86_64) arch=x64 ;;
		aarch64) arch=arm64 ;;
		*) say "no node-linux package for $(uname -m)"; exit 1 ;;
	esac
	NODE="$CACHE/node/node_modules/node-linux-$arch/bin/node"
	if [ ! -x "$NODE" ] || [ "$("$NODE" --version)" != "v$NODE_VERSION" ]; then
		say "npm install node-linux-$arch@$NODE_VERSION"
		mkdir -p "$CACHE/node"
		npm install --silent --no-save --prefix "$CACHE/node" "node-linux-$arch@$NODE_VERSION"
	fi
}

code_server() {
	local marker="$CACHE/code-server/.installed-$CODE_SERVER_VERSION-node-$NODE_VERSION"
	[ -f "$marker" ] && return
	say "npm install code-server@$CODE_SERVER_VERSION (a few minutes the first time)"
	rm -rf "$CACHE/code-server"
	mkdir -p "$CACHE/code-server"
	# Its install scripts and native modules must see the Node that will run it.
	PATH="$(dirname "$NODE"):$PATH" npm install --silent --no-save --prefix "$CACHE/code-server" \
		"code-server@$CODE_SERVER_VERSION"
	touch "$marker"
}

# A hash of everything the .vsix is built from: a changed source is a new file name, so a
# stale build is never reused (file times are not trusted: git checkouts and copies reset them).
sources_hash() {
	(cd "$EXTENSION" && find src package.json package-lock.json esbuild.mjs tsconfig.json \
		.vscodeignore README.md LICENSE -type f -print0 | LC_ALL=C sort -z | xargs -0 sha1sum) \
		| sha1sum | cut -c1-12
}

vsix() {
	# One per checkout (keyed by its path) and sources: worktrees side by side never share a build.
	local checkout
	checkout="tandem-$(printf %s "$EXTENSION" | sha1sum | cut -c1-12)"
	local out="$CACHE/vsix/$checkout-$(sources_hash).vsix"
	VSIX="$out"
	[ -f "$out" ] && return
	cd "$EXTENSION"
	[ -d node_modules ] || { say "npm ci in $EXTENSION"; npm ci --silent; }
	say "building $out"
	mkdir -p "$CACHE/vsix"
	rm -f "$CACHE/vsix/$checkout".vsix "$CACHE/vsix/$checkout"-*.vsix  # this checkout's older builds
	npx --no-install vsce package --no-dependencies --allow-missing-repository --out "$out.tmp.vsix" >/dev/null
	mv "$out.tmp.vsix" "$out"
}

if [ "${1:-}" != "--vsix-only" ]; then
	apt_packages
	node_for_code_server
	code_server
	printf '%s\n' "node=$NODE" \
		"code_server=$CACHE/code-server/node_modules/code-server/out/node/entry.js" \
		"chromium=$(command -v chromium)" "chromedriver=$(command -v chromedriver)" \
		>"$CACHE/ready.tmp"
	mv "$CACHE/ready.tmp" "$CACHE/ready"
fi
vsix
say "ready ($CACHE)"
echo "$VSIX"  # the tests read the .vsix's path from this last line

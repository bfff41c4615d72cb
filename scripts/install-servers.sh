#!/usr/bin/env bash
# Make `consul`, `prometheus` and `promtool` binaries available for tests and the demo, without system services.
#
# Uses binaries from PATH when present. Otherwise downloads Debian packages (consul from suite bullseye,
# prometheus from the machine's own suite) through a temporary apt configuration that reuses the Debian
# mirror already configured in /etc/apt/sources.list.d/, and unpacks them with `dpkg -x` into the cache dir.
# Prints the bin directory to put on PATH.
set -euo pipefail

cache="${FIELDSYNC_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache/servers}"
bin="$cache/bin"
mkdir -p "$bin"

have() { [ -x "$bin/$1" ] || command -v "$1" >/dev/null 2>&1; }

need=()
have consul || need+=("consul/bullseye")
{ have prometheus && have promtool; } || need+=("prometheus")  # promtool ships in it
if [ ${#need[@]} -eq 0 ]; then echo "$bin"; exit 0; fi

# The configured Debian mirror and keyring (deb822 *.sources or one-line *.list files).
mirror=""; keyring=""; suite=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  m=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f")
  if [ -n "$m" ]; then
    mirror=$m
    suite=$(awk '/^Suites:/ {print $2; exit}' "$f")
    keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$f")
    break
  fi
done
if [ -z "$mirror" ]; then
  line=$(grep -hE '^deb [^ ]*debian/? ' /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null | head -n1 || true)
  mirror=$(awk '{print $2}' <<<"$line"); suite=$(awk '{print $3}' <<<"$line")
fi
[ -n "$mirror" ] || { echo "install-servers: no Debian mirror configured in /etc/apt/sources.list.d/" >&2; exit 1; }
keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/parts"
cat >"$work/sources.list" <<SRC
deb [signed-by=$keyring] $mirror bullseye main
deb [signed-by=$keyring] $mirror ${suite:-bookworm} main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
          -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work" && apt-get "${apt_opts[@]}" -qq download "${need[@]}" >&2)
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$work/root"
done
for name in consul prometheus promtool; do
  if [ -x "$work/root/usr/bin/$name" ]; then cp "$work/root/usr/bin/$name" "$bin/$name"; fi
done
echo "$bin"

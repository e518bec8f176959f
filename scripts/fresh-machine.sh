#!/usr/bin/env bash
# scripts/fresh-machine.sh — run COMMAND on a brand-new minimal Debian 12 machine (a chroot), to
# prove that the repository's own scripts install everything they need:
#
#   scripts/fresh-machine.sh scripts/demo.sh
#   scripts/fresh-machine.sh scripts/test.sh -R cli
#
# 1. A `debootstrap --variant=minbase bookworm` root, from the Debian mirror the host's apt uses,
#    is built once and cached as a tarball: $CDCPIPE_FRESH_CACHE, by default
#    /var/cache/cdcpipe/bookworm-minbase.tar.gz (rebuilt when missing; delete it to refresh).
# 2. Every run unpacks it into a new temporary directory under $CDCPIPE_FRESH_TMPDIR (/var/tmp)
#    and gives the root what it needs to reach the registries the host reaches: the host's
#    Debian bookworm apt sources and apt proxy/validity settings, /etc/resolv.conf, /etc/hosts,
#    proxy environment variables, ~/.m2/settings.xml, and the host's extra CA certificates
#    (/usr/local/share/ca-certificates), then installs ca-certificates in the root, so the JDK
#    that scripts/deps.sh installs later trusts the same CAs. /usr/sbin/policy-rc.d (exit 101)
#    keeps packages from starting services: the project's scripts start their own.
# 3. `git clone`s this repository at HEAD (committed work only) to /root/cdcpipe in the root.
# 4. Mounts /proc, /sys, /dev, /dev/pts, /dev/shm and runs COMMAND [ARGS...] with chroot in
#    /root/cdcpipe, as root, with a clean environment (HOME=/root, PATH, LANG=C.UTF-8, TERM, CI,
#    proxy variables).
# 5. Always — on success, failure, Ctrl-C or TERM — stops whatever still runs in the root,
#    unmounts everything (lazily if need be), checks with findmnt that nothing under the
#    temporary directory is still mounted, and removes it.
#
# Exit status: COMMAND's. 125 when the fresh root could not be made (the reason is printed:
# not root, no debootstrap, no mirror, mount refused, ...) or could not be cleaned up; 2 for
# a usage error.
#
# Environment: CDCPIPE_FRESH_CACHE (tarball path), CDCPIPE_FRESH_TMPDIR (where temporary roots
# go), CDCPIPE_FRESH_MIRROR (Debian mirror URL instead of the host's, e.g.
# http://deb.debian.org/debian).
# shellcheck disable=SC2317 # the cleanup functions run from traps
set -euo pipefail

PROG=fresh-machine.sh
SUITE=bookworm
CLONE=/root/cdcpipe
CACHE=${CDCPIPE_FRESH_CACHE:-/var/cache/cdcpipe/$SUITE-minbase.tar.gz}
TMPBASE=${CDCPIPE_FRESH_TMPDIR:-/var/tmp}
PROXY_VARS=(http_proxy https_proxy ftp_proxy all_proxy no_proxy
  HTTP_PROXY HTTPS_PROXY FTP_PROXY ALL_PROXY NO_PROXY)

say() { echo "$PROG: $*" >&2; }
die() {
  say "cannot make the fresh Debian 12 root: $*"
  exit 125
}
usage() {
  sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

(($# > 0)) || usage
[[ $1 == -h || $1 == --help ]] && usage

T_START=$SECONDS
WORK=      # the temporary directory (the root is $WORK/root); everything under it is removed
ROOT=
CHILD=
CLEANED=0

# ------------------------------------------------------------------ cleanup

# Processes whose root directory is inside $WORK (what COMMAND left running, or a debootstrap).
root_pids() {
  local p link
  for p in /proc/[0-9]*; do
    link=$(readlink "$p/root" 2>/dev/null) || continue
    [[ $link == "$WORK" || $link == "$WORK"/* ]] && echo "${p#/proc/}"
  done
  return 0
}

stop_root_processes() {
  local pids
  pids=$(root_pids)
  [[ -z $pids ]] && return 0
  say "stopping what still runs in the root: ${pids//$'\n'/ }"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 100); do
    pids=$(root_pids)
    [[ -z $pids ]] && return 0
    sleep 0.1
  done
  say "still running after 10 s, killing: ${pids//$'\n'/ }"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for _ in $(seq 50); do
    [[ -z $(root_pids) ]] && return 0
    sleep 0.1
  done
}

# Mount points at or under $WORK, deepest first (mountinfo's 5th field).
mounts_under() {
  awk -v w="$WORK" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

unmount_all() {
  local m pass
  for pass in 1 2 3; do
    [[ -z $(mounts_under) ]] && return 0
    while read -r m; do
      [[ -n $m ]] || continue
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
        say "could not unmount $m (pass $pass)"
    done < <(mounts_under)
  done
  [[ -z $(mounts_under) ]]
}

cleanup() {
  local rc=$1
  ((CLEANED)) && return 0
  CLEANED=1
  trap '' INT TERM
  [[ -n $WORK && -d $WORK ]] || return 0
  stop_root_processes
  if ! unmount_all; then
    say "ERROR: still mounted under $WORK (left in place, not removed):"
    findmnt -rn -o TARGET | grep -F "$WORK" >&2 || true
    return 125
  fi
  # findmnt is the judge: nothing below $WORK may be mounted before it is removed.
  if findmnt -rn -o TARGET | grep -qF "$WORK"; then
    say "ERROR: findmnt still lists mounts under $WORK (left in place, not removed)"
    return 125
  fi
  rm -rf --one-file-system "$WORK" || { say "ERROR: could not remove $WORK"; return 125; }
  return "$rc"
}

on_exit() {
  local rc=$? crc=0
  cleanup "$rc" || crc=$?
  if ((crc != 0 && rc == 0)); then rc=$crc; fi
  [[ -n $WORK && ! -e $WORK ]] && say "temporary root removed, nothing left mounted ($((SECONDS - T_START)) s in all)"
  exit "$rc"
}
trap on_exit EXIT
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "terminated (SIGTERM)"; exit 143' TERM

# ------------------------------------------------------------------ preconditions

((EUID == 0)) || die "it needs root (debootstrap, mount and chroot); run it as root or with sudo"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v git >/dev/null || die "git is not installed on the host"
REPO=$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null) ||
  die "$SCRIPT_DIR is not inside a git work tree (the root gets a git clone of it)"
SHA=$(git -C "$REPO" rev-parse --verify -q 'HEAD^{commit}') || die "$REPO has no commit at HEAD"
BRANCH=$(git -C "$REPO" symbolic-ref -q --short HEAD || true)

for tool in apt-get apt-config dpkg chroot mount umount findmnt flock tar gzip awk sed mktemp; do
  command -v "$tool" >/dev/null || die "the host has no '$tool' (this script needs a Debian host)"
done

if ! command -v debootstrap >/dev/null; then
  say "debootstrap is not installed: installing it with apt-get"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      debootstrap debian-archive-keyring; } >&2 ||
    die "installing debootstrap with apt-get failed (see above)"
fi
command -v debootstrap >/dev/null || die "debootstrap is still missing after apt-get install"

mkdir -p "$TMPBASE" || die "cannot create $TMPBASE (CDCPIPE_FRESH_TMPDIR)"
WORK=$(mktemp -d "$TMPBASE/cdcpipe-fresh.XXXXXX") || die "mktemp in $TMPBASE failed"
WORK=$(cd "$WORK" && pwd -P)
ROOT=$WORK/root

# ------------------------------------------------------------------ the host's apt sources

# "URI SUITE COMPONENT" for each of the host's Debian bookworm suites (bookworm,
# bookworm-updates, bookworm-security), read from what `apt-get update` would fetch (works for
# sources.list and deb822 files alike, without touching the host's lists).
host_sources() {
  local lists=$WORK/host-lists
  mkdir -p "$lists/partial"
  apt-get -o Dir::State::Lists="$lists" update --print-uris 2>/dev/null |
    sed -nE "s#^'(.+)/dists/($SUITE(-updates|-security)?)/([^/]+)/binary-[^/]+/Packages.*#\1 \2 \4#p" |
    sort -u
}
HOST_SOURCES=$(host_sources || true)

if [[ -n ${CDCPIPE_FRESH_MIRROR:-} ]]; then
  MIRROR=${CDCPIPE_FRESH_MIRROR%/}
  ROOT_SOURCES=$(printf '%s\n' "$MIRROR $SUITE main" "$MIRROR $SUITE-updates main"
    awk -v s="$SUITE-security" '$2 == s' <<<"$HOST_SOURCES")
else
  MIRROR=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$HOST_SOURCES")
  [[ -n $MIRROR ]] || die "the host's apt sources have no Debian '$SUITE' suite to take the \
mirror from (apt-get update --print-uris lists none); set CDCPIPE_FRESH_MIRROR=http://…/debian"
  ROOT_SOURCES=$HOST_SOURCES
fi
case $MIRROR in
  http://* | https://* | ftp://* | file://*) ;;
  *) die "mirror '$MIRROR' is not an http(s)/ftp/file URL debootstrap can use; set CDCPIPE_FRESH_MIRROR" ;;
esac

# The host's apt settings that decide whether a repository is reachable and accepted.
APT_CONF=$(apt-config dump 2>/dev/null |
  grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date|Retries|ForceIPv4)\b' || true)

# debootstrap fetches with wget: give it apt's proxy when the environment has none.
if [[ -z ${http_proxy:-} ]]; then
  p=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -nE "s/^p='(.*)'$/\1/p")
  [[ $p == http*://* ]] && export http_proxy=$p
fi

# ------------------------------------------------------------------ the cached minbase root

build_cache() {
  local dir=$WORK/debootstrap log=$WORK/debootstrap.log t0=$SECONDS arch
  arch=$(dpkg --print-architecture)
  say "building the $SUITE minbase root with debootstrap from $MIRROR (once; cached in $CACHE)"
  mkdir -p "$(dirname "$CACHE")" || die "cannot create $(dirname "$CACHE") (CDCPIPE_FRESH_CACHE)"
  if ! debootstrap --variant=minbase --arch="$arch" "$SUITE" "$dir" "$MIRROR" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "debootstrap --variant=minbase $SUITE from $MIRROR failed (its last lines above)"
  fi
  rm -f "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*_* 2>/dev/null || true
  unmount_all || die "debootstrap left mounts under $WORK"
  tar -C "$dir" --numeric-owner -czf "$CACHE.tmp.$$" . || {
    rm -f "$CACHE.tmp.$$"
    die "cannot write $CACHE.tmp.$$"
  }
  mv -f "$CACHE.tmp.$$" "$CACHE"
  rm -rf --one-file-system "$dir"
  say "cached $CACHE ($(du -h "$CACHE" | cut -f1)): debootstrap and tar took $((SECONDS - t0)) s"
}

unpack() {
  mkdir -p "$ROOT"
  tar -C "$ROOT" --numeric-owner -xzpf "$CACHE" 2>"$WORK/tar.err" && [[ -x $ROOT/usr/bin/apt-get ]]
}

mkdir -p "$(dirname "$CACHE")" || die "cannot create $(dirname "$CACHE") (CDCPIPE_FRESH_CACHE)"
exec 8>"$CACHE.lock"
flock 8 # one builder at a time; readers wait for a complete tarball
[[ -s $CACHE ]] || build_cache
if ! unpack; then
  say "the cached root $CACHE does not unpack ($(head -c 200 "$WORK/tar.err")): rebuilding it"
  rm -rf --one-file-system "$ROOT"
  build_cache
  unpack || die "the freshly built $CACHE does not unpack: $(head -c 200 "$WORK/tar.err")"
fi
exec 8>&-
say "fresh $SUITE minbase root in $ROOT"

# ------------------------------------------------------------------ configure the root

cat >"$ROOT/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
# written by cdcpipe's scripts/fresh-machine.sh: packages never start services in this root
exit 101
EOF
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hosts"
cat /etc/resolv.conf >"$ROOT/etc/resolv.conf" 2>/dev/null || : >"$ROOT/etc/resolv.conf"
cat /etc/hosts >"$ROOT/etc/hosts" 2>/dev/null || echo '127.0.0.1 localhost' >"$ROOT/etc/hosts"

rm -f "$ROOT"/etc/apt/sources.list.d/*
awk '{ k = $1 " " $2; if (!(k in c)) { o[++n] = k; c[k] = $3 } else c[k] = c[k] " " $3 }
     END { for (i = 1; i <= n; i++) print "deb " o[i] " " c[o[i]] }' <<<"$ROOT_SOURCES" \
  >"$ROOT/etc/apt/sources.list"
[[ -z $APT_CONF ]] || printf '// the host'"'"'s settings, copied by scripts/fresh-machine.sh\n%s\n' \
  "$APT_CONF" >"$ROOT/etc/apt/apt.conf.d/90cdcpipe-host"

mkdir -p "$ROOT/usr/local/share/ca-certificates"
if [[ -d /usr/local/share/ca-certificates ]]; then
  cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
fi
if [[ -f $HOME/.m2/settings.xml ]]; then
  mkdir -p "$ROOT/root/.m2"
  cp "$HOME/.m2/settings.xml" "$ROOT/root/.m2/settings.xml"
fi

# ------------------------------------------------------------------ the clone

say "cloning $REPO at $SHA${BRANCH:+ ($BRANCH)} to $CLONE"
dirty=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)
((dirty == 0)) || say "note: $dirty uncommitted or untracked paths in $REPO are not in the clone"
git clone -q --no-hardlinks "$REPO" "$ROOT$CLONE" || die "git clone of $REPO failed"
git -C "$ROOT$CLONE" fetch -q origin HEAD || die "git fetch of $REPO's HEAD failed"
if [[ -n $BRANCH ]]; then
  git -C "$ROOT$CLONE" checkout -q -B "$BRANCH" "$SHA"
else
  git -C "$ROOT$CLONE" checkout -q --detach "$SHA"
fi || die "cannot check out $SHA in the clone"
[[ $(git -C "$ROOT$CLONE" rev-parse HEAD) == "$SHA" ]] || die "the clone is not at $SHA"

# ------------------------------------------------------------------ mounts

mount_one() { # TARGET MOUNT-ARGS...
  local target=$ROOT$1
  shift
  mount "$@" "$target" || die "mount $* $target refused (does this host allow mounts?)"
  mount --make-private "$target" 2>/dev/null || true
}
mount_one /proc -t proc proc
mount_one /sys -t sysfs sysfs
mount_one /dev --bind /dev
mount_one /dev/pts --bind /dev/pts
mount_one /dev/shm -t tmpfs -o mode=1777,nosuid,nodev shm

ENVV=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "TERM=${TERM:-dumb}")
[[ -n ${CI+set} ]] && ENVV+=("CI=$CI")
for v in "${PROXY_VARS[@]}"; do
  [[ -n ${!v:-} ]] && ENVV+=("$v=${!v}")
done

in_root() { chroot "$ROOT" /usr/bin/env -i "${ENVV[@]}" DEBIAN_FRONTEND=noninteractive "$@" </dev/null; }

# ca-certificates first (apt over http needs none), with the host's extra CAs already in
# /usr/local/share/ca-certificates: every later TLS client, the JDK's truststore included
# (ca-certificates-java), trusts them.
say "installing ca-certificates in the root (apt-get update + install)"
t0=$SECONDS
in_root apt-get update -qq >&2 || die "apt-get update in the root failed (mirror $MIRROR)"
in_root apt-get install -y -qq --no-install-recommends ca-certificates >"$WORK/ca.log" 2>&1 ||
  { cat "$WORK/ca.log" >&2; die "apt-get install ca-certificates in the root failed"; }
in_root update-ca-certificates >/dev/null || die "update-ca-certificates in the root failed"
while IFS= read -r crt; do
  [[ -n $crt ]] || continue
  name=$(basename "$crt" .crt)
  [[ -e $ROOT/etc/ssl/certs/$name.pem ]] || die "the host's CA $crt is not in the root's /etc/ssl/certs"
done < <(find "$ROOT/usr/local/share/ca-certificates" -name '*.crt' 2>/dev/null)
say "root ready in $((SECONDS - T_START)) s (ca-certificates: $((SECONDS - t0)) s)"

# ------------------------------------------------------------------ COMMAND

say "running in the fresh root, in $CLONE: $*"
t0=$SECONDS
rc=0
# In the background so that INT/TERM reach our trap at once (wait is interruptible); stdin
# passed on explicitly (a background job would get /dev/null), if there is one.
exec 3</dev/null
{ : <&0; } 2>/dev/null && exec 3<&0
# shellcheck disable=SC2016 # $1 and $@ belong to the inner bash
chroot "$ROOT" /usr/bin/env -i "${ENVV[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' \
  fresh-machine "$CLONE" "$@" <&3 3<&- &
CHILD=$!
wait "$CHILD" || rc=$?
say "'$*' exited with status $rc after $((SECONDS - t0)) s in the fresh root"
exit "$rc"

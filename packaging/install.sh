#!/bin/sh
# Installs (or removes) ferry from the linux-x64 tarball.
#
#   tar xzf ferry-<version>-linux-x64.tar.gz
#   sudo ./ferry-<version>-linux-x64/install.sh            # install or upgrade
#   sudo ./install.sh ferry-<version>-linux-x64.tar.gz     # same, from the archive
#   sudo /opt/ferry/install.sh --uninstall [--purge]
#
# Install puts the tree in PREFIX (/opt/ferry), links BINDIR/ferry
# (/usr/local/bin/ferry) to PREFIX/bin/ferry, creates /etc/ferry (0700) with
# agent.yaml (0600) from the sample when it does not exist yet (an existing
# config is never touched), and writes the ferry-agent and ferry-receiver
# units to /etc/systemd/system. When systemd is running it reloads it and
# restarts the services that were running (an upgrade); it enables nothing
# unless --enable is given, because the sample config must be edited first.
#
# Uninstall stops and disables the services, removes the units, the link
# and PREFIX. It keeps /etc/ferry, /var/lib/ferry and /var/log/ferry unless
# --purge is given.
#
# Options:
#   --prefix DIR    install directory (default /opt/ferry)
#   --bindir DIR    where the `ferry` link goes (default /usr/local/bin)
#   --root DIR      install below DIR instead of / (images, tests); no systemctl
#   --enable        enable and start ferry-agent after installing
#   --no-systemd    do not install the units
#   --uninstall     remove ferry          --purge   with --uninstall: also config, state, logs
set -eu

prefix=/opt/ferry
bindir=/usr/local/bin
root=
enable=0
systemd=1
action=install
purge=0
archive=

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "ferry: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --bindir) [ $# -ge 2 ] || die "--bindir needs a directory"; bindir=$2; shift 2 ;;
    --bindir=*) bindir=${1#--bindir=}; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --enable) enable=1; shift ;;
    --no-systemd) systemd=0; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) archive=$1; shift ;;
  esac
done

case "$prefix" in /*) ;; *) die "--prefix must be absolute: $prefix" ;; esac
case "$bindir" in /*) ;; *) die "--bindir must be absolute: $bindir" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] && [ "$prefix" != / ] || die "refusing --prefix /"
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root is not a directory"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=
fi
[ "$purge" = 0 ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
  die "run as root (or give --root DIR to install below a directory)"
fi

dest=$root$prefix
link=$root$bindir/ferry
unitdir=$root/etc/systemd/system
etc=$root/etc/ferry
units="ferry-agent.service ferry-receiver.service"

# systemctl only for the live system with systemd as init.
systemd_live() {
  [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

is_ferry_unit() {
  [ -f "$1" ] && grep -q '^# ferry ' "$1"
}

uninstall() {
  if systemd_live; then
    for u in $units; do
      if [ -f "$unitdir/$u" ]; then
        systemctl disable --now "$u" >/dev/null 2>&1 || true
      fi
    done
  fi
  for u in $units; do
    if is_ferry_unit "$unitdir/$u"; then rm -f "$unitdir/$u"; fi
  done
  if systemd_live; then systemctl daemon-reload || true; fi
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$prefix/bin/ferry" ]; then rm -f "$link"; fi
  if [ -d "$dest" ]; then
    [ -f "$dest/dist/cli/bin.js" ] || die "$dest does not look like a ferry install; not removing it"
    rm -rf "$dest"
  fi
  if [ "$purge" = 1 ]; then
    rm -rf "$etc" "$root/var/lib/ferry" "$root/var/log/ferry" "$root/var/lib/ferry-receiver" "$root/var/log/ferry-receiver"
    say "removed $prefix, its link, units, config, state and logs"
  else
    say "removed $prefix, its link and units; kept /etc/ferry, /var/lib/ferry, /var/log/ferry (--purge removes them)"
  fi
}

if [ "$action" = uninstall ]; then
  uninstall
  exit 0
fi

# ---------------------------------------------------------------- install
tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
if [ -n "$archive" ]; then
  [ -f "$archive" ] || die "no such archive: $archive"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-install.XXXXXX")
  tar -xzf "$archive" -C "$tmp" || die "cannot extract $archive"
  src=$(find "$tmp" -mindepth 2 -maxdepth 2 -name install.sh -exec dirname {} \; | head -n 1)
  [ -n "$src" ] || die "$archive is not a ferry tarball"
else
  src=$(cd "$(dirname "$0")" && pwd)
fi
[ -f "$src/dist/cli/bin.js" ] && [ -x "$src/bin/ferry" ] ||
  die "$src is not an extracted ferry tarball (give the .tar.gz as an argument)"
[ "$src" != "$dest" ] || die "already installed in $dest (run the install.sh of the new tarball to upgrade)"

# Copy next to the destination, then swap: a running agent keeps its open
# files and the next start uses the new tree.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new" "$dest.old"
mkdir -p "$dest.new"
(cd "$src" && tar -cf - .) | (cd "$dest.new" && tar -xf - --no-same-owner)
chmod 0755 "$dest.new"
if [ -d "$dest" ]; then
  [ -f "$dest/dist/cli/bin.js" ] || die "$dest exists and is not a ferry install; not replacing it"
  mv "$dest" "$dest.old"
fi
mv "$dest.new" "$dest"
rm -rf "$dest.old"

mkdir -p "$(dirname "$link")"
ln -sfn "$prefix/bin/ferry" "$link"

# Config: created once, never overwritten.
if [ ! -d "$etc" ]; then
  mkdir -p "$etc"
  chmod 0700 "$etc"
fi
if [ ! -e "$etc/agent.yaml" ] && [ -f "$dest/agent.sample.yaml" ]; then
  (umask 077 && cp "$dest/agent.sample.yaml" "$etc/agent.yaml")
  chmod 0600 "$etc/agent.yaml"
  created_config=1
else
  created_config=0
fi

if [ "$systemd" = 1 ]; then
  mkdir -p "$unitdir"
  for u in $units; do
    # The shipped units run /usr/bin/ferry (the .deb's path); point them at the link.
    sed "s#^ExecStart=/usr/bin/ferry #ExecStart=$bindir/ferry #" "$dest/systemd/$u" >"$unitdir/$u.tmp"
    chmod 0644 "$unitdir/$u.tmp"
    mv "$unitdir/$u.tmp" "$unitdir/$u"
  done
  if systemd_live; then
    systemctl daemon-reload
    systemctl try-restart $units || true
    if [ "$enable" = 1 ]; then systemctl enable --now ferry-agent.service; fi
  fi
fi

version=$("$dest/bin/ferry" --version 2>/dev/null) || version="(does not run: try $dest/bin/ferry --version)"
say "installed $version in $prefix; $bindir/ferry -> $prefix/bin/ferry"
if [ "$created_config" = 1 ]; then
  say "edit /etc/ferry/agent.yaml (it holds placeholder credentials), then: systemctl enable --now ferry-agent"
fi

#!/usr/bin/env bash
# Builds ferry's release artefacts (run through `npm run package`):
#   <out>/ferry-<version>-linux-x64.tar.gz   dist/, production node_modules
#                                            (linux-x64-gnu native addons),
#                                            runtime/ (node, its C/C++ libraries
#                                            and their loader), native-probes/,
#                                            systemd/, bin/ferry, install.sh,
#                                            agent.sample.yaml, doc/
#   <out>/ferry_<version>_amd64.deb           the same tree under /usr/lib/ferry
#   <out>/ferry-<version>-1.x86_64.rpm        the same tree under /usr/lib/ferry
#                                            (RHEL/CentOS 7+, SLES 12+, Amazon Linux)
#   <out>/ferry-<version>-win-x64.zip         the Windows layout (win32-x64-msvc
#                                            addons, WinSW XML sample; node.exe
#                                            and WinSW are added by the operator)
#   <out>/ferry-<version>-linux-x64           single executable (Node SEA: this
#                                            machine's node + the bundled app;
#                                            uses the host's glibc, so >= 2.28)
# The tree is what `npm ci --omit=dev` installs from package-lock.json into a
# staging directory: nothing from the developer's node_modules leaks in.
# runtime/ is this machine's node with every library `ldd` lists for it and
# for the native addons, and ld-linux-x86-64.so.2: bin/ferry starts node
# through that loader, so the host's glibc version does not matter (2.17+).
#
# Options:
#   --out DIR       output directory (default packaging/out)
#   --skip-build    use the existing dist/ as it is (tests build once, up front);
#                   otherwise tsc compiles a clean copy into the staging area
#   --fast          light compression (tests); the default compresses hard
#   --no-deb        skip the .deb        --no-windows   skip the Windows zip
#   --no-rpm        skip the .rpm        --no-sea       skip the single executable
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=$here/out
build=1
deb=1
rpm=1
windows=1
sea=1
gz_level=-9
deb_compress=(-Zxz)
rpm_payload=w9.xzdio
zip_level=-9
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --skip-build) build=0; shift ;;
    --fast) gz_level=-1; deb_compress=(-Zgzip -z1); rpm_payload=w1.gzdio; zip_level=-1; shift ;;
    --no-deb) deb=0; shift ;;
    --no-rpm) rpm=0; shift ;;
    --no-windows) windows=0; shift ;;
    --no-sea) sea=0; shift ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

log() { printf 'package: [%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'package: %s\n' "$*" >&2; exit 1; }

cd "$repo"
version=$(node -p 'require("./package.json").version')
[ -n "$version" ] || die "no version in package.json"
# Reproducible archives: every file gets the time of the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
written=()

# A clean compile into the staging area (the repository's dist/ may hold
# outputs of deleted sources); --skip-build takes dist/ as it is.
dist=$repo/dist
if [ "$build" = 1 ]; then
  log "compiling (tsc) into the staging area"
  mkdir -p "$work/build"
  node_modules/.bin/tsc -p tsconfig.json --outDir "$work/build/dist" --sourceMap false || die "tsc failed"
  # The frame schemas with the parts of zod they use, in one file (start-up of every pass: bundle-frame-schemas.mjs).
  node packaging/bundle-frame-schemas.mjs "$work/build/dist" || die "bundling the frame schemas failed"
  # The native lister (dist/native/ferry-fs.node): a release carries it (needs cc and Node's headers).
  FERRY_REQUIRE_NATIVE=1 node packaging/build-native.mjs "$work/build/dist" || die "building the native module failed"
  chmod +x "$work/build/dist/cli/bin.js"
  # Not TypeScript, so tsc does not copy it: the demo's server recipe (ferry demo --system).
  install -m 0755 src/demo/debian-server.sh "$work/build/dist/demo/debian-server.sh"
  dist=$work/build/dist
fi
[ -f "$dist/cli/bin.js" ] || die "$dist/cli/bin.js is missing: run npm run build (or drop --skip-build)"

# Production dependencies for one platform, installed from the lock file.
#   $1 staging dir; remaining args: npm's platform selectors (--os= --cpu= --libc=)
#   $1 staging dir, $2 the prebuilds/ directory to keep (linux-x64, win32-x64);
#   remaining args: npm's platform selectors (--os= --cpu= --libc=)
install_deps() {
  local dir=$1 keep=$2
  shift 2
  mkdir -p "$dir"
  cp package.json package-lock.json "$dir/"
  (cd "$dir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline "$@" >/dev/null) ||
    die "npm ci --omit=dev $* failed"
  rm -f "$dir/node_modules/.package-lock.json"
  # npm's command links for the packages' own CLIs (pino, yaml, …): ferry
  # never runs them, and they are links into the tree that packages flag.
  rm -rf "$dir/node_modules/.bin"
  # Packages that carry prebuilt binaries for every platform (tar-stream's
  # optional bare-* modules for the Bare runtime): keep only this platform's.
  find "$dir/node_modules" -type d -name prebuilds -prune -print0 |
    while IFS= read -r -d '' pb; do
      find "$pb" -mindepth 1 -maxdepth 1 -type d ! -name "$keep" -exec rm -rf {} +
    done
  find "$dir/node_modules" \( -name .gitattributes -o -name .gitignore -o -name .npmignore -o -name .travis.yml \) -type f -delete
  # Some packages are published with execute bits on plain files (cli-progress
  # 3.12: README.md, *.js at 0744): a file with an execute bit keeps it (0755)
  # only when it is a script (#!) or an ELF binary, as lintian expects.
  find "$dir/node_modules" -type f -perm /111 -print0 |
    while IFS= read -r -d '' f; do
      magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
      case $magic in
        2321* | 7f454c46) chmod 0755 "$f" ;;
        *) chmod 0644 "$f" ;;
      esac
    done
}

# Files common to every layout: package.json (the CLI reads its version
# there), dist/ without source maps, native-probes/.
copy_app() {
  local dir=$1
  mkdir -p "$dir"
  cp package.json "$dir/"
  tar -C "$(dirname "$dist")" --exclude='*.map' --exclude='*.d.ts' -cf - dist | tar -C "$dir" -xf -
  cp -R native-probes "$dir/"
}

# ---------------------------------------------------------------- tarball
name=ferry-$version-linux-x64
tree=$work/$name
log "staging $name"
install_deps "$tree" linux-x64 --os=linux --cpu=x64 --libc=glibc
for addon in '@antoniomuso/lz4-napi-linux-x64-gnu/lz4-napi.linux-x64-gnu.node' '@napi-rs/xattr-linux-x64-gnu/xattr.linux-x64-gnu.node'; do
  [ -f "$tree/node_modules/$addon" ] || die "native addon $addon is missing from the staged node_modules"
done
# Node 20 itself needs glibc 2.28 (RHEL 8, Debian 10, Ubuntu 20.04): the
# addons must not ask for more.
check_glibc() {
  command -v objdump >/dev/null || return 0
  local need
  need=$(objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ -n "$need" ] && [ "$(printf '%s\n2.28\n' "$need" | sort -V | tail -1)" != "2.28" ]; then
    die "$1 needs glibc $need (> 2.28)"
  fi
}
while IFS= read -r -d '' so; do check_glibc "$so"; done < <(find "$tree/node_modules" "$dist" -name '*.node' -print0)
copy_app "$tree"
cp -R systemd "$tree/"
mkdir -p "$tree/bin" "$tree/doc"
install -m 0755 packaging/ferry-launcher.sh "$tree/bin/ferry"
install -m 0755 packaging/install.sh "$tree/install.sh"
[ -f packaging/agent.sample.yaml ] && install -m 0644 packaging/agent.sample.yaml "$tree/agent.sample.yaml"
install -m 0644 packaging/receiver.sample.env "$tree/receiver.sample.env"
cp docs/*.md "$tree/doc/" 2>/dev/null || true
# The node in runtime/ and in the single executable: this machine's.
# A distribution's node may be a small binary linked to libnode.so: only a
# self-contained one (nodejs.org, NodeSource) can be carried elsewhere.
portable_node() {
  node_bin=$(readlink -f "$(command -v node)")
  if command -v objdump >/dev/null && objdump -p "$node_bin" | grep -q 'NEEDED.*libnode'; then
    die "$node_bin is linked to libnode (a distribution build): use the official Node.js binary"
  fi
  check_glibc "$node_bin"
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    die "this node is $(node --version), older than 20.19"
}
portable_node

# runtime/: node, every shared library `ldd` lists for it and for the native
# addons (libc, libm, libdl, libpthread, librt, libstdc++, libgcc_s: all from
# this machine, so they match each other and the loader), and the loader
# itself. bin/ferry runs `runtime/ld-linux-x86-64.so.2 --library-path
# runtime/lib runtime/node ...`: the loader's own search path, not an
# environment variable, so nothing leaks into the tools ferry runs. Addons
# dlopen'ed by that node resolve their libraries the same way.
stage_runtime() {
  local rt=$1 f line soname path loader=
  mkdir -p "$rt/lib" "$rt/licenses"
  install -m 0755 "$node_bin" "$rt/node"
  local -A libs=()
  for f in "$node_bin" $(find "$tree/node_modules" -name '*.node' | LC_ALL=C sort); do
    while IFS= read -r line; do
      case "$line" in
        *'=> not found'*) die "ldd $f: ${line% =>*} not found" ;;
        *' => /'*) soname=${line%% =>*}; soname=${soname//[[:space:]]/}; path=${line#*=> }; path=${path%% (*}; libs[$soname]=$path ;;
        *ld-linux-x86-64.so.2*) path=${line%% (*}; path=${path//[[:space:]]/}; loader=$path ;;
      esac
    done < <(ldd "$f")
  done
  [ -n "$loader" ] || die "ldd $node_bin names no ld-linux-x86-64.so.2 (not an x86-64 glibc build?)"
  install -m 0755 "$(readlink -f "$loader")" "$rt/ld-linux-x86-64.so.2"
  for soname in "${!libs[@]}"; do
    install -m 0644 "$(readlink -f "${libs[$soname]}")" "$rt/lib/$soname"
  done
  # What is in there and where it came from: the C libraries are LGPL, libstdc++
  # and libgcc_s GPL with the runtime exception; their licences travel along.
  {
    echo "# file  package version (this machine's $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"))"
    for f in node ld-linux-x86-64.so.2 $(cd "$rt/lib" && LC_ALL=C ls); do
      case "$f" in node) path=$node_bin ;; ld-linux*) path=$(readlink -f "$loader") ;; *) path=$(readlink -f "${libs[$f]}") ;; esac
      local pkg
      pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null || true)
      pkg=${pkg%%:*}
      pkg=${pkg%%,*}
      if [ -n "$pkg" ]; then
        printf '%s  %s %s\n' "$f" "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)"
        [ -f "/usr/share/doc/$pkg/copyright" ] && install -m 0644 "/usr/share/doc/$pkg/copyright" "$rt/licenses/$pkg.copyright"
      else
        printf '%s  (not from a package: %s)\n' "$f" "$path"
      fi
    done
    echo "node $(node --version)"
  } >"$rt/SOURCES"
  chmod 0644 "$rt/SOURCES"
  # A node not from a Debian package (nodejs.org tarball): its LICENSE beside it.
  if [ ! -f "$rt/licenses/nodejs.copyright" ] && [ -f "$(dirname "$node_bin")/../LICENSE" ]; then
    install -m 0644 "$(dirname "$node_bin")/../LICENSE" "$rt/licenses/node.LICENSE"
  fi
  # The bundle runs: the loader starts the node with the bundled libraries.
  [ "$("$rt/ld-linux-x86-64.so.2" --library-path "$rt/lib" "$rt/node" -p 'process.versions.node')" = "$(node -p 'process.versions.node')" ] ||
    die "the bundled runtime does not start"
}
log "staging runtime/ (node $(node --version) and its libraries)"
stage_runtime "$tree/runtime"

if [ "$sea" = 1 ]; then
  sea_file=$out/ferry-$version-linux-x64
  node packaging/sea/build-sea.mjs "$tree" "$node_bin" "$sea_file" || die "single executable build failed"
  written+=("$(basename "$sea_file")")
  log "wrote $sea_file ($(du -h "$sea_file" | cut -f1))"
fi
tar_opts=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --format=gnu)
tar -C "$work" "${tar_opts[@]}" -cf - "$(basename "$tree")" | gzip -n "$gz_level" >"$out/$name.tar.gz"
written+=("$name.tar.gz")
log "wrote $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"

# ---------------------------------------------------------------- .deb
if [ "$deb" = 1 ]; then
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found (use --no-deb)"
  droot=$work/deb
  # Set DEB_MAINTAINER="Name <address>" for a published package.
  maintainer=${DEB_MAINTAINER:-ferry maintainers <ferry@example.com>}
  lib=$droot/usr/lib/ferry
  mkdir -p "$lib/bin" "$droot/usr/bin" "$droot/lib/systemd/system" "$droot/etc/ferry" "$droot/usr/share/doc/ferry" "$droot/DEBIAN"
  # Hard links, not copies: 100 MB of node is staged once.
  cp -Rl "$tree/node_modules" "$tree/runtime" "$lib/"
  copy_app "$lib"
  install -m 0755 packaging/ferry-launcher.sh "$lib/bin/ferry"
  ln -s ../lib/ferry/bin/ferry "$droot/usr/bin/ferry"
  # The shipped units already run /usr/bin/ferry.
  install -m 0644 systemd/ferry-agent.service systemd/ferry-receiver.service "$droot/lib/systemd/system/"
  chmod 0700 "$droot/etc/ferry"
  install -m 0600 packaging/agent.sample.yaml "$droot/etc/ferry/agent.yaml"
  cp docs/*.md "$droot/usr/share/doc/ferry/" 2>/dev/null || true
  year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
  sed "s/@YEAR@/$year/" packaging/deb/copyright >"$droot/usr/share/doc/ferry/copyright"
  chmod 0644 "$droot/usr/share/doc/ferry/copyright"
  # A native package (no Debian revision): its changelog is changelog.gz.
  printf 'ferry (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
    "$version" "$version" "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -n -9 >"$droot/usr/share/doc/ferry/changelog.gz"
  mkdir -p "$droot/usr/share/lintian/overrides"
  install -m 0644 packaging/deb/lintian-overrides "$droot/usr/share/lintian/overrides/ferry"
  for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$droot/DEBIAN/$s"; done
  echo /etc/ferry/agent.yaml >"$droot/DEBIAN/conffiles"
  size=$(du -sk --exclude=DEBIAN "$droot" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s|@MAINTAINER@|$maintainer|" packaging/deb/control >"$droot/DEBIAN/control"
  find "$droot" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  deb_file=$out/ferry_${version}_amd64.deb
  dpkg-deb --root-owner-group "${deb_compress[@]}" --build "$droot" "$deb_file" >/dev/null
  written+=("$(basename "$deb_file")")
  log "wrote $deb_file ($(du -h "$deb_file" | cut -f1))"
fi

# ---------------------------------------------------------------- .rpm
# For the RHEL family (CentOS/RHEL 7+, Amazon Linux 2, SLES 12+): the same
# tree as the .deb under /usr/lib/ferry, the units in /usr/lib/systemd/system.
# AutoReqProv is off: everything the binaries need is in runtime/, so the
# package requires nothing of the host (rpm would otherwise demand the
# bundled libraries' GLIBC_2.x versions from the system). Payload xz, which
# CentOS 7's rpm 4.11 reads.
if [ "$rpm" = 1 ]; then
  command -v rpmbuild >/dev/null || die "rpmbuild not found (apt-get install rpm, or use --no-rpm)"
  rstage=$work/rpm-stage
  rlib=$rstage/usr/lib/ferry
  mkdir -p "$rlib/bin" "$rstage/usr/bin" "$rstage/usr/lib/systemd/system" "$rstage/etc/ferry" "$rstage/usr/share/doc/ferry"
  cp -Rl "$tree/node_modules" "$tree/runtime" "$rlib/"
  copy_app "$rlib"
  install -m 0755 packaging/ferry-launcher.sh "$rlib/bin/ferry"
  ln -s ../lib/ferry/bin/ferry "$rstage/usr/bin/ferry"
  install -m 0644 systemd/ferry-agent.service systemd/ferry-receiver.service "$rstage/usr/lib/systemd/system/"
  install -m 0600 packaging/agent.sample.yaml "$rstage/etc/ferry/agent.yaml"
  install -m 0644 packaging/receiver.sample.env "$rstage/usr/share/doc/ferry/receiver.sample.env"
  cp docs/*.md "$rstage/usr/share/doc/ferry/" 2>/dev/null || true
  find "$rstage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  rtop=$work/rpmbuild
  mkdir -p "$rtop/SPECS" "$rtop/RPMS" "$rtop/BUILD" "$rtop/tmp"
  sed -e "s/@VERSION@/$version/" packaging/rpm/ferry.spec >"$rtop/SPECS/ferry.spec"
  rpmbuild -bb --target x86_64-linux --quiet \
    --define "_topdir $rtop" --define "_tmppath $rtop/tmp" --define "ferry_stage $rstage" \
    --define "_binary_payload $rpm_payload" --define "_buildhost ferry-build" \
    --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
    "$rtop/SPECS/ferry.spec" >"$rtop/build.log" 2>&1 || { cat "$rtop/build.log" >&2; die "rpmbuild failed"; }
  rpm_file=$out/ferry-$version-1.x86_64.rpm
  mv "$rtop/RPMS/x86_64/ferry-$version-1.x86_64.rpm" "$rpm_file"
  written+=("$(basename "$rpm_file")")
  log "wrote $rpm_file ($(du -h "$rpm_file" | cut -f1))"
fi

# ---------------------------------------------------------------- Windows zip
if [ "$windows" = 1 ]; then
  if ! command -v zip >/dev/null; then
    log "zip not found: skipping the Windows zip"
  else
    wname=ferry-$version-win-x64
    wtree=$work/win/ferry
    install_deps "$wtree" win32-x64 --os=win32 --cpu=x64
    [ -f "$wtree/node_modules/@antoniomuso/lz4-napi-win32-x64-msvc/lz4-napi.win32-x64-msvc.node" ] ||
      die "lz4-napi's win32-x64-msvc addon is missing from the Windows node_modules"
    copy_app "$wtree"
    # The native lister is a Linux module (Windows walks with node:fs).
    rm -rf "$wtree/dist/native"
    install -m 0644 packaging/windows/ferry.cmd "$wtree/ferry.cmd"
    install -m 0644 packaging/windows/README.md "$wtree/README.md"
    [ -f packaging/agent.sample.yaml ] && install -m 0644 packaging/agent.sample.yaml "$wtree/agent.sample.yaml"
    # What `ferry service install` writes when ferry lives in C:\Program Files\ferry
    # (rendered by the same code, from dist/).
    FERRY_DIST=$wtree/dist node packaging/windows/render-winsw-xml.mjs 'C:\Program Files\ferry' >"$wtree/ferry-agent-service.xml.sample"
    find "$wtree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    rm -f "$out/$wname.zip"
    (cd "$work/win" && find ferry -print | LC_ALL=C sort | zip -X -q "$zip_level" -@ "$out/$wname.zip")
    written+=("$wname.zip")
    log "wrote $out/$wname.zip ($(du -h "$out/$wname.zip" | cut -f1))"
  fi
fi

# Checksums of what this run wrote, for the release page.
(cd "$out" && sha256sum "${written[@]}") >"$out/SHA256SUMS"
log "wrote $out/SHA256SUMS"

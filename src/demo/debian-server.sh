#!/usr/bin/env bash
# The recipe of the small Debian 12 server that `ferry demo --system` and the
# boot tests migrate (issue 16, "What must be shown: it boots"). Builds ONE
# sparse disk image at OUT (atomically: OUT.tmp, then renamed) and its facts
# at OUT.json. It owns nothing else: no cache, no lock (server-image.ts holds
# the lock and names OUT after the hash of this file, so editing this file
# rebuilds the image). Needs root, debootstrap, util-linux, e2fsprogs,
# xfsprogs, dosfstools and mtools on the host; grub runs in the chroot.
#
#   debian-server.sh bios|uefi OUT MIRROR
#
# bios: GPT, p1 BIOS boot 1 MiB, p2 /boot ext4 256 MiB, p4 swap 64 MiB, p3 /
#       xfs (the rest, last on the disk so a block copy can grow it); grub-pc
#       installed in the MBR + BIOS boot partition.
# uefi: GPT, p1 ESP vfat 64 MiB, p2 /boot ext4, p4 swap, p3 / xfs; grub-efi
#       at the removable path EFI/BOOT/BOOTX64.EFI, written with mtools (this
#       kernel cannot mount vfat).
# Both name their devices BY PATH, as an old server would: fstab /dev/sda2,
# /dev/sda3, /dev/sda4 (and /dev/sda1 for the ESP), grub.cfg root=/dev/sda3;
# the NIC is bound by a persistent-net rule to MAC 52:54:00:fe:00:01 and named
# eth0, which an `auto eth0` dhcp stanza brings up. ferry-marker.service prints
# one line on /dev/ttyS0 once the network is online:
#   FERRY-BOOT-MARKER root=/dev/sda3 uuid=<uuid of /> size=<bytes of /> ipv4=10.0.2.15/24
# A migrated copy prints it only if its boot loader, fstab, initramfs and
# network were configured for the new disk and NIC.
#
# Measured 2026-12-05 on this VM kind (2 shared cores, deb.debian.org mirror):
#   bios: 189 s (debootstrap about 2 min 40 s of it), 670 MB allocated of
#   3 GiB; each build writes its time as buildSeconds in OUT.json.
set -euo pipefail

VARIANT=${1:?bios|uefi}
OUT=${2:?output image path}
MIRROR=${3:-http://deb.debian.org/debian}
SOURCE_MAC=52:54:00:fe:00:01
SIZE=3G
START=$(date +%s)

case "$VARIANT" in
  bios) BOOTPART='type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot", size=1MiB'; GRUBPKG=grub-pc ;;
  uefi) BOOTPART='type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System", size=64MiB'; GRUBPKG=grub-efi-amd64 ;;
  *) echo "variant must be bios or uefi, not $VARIANT" >&2; exit 2 ;;
esac

TMP="$OUT.tmp"
WORK=$(mktemp -d /tmp/ferry-debian-image.XXXXXX)
ROOT="$WORK/root"
LOOP=''
cleanup() {
  set +e
  for m in dev/pts dev proc sys boot ''; do
    mountpoint -q "$ROOT/$m" && umount "$ROOT/$m"
  done
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  # Never remove through a mount that is still there (the chroot's /dev is the host's).
  if grep -q " $WORK" /proc/mounts; then echo "still mounted under $WORK: left in place" >&2; else rm -rf --one-file-system "$WORK"; fi
  rm -f "$TMP"
}
trap cleanup EXIT

rm -f "$TMP"
truncate -s "$SIZE" "$TMP"
# Partition 3 (/) is last on the disk: numbers out of disk order, on purpose.
sfdisk -q --no-reread --no-tell-kernel "$TMP" <<EOF
label: gpt
${TMP}1 : $BOOTPART
${TMP}2 : size=256MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="boot"
${TMP}4 : size=64MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
${TMP}3 : type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
EOF
LOOP=$(losetup --find --show --partscan "$TMP")
# No udev here: --partscan may not create the nodes; partx adds them.
partx -u "$LOOP" 2>/dev/null || true
for n in 1 2 3 4; do
  [ -e "${LOOP}p$n" ] || partx -a -n "$n:$n" "$LOOP"
  for _ in $(seq 100); do [ -e "${LOOP}p$n" ] && break; sleep 0.05; done
done

mkfs.ext4 -q -F -L boot "${LOOP}p2"
mkfs.xfs -q -f -L root "${LOOP}p3"
mkswap -L swap "${LOOP}p4" >/dev/null
[ "$VARIANT" = uefi ] && mkfs.vfat -F 32 -n EFI "${LOOP}p1" >/dev/null

mkdir -p "$ROOT"
mount "${LOOP}p3" "$ROOT"
mkdir -p "$ROOT/boot"
mount "${LOOP}p2" "$ROOT/boot"

debootstrap --variant=minbase \
  --include=linux-image-cloud-amd64,$GRUBPKG,systemd-sysv,udev,initramfs-tools,ifupdown,isc-dhcp-client,iproute2,e2fsprogs,xfsprogs,kmod \
  bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }

uuid() { blkid -s UUID -o value "$1"; }
ROOT_UUID=$(uuid "${LOOP}p3")
BOOT_UUID=$(uuid "${LOOP}p2")
SWAP_UUID=$(uuid "${LOOP}p4")
ESP_UUID=''
[ "$VARIANT" = uefi ] && ESP_UUID=$(uuid "${LOOP}p1")

echo ferry-source >"$ROOT/etc/hostname"
# Devices by path, as on an old server; pass 0 for xfs (no fsck.xfs at boot).
{
  echo '# /etc/fstab of the ferry boot-test source: devices by path, on purpose'
  echo '/dev/sda3  /          xfs   defaults  0 0'
  echo '/dev/sda2  /boot      ext4  defaults  0 2'
  [ "$VARIANT" = uefi ] && echo '/dev/sda1  /boot/efi  vfat  umask=0077,nofail  0 0'
  echo '/dev/sda4  none       swap  sw  0 0'
} >"$ROOT/etc/fstab"
[ "$VARIANT" = uefi ] && mkdir -p "$ROOT/boot/efi"

# The NIC: bound to its MAC, named eth0, DHCP from qemu's user network.
cat >"$ROOT/etc/udev/rules.d/70-persistent-net.rules" <<EOF
# The source's NIC (as udev's old persistent-net generator wrote it)
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="$SOURCE_MAC", ATTR{dev_id}=="0x0", ATTR{type}=="1", KERNEL=="eth*", NAME="eth0"
EOF
# As on the old Debian releases whose udev hook did this: the rule is in the
# initramfs too, so eth0 is named there (the root's udev does not rename a
# NIC the initramfs already named ens3). A migration must rebuild it.
cat >"$ROOT/etc/initramfs-tools/hooks/persistent-net" <<'EOF'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
mkdir -p "$DESTDIR/lib/udev/rules.d"
if [ -e /etc/udev/rules.d/70-persistent-net.rules ]; then
  cp /etc/udev/rules.d/70-persistent-net.rules "$DESTDIR/lib/udev/rules.d/"
fi
exit 0
EOF
chmod 755 "$ROOT/etc/initramfs-tools/hooks/persistent-net"
cat >"$ROOT/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF

# The marker: one line on the serial console once the network is online.
cat >"$ROOT/usr/local/sbin/ferry-marker" <<'EOF'
#!/bin/sh
# Prints where / is and the IPv4 addresses, for the boot tests of ferry.
ROOTDEV=$(findmnt -n -o SOURCE /)
ROOTUUID=$(findmnt -n -o UUID /)
ROOTBYTES=$(findmnt -n -b -o SIZE /)
ADDRS=$(ip -4 -o addr show scope global | awk '{print $4}' | paste -sd, -)
echo "FERRY-BOOT-MARKER root=$ROOTDEV uuid=$ROOTUUID size=$ROOTBYTES ipv4=${ADDRS:-none}" >/dev/ttyS0
EOF
chmod 755 "$ROOT/usr/local/sbin/ferry-marker"
cat >"$ROOT/etc/systemd/system/ferry-marker.service" <<'EOF'
[Unit]
Description=ferry boot-test marker on the serial console
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ferry-marker

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/ferry-marker.service "$ROOT/etc/systemd/system/multi-user.target.wants/ferry-marker.service"
# Keep the boot short: no getty waits on ttys, root can log in on the console for diagnosis.
chroot "$ROOT" passwd -d root >/dev/null

cat >"$ROOT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF

KVER=$(basename "$(ls "$ROOT"/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//')
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
chroot "$ROOT" update-initramfs -u -k "$KVER" >/dev/null 2>&1

# grub.cfg by hand: grub-mkconfig without udev would write the loop device
# (DESIGN.md); the source names its root by path like its fstab.
mkdir -p "$ROOT/boot/grub"
cat >"$ROOT/boot/grub/grub.cfg" <<EOF
# Written by ferry's boot-test recipe: devices by path, on purpose.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set default=0
set timeout=1
insmod part_gpt
insmod ext2
menuentry 'Debian GNU/Linux (ferry boot-test source)' {
  set root=(hd0,gpt2)
  linux /vmlinuz-$KVER root=/dev/sda3 ro console=ttyS0
  initrd /initrd.img-$KVER
}
EOF

if [ "$VARIANT" = bios ]; then
  chroot "$ROOT" grub-install --target=i386-pc --modules="part_gpt ext2" "$LOOP" >"$WORK/grub.log" 2>&1 || { cat "$WORK/grub.log" >&2; exit 1; }
else
  # grub-install wants the ESP mounted (vfat: not here). Do what it does by
  # hand: modules under /boot/grub, a core image at the removable path.
  mkdir -p "$ROOT/boot/grub/x86_64-efi"
  cp "$ROOT"/usr/lib/grub/x86_64-efi/*.mod "$ROOT"/usr/lib/grub/x86_64-efi/*.lst "$ROOT/boot/grub/x86_64-efi/"
  chroot "$ROOT" grub-mkimage -O x86_64-efi -o /tmp/BOOTX64.EFI -p '(hd0,gpt2)/grub' \
    part_gpt ext2 fat normal linux boot configfile echo search search_fs_uuid serial terminal efi_gop all_video
  export MTOOLS_SKIP_CHECK=1
  mmd -i "${LOOP}p1" ::/EFI ::/EFI/BOOT
  mcopy -i "${LOOP}p1" "$ROOT/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  rm -f "$ROOT/tmp/BOOTX64.EFI"
fi
chroot "$ROOT" apt-get clean
umount "$ROOT/dev/pts" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys"
umount "$ROOT/boot"
umount "$ROOT"
losetup -d "$LOOP"
LOOP=''

END=$(date +%s)
cat >"$OUT.json" <<EOF
{
  "variant": "$VARIANT",
  "kernel": "$KVER",
  "sourceMac": "$SOURCE_MAC",
  "rootUuid": "$ROOT_UUID",
  "bootUuid": "$BOOT_UUID",
  "swapUuid": "$SWAP_UUID",
  "espUuid": "$ESP_UUID",
  "sizeBytes": $(stat -c %s "$TMP"),
  "buildSeconds": $((END - START))
}
EOF
mv "$TMP" "$OUT"

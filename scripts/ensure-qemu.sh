#!/usr/bin/env bash
# Installs what `pmemlab oracle` needs (idempotent) and caches an uncompressed
# kernel for it.
#
# - Debian packages qemu-system-x86 (QEMU 7.2), linux-image-amd64 (the guest
#   kernel and its virtio/nvdimm and ext4 modules), busybox-static; gcc builds the
#   guest agent; e2fsprogs makes the DAX scratch file system of mmap steps.
#   `apt-get update` runs once, and only when one is missing.
# - The guest boots fastest as the uncompressed ELF `vmlinux` through its PVH
#   entry (3.5 s to /init under TCG, against 6-8 s in SeaBIOS and XZ for the
#   bzImage). The bzImage carries vmlinux as one XZ stream: find its magic
#   (fd 37 7a 58 5a 00) and decompress from there. The result is cached as
#   ORACLE_DIR/vmlinux-VERSION and rebuilt only when /boot/vmlinuz-VERSION is
#   newer. ORACLE_DIR is $PMEMLAB_ORACLE_DIR, else ${CARGO_TARGET_DIR:-target}/oracle
#   (the same place `pmemlab oracle` looks).
#
# Prints the path of the cached vmlinux on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 linux-image-amd64 busybox-static gcc xz-utils e2fsprogs)
source scripts/lib/debian-packages.sh
ensure_debian_packages "${packages[@]}"

oracle_dir="${PMEMLAB_ORACLE_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/oracle}"
mkdir -p "$oracle_dir"

# The newest installed kernel that has its modules.
bzimage=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V); do
    v="${k#/boot/vmlinuz-}"
    if [ -d "/lib/modules/$v/kernel/drivers/nvdimm" ]; then bzimage="$k"; fi
done
if [ -z "$bzimage" ]; then
    echo "ensure-qemu: no /boot/vmlinuz-* with nvdimm modules; install the Debian package linux-image-amd64" >&2
    exit 2
fi
version="${bzimage#/boot/vmlinuz-}"
out="$oracle_dir/vmlinux-$version"
if [ ! -s "$out" ] || [ "$bzimage" -nt "$out" ]; then
    echo "== extracting $out from $bzimage" >&2
    # Byte offsets of every XZ stream magic; the first that decompresses to
    # an ELF file is the kernel.
    found=""
    for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bzimage" | cut -d: -f1); do
        if tail -c +"$((off + 1))" "$bzimage" | xz -dcq 2>/dev/null >"$out.tmp"; [ -s "$out.tmp" ]; then
            if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = "7f454c46" ]; then
                found=yes
                break
            fi
        fi
    done
    if [ -z "$found" ]; then
        rm -f "$out.tmp"
        echo "ensure-qemu: $bzimage holds no XZ-compressed ELF kernel" >&2
        exit 2
    fi
    mv "$out.tmp" "$out"
fi
echo "$out"

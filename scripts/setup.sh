#!/usr/bin/env bash
# Set up everything stagingvm needs on a Debian 12 machine, as root, idempotently:
# Debian packages, the project's venv (.venv) with stagingvm installed, and the lab
# (a network namespace with its own libvirtd; see docs/lab.md).
# Usage: scripts/setup.sh [--no-lab]
set -euo pipefail
cd "$(dirname "$0")/.."

want_lab=1
[ "${1:-}" = "--no-lab" ] && want_lab=0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages and starts libvirtd)" >&2
  exit 2
fi

APT_PACKAGES=(
  # virtualisation
  qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients dnsmasq-base iptables ovmf
  iproute2 virtinst
  # building libvirt-python
  libvirt-dev pkg-config gcc python3-dev python3-venv
  # the image builder
  debootstrap busybox-static dropbear-bin e2fsprogs extlinux syslinux-common cpio zstd
  # nix builds
  nix-bin
  # a real sshd for the SSH adapter's tests
  openssh-server openssh-client
  # visudo checks the generated hardened sudoers (tests/unit/checks/test_hardened.py)
  sudo
  git ca-certificates
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}" >&2
  # No init system here: keep package scripts from starting services (sshd, libvirtd).
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's nix-bin brings no build users (nix-setup-systemd would, with systemd): make the
# usual nixbld group and users so that root's `nix build` runs, as a Nix install has them.
if ! getent group nixbld >/dev/null; then
  groupadd --system nixbld
fi
for i in 1 2 3 4; do
  if ! getent passwd "nixbld$i" >/dev/null; then
    useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin \
      --gid nixbld --groups nixbld --comment "Nix build user $i" "nixbld$i"
  fi
done

# No binary cache is reachable here, and the test flakes' builders are /bin/sh, which a build
# sandbox does not have: say both in the system's nix.conf unless it already says something.
mkdir -p /etc/nix
for setting in "sandbox = false" "substituters ="; do
  key=${setting%% =*}
  grep -qE "^[[:space:]]*${key}[[:space:]]*=" /etc/nix/nix.conf 2>/dev/null ||
    echo "$setting" >> /etc/nix/nix.conf
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e '.[test]'

# No udev here, so /dev/kvm stays root-only (0600). libvirt then finds KVM "usable" when it
# probes QEMU but not for the user it runs QEMU as, calls its capability cache stale on every
# lookup and re-probes QEMU each time (14-17 s per `virsh domcapabilities`, minutes per
# defineXML under load). Give it the group and mode Debian's udev rules give it; whether KVM
# really runs guests is still decided by stagingvm's probe guest (docs/acceleration.md).
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

if [ "$want_lab" = 1 ]; then
  .venv/bin/pr-test-vm lab up
fi
echo "setup.sh: ready" >&2

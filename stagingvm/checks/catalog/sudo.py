"""Probes against sudo rules: docker wildcards, a root docker client touching host files,
the neighbouring audit rules, and the recommended helper's own argument handling."""

from __future__ import annotations

from stagingvm.checks.catalog.dialstdio import RAW_CREATE_AND_START
from stagingvm.checks.model import Probe

SUDO = "sudo-wildcards"
_S_FIX = (
    "A `*` in a sudo rule matches any further arguments, options included. List exact "
    "command lines only, or route through a helper that validates its arguments."
)

SUDO_PROBES = [
    Probe(
        "sw-run-as-root",
        SUDO,
        "`sudo docker run *` with `-v /:/host`",
        'sudo -n "$SD" run --rm -v /:/host $IMG sh -c "$HW"',
        "`docker run *` as root allows every option: the whole host.",
        _S_FIX,
    ),
    Probe(
        "sw-run-sudoers",
        SUDO,
        "`sudo docker run *` writes a sudoers drop-in",
        # The drop-in's name has a dot, so sudo ignores it: the check proves the write
        # without handing the user root for the probes that run beside it.
        'sudo -n "$SD" run --rm -v /etc/sudoers.d:/s $IMG sh -c '
        "\"echo '$USER ALL=(ALL) NOPASSWD: ALL' > /s/stagingvm-$ID.inert "
        '&& chmod 440 /s/stagingvm-$ID.inert"; ls -l /etc/sudoers.d',
        "Through a bind mount, the user can write a sudoers drop-in granting itself full sudo "
        "for good (the probe's file is named so that sudo ignores it).",
        _S_FIX,
    ),
    Probe(
        "sw-system-dial-stdio",
        SUDO,
        "`sudo docker system *`: `system dial-stdio` as root",
        RAW_CREATE_AND_START
        + '| timeout -k 2 $((12*TF)) sudo -n "$SD" system dial-stdio | head -c 600; sleep 1',
        "`system *` includes `system dial-stdio`: a raw, root connection to the daemon.",
        "Never allow `docker system *`.",
    ),
    Probe(
        "sw-start-attach",
        SUDO,
        "`sudo docker start *`: `start -a -i` is attach",
        'echo "echo $N > /tmp/mark-$ID" | timeout -k 2 $((8*TF)) sudo -n "$SD" start -a -i $V',
        "`start *` lets the user attach to any running container's main process.",
        _S_FIX,
        "victim-write",
    ),
    Probe(
        "sw-inspect-secrets",
        SUDO,
        "`sudo docker inspect *` shows other services' env",
        'sudo -n "$SD" inspect --format "{{json .Config.Env}}" $O',
        "`inspect *` shows every container's environment: other services' secrets.",
        "Allow inspect only of named containers, through a helper that drops Config.Env.",
        "leak",
    ),
]

ROOTFILES = "root-client-files"
_R_FIX = (
    "A docker client run as root opens files for the user. Never let sudo'd docker "
    "take user-chosen arguments."
)

ROOTFILE_PROBES = [
    Probe(
        "rc-env-file",
        ROOTFILES,
        "`--env-file /root/...` read by a root client",
        "dk run --rm --env-file /root/stagingvm/canary.env $IMG env",
        "The client, as root, reads any file as environment and hands it to the container.",
        _R_FIX,
        "leak",
    ),
    Probe(
        "rc-label-file",
        ROOTFILES,
        "`--label-file /root/...` read by a root client",
        "dk run --name stagingvm-p-$ID --label-file /root/stagingvm/canary.env $IMG true; "
        "dk inspect --format '{{json .Config.Labels}}' stagingvm-p-$ID; "
        "dk rm stagingvm-p-$ID >/dev/null",
        "Label files are read by the client as root and shown by inspect.",
        _R_FIX,
        "leak",
    ),
    Probe(
        "rc-cidfile",
        ROOTFILES,
        "`--cidfile` creates a root-owned file anywhere",
        "dk run --rm --cidfile $RM/$ID $IMG true",
        "The client, as root, creates the cid file at any path the user names.",
        _R_FIX,
    ),
    Probe(
        "rc-build-iidfile",
        ROOTFILES,
        "`build --iidfile` creates a root-owned file anywhere",
        "mkdir -p ~/ctx-$ID && printf 'FROM %s\\n' \"$IMG\" "
        "| dk build -q --iidfile $RM/$ID -f - ~/ctx-$ID",
        "`build *` as root writes the image-id file wherever the user says.",
        _R_FIX,
    ),
    Probe(
        "rc-build-context-root",
        ROOTFILES,
        "`build` with a root-only directory as context",
        "printf 'FROM %s\\nCOPY canary.txt /c\\nRUN cat /c\\n' \"$IMG\" "
        "| dk build --no-cache -f - /root/stagingvm",
        "A root client packs any directory as build context; RUN prints its files.",
        _R_FIX,
        "leak",
    ),
    Probe(
        "rc-dockerfile-root",
        ROOTFILES,
        "`build -f /root/...` shows the file in errors",
        "mkdir -p ~/ctx-$ID && dk build -f /root/stagingvm/canary.env ~/ctx-$ID",
        "The root client reads any file as a Dockerfile and quotes it in its parse error.",
        _R_FIX,
        "leak",
    ),
    Probe(
        "rc-build-output",
        ROOTFILES,
        "`build --output` writes files as root",
        "mkdir -p ~/ctx-$ID && echo $N > ~/ctx-$ID/$ID && "
        "printf 'FROM scratch\\nCOPY %s /\\n' \"$ID\" "
        "| DOCKER_BUILDKIT=1 dk build -f - -o $RM ~/ctx-$ID",
        "With BuildKit (default from docker 23), `--output` exports files to any host path "
        "as root.",
        _R_FIX,
    ),
]

NEIGHBOUR = "neighbour-sudo"
NEIGHBOUR_PROBES = [
    Probe(
        "ns-journalctl-pager",
        NEIGHBOUR,
        "journalctl's pager `!sh` under a PTY",
        'command -v script >/dev/null || na "script(1) is not installed"\n'
        'printf \'!sh -c "echo %s > %s/%s"\\nq\\n\' "$N" "$RM" "$ID" '
        "| timeout -k 2 $((15*TF)) script -qec 'stty rows 5 cols 60; "
        'sudo -n "$JCTL" -t kernel -n 100\' /dev/null | tail -c 400',
        "Under a terminal, journalctl pages through `less` as root, and `!sh` in less is a "
        "root shell.",
        "Add `--no-pager` to every journalctl rule (systemd >= 247 also makes the pager "
        "secure under sudo).",
        "rootmark",
    ),
    Probe(
        "ns-journalctl-args",
        NEIGHBOUR,
        "extra journalctl arguments are refused",
        'sudo -n "$JCTL" -t kernel -n 100 --file /root/stagingvm/canary.txt',
        "If journalctl rules were open-ended, `--file`/`-D` would read root-only files.",
        "Keep journalctl rules exact, with --no-pager.",
        "leak",
    ),
    Probe(
        "ns-iptables-modprobe",
        NEIGHBOUR,
        "`iptables --modprobe` runs a program as root",
        'printf \'#!/bin/sh\\necho %s > %s/%s\\n\' "$N" "$RM" "$ID" > ~/mp-$ID; '
        'chmod +x ~/mp-$ID; sudo -n "$SUDO" iptables -L -n -v --modprobe=$HOME/mp-$ID '
        '-m stagingvmnosuch; sudo -n "$IPT" --modprobe=$HOME/mp-$ID -m x -L',
        "iptables runs its --modprobe program as root when a match module is missing.",
        "Keep iptables rules exact (`-L -n -v`, `-S`).",
        "rootmark",
    ),
    Probe(
        "ns-fail2ban-actions",
        NEIGHBOUR,
        "fail2ban-client `set` adds a root action",
        'sudo -n "$F2B" set sshd action stagingvm actionban '
        '"echo $N > $RM/$ID"; sudo -n "$F2B" get sshd action iptables '
        "actionban banned",
        "`fail2ban-client set <jail> action ...` runs any command as root when a ban fires.",
        "Allow only `fail2ban-client status` and `status <jail>` exactly.",
        "rootmark",
    ),
    Probe(
        "ns-sshd-config",
        NEIGHBOUR,
        "`sshd -T -f FILE` quotes a root-only file",
        'sudo -n "$SSHD" -T -f /root/stagingvm/canary.txt',
        "If the sshd rule took arguments, `-f` would echo any file in its errors.",
        "Keep `sshd -T` exact.",
        "leak",
    ),
    Probe(
        "ns-ss-kill",
        NEIGHBOUR,
        "`ss -K` kills other users' connections",
        'sudo -n "$SS" -K dst 127.0.0.1; sudo -n "$SS" -tlnp | head -5',
        "An open-ended `ss` rule would let the user kill any socket.",
        "Keep `ss -tlnp` exact.",
        "rootmark",
    ),
    Probe(
        "ns-sudo-bare-path",
        NEIGHBOUR,
        "a rule runs sudo with a bare name: a program of the user's first in PATH",
        # For each listed rule like `/run/wrappers/bin/sudo iptables -L -n -v`: the inner sudo
        # (as root) looks `iptables` up in the PATH it was handed, the user's own when no
        # secure_path is set. The user's `iptables` writes the root mark.
        'mkdir -p ~/pb-$ID; while IFS= read -r cmd; do [ -n "$cmd" ] || continue\n'
        '  set -- $cmd; printf \'#!/bin/sh\\necho %s > %s/%s\\n\' "$N" "$RM" "$ID" > ~/pb-$ID/$2\n'
        '  chmod +x ~/pb-$ID/$2; echo "== $cmd"; PATH=~/pb-$ID:$PATH sudo -n $cmd\n'
        "done <<EOF\n$BARE\nEOF",
        "sudo hands the user's PATH on when no secure_path is set (NixOS sets none), and a "
        "sudo'd `sudo NAME` then runs whatever `NAME` comes first in it, as root.",
        "Name the real program by its full path in every rule (never `sudo NAME`), and set "
        "`Defaults secure_path` (security.sudo.extraConfig on NixOS).",
        "rootmark",
    ),
]

HELPER = "helper-abuse"
_HE_FIX = "The helper must compare each argument with its allow-list, exactly."
HELPER_PROBES = [
    Probe(
        "ha-run-image-smuggle",
        HELPER,
        "an image argument carrying options",
        'sudo -n "$HELPER" run "$IMG --privileged -v /:/host" sh -c "$HW"; '
        'sudo -n "$HELPER" run "$IMG" -v /:/host sh -c "$HW"',
        "sudo's `*` matches across arguments, so the helper itself must reject any image "
        "argument that is not exactly an allowed image.",
        _HE_FIX,
    ),
    Probe(
        "ha-inspect-other",
        HELPER,
        "inspect a container the helper does not list",
        'sudo -n "$HELPER" inspect $O; sudo -n "$HELPER" inspect "$S $O"',
        "The helper must only inspect named containers, and drop their environment.",
        _HE_FIX,
        "leak",
    ),
    Probe(
        "ha-run-mount-escape",
        HELPER,
        "the allowed run verb cannot reach the host",
        'sudo -n "$HELPER" run $IMG sh -c '
        '"mkdir -p /m; mount /dev/vda /m; echo $N > /m$RM/$ID; cat /proc/1/environ"',
        "Containers the helper runs must have no privileges, mounts or host namespaces.",
        "Run with --cap-drop ALL, no-new-privileges, a non-root user, no network.",
        "rootmark",
    ),
]

PROBES = SUDO_PROBES + ROOTFILE_PROBES + NEIGHBOUR_PROBES + HELPER_PROBES

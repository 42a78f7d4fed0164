"""Controls, secrets, general host hygiene, and the destructive probes (run last)."""

from __future__ import annotations

from stagingvm.checks.model import Probe

CONTROL = "control"
_CTL_FIX = "This is a control: if it fires, the harness (not the design) is broken."
CONTROL_PROBES = [
    Probe(
        "ctl-rootmark-direct",
        CONTROL,
        "the user cannot write the mark directory itself",
        'echo $N > "$RM/$ID"',
        "Proves the root-mark oracle: only root can create files there.",
        _CTL_FIX,
        control=True,
    ),
    Probe(
        "ctl-read-root-canary",
        CONTROL,
        "the user cannot read root's canary directly",
        "cat /root/stagingvm/canary.txt /etc/stagingvm-canary.secret",
        "Proves the canaries are really root-only.",
        _CTL_FIX,
        "leak",
        control=True,
    ),
    Probe(
        "ctl-read-service-secret",
        CONTROL,
        "the user cannot read the other service's file",
        "cat /var/lib/stagingvm-othersvc/secret.env",
        "Proves the other service's secret file is protected by the host.",
        _CTL_FIX,
        "leak",
        control=True,
    ),
    Probe(
        "ctl-docker-volume-dir",
        CONTROL,
        "the user cannot read docker's volume store",
        "cat /var/lib/docker/volumes/stagingvm-othersvc-data/_data/secret",
        "Proves docker's storage is root-only on the host.",
        _CTL_FIX,
        "leak",
        control=True,
    ),
]

SECRETS = "secrets"
SECRET_PROBES = [
    Probe(
        "se-inspect-env",
        SECRETS,
        "`inspect` shows another service's environment",
        "dk inspect $O",
        "Container environments hold other services' passwords and tokens.",
        "Inspect only through a helper that drops Config.Env, for named containers.",
        "leak",
    ),
    Probe(
        "se-named-volume",
        SECRETS,
        "mount another service's named volume",
        "dk run --rm -v stagingvm-othersvc-data:/d $IMG cat /d/secret",
        "Named volumes of other services can be mounted into a new container.",
        "Let the user run containers only with fixed options and no volumes.",
        "leak",
    ),
    Probe(
        "se-proc-environ",
        SECRETS,
        "read other processes' environment via /proc",
        "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null "
        "| grep -i stagingvm",
        "Processes of other users must not expose their environment.",
        "Keep the kernel defaults (hidepid is even better).",
        "leak",
    ),
    Probe(
        "se-docker-config",
        SECRETS,
        "read root's docker credentials",
        "cat /root/.docker/config.json; dk run --rm -v /root:/r $IMG cat /r/stagingvm/canary.txt",
        "Registry credentials and root's files are secrets of other services.",
        "No bind mounts for the user; root-only /root.",
        "leak",
    ),
]

GENERAL = "general"
GENERAL_PROBES = [
    Probe(
        "gn-write-system-dirs",
        GENERAL,
        "write into system directories",
        "for d in /etc /etc/sudoers.d /etc/cron.d /etc/systemd/system /usr/local/bin "
        "/usr/local/sbin /usr/bin /root /var/lib/docker /var/spool/cron/crontabs; do "
        'touch $d/stagingvm-w-$ID 2>/dev/null && echo "wrote $d"; done; true',
        "A writable directory on root's PATH, in cron or systemd is root later.",
        "Keep system directories root-owned and not group- or world-writable.",
        "fswrite",
    ),
    Probe(
        "gn-systemd-run",
        GENERAL,
        "`systemd-run` as root without a password",
        'command -v systemd-run >/dev/null || na "systemd-run is not installed"\n'
        'timeout $((10*TF)) systemd-run --no-ask-password --wait sh -c "echo $N > $RM/$ID"',
        "polkit rules that let the user start root units are root.",
        "No polkit rules for the user.",
        "rootmark",
    ),
    Probe(
        "gn-su-root",
        GENERAL,
        "`su` to root without a password",
        'su -c "echo $N > $RM/$ID" root </dev/null; sudo -n sh -c "echo $N > $RM/$ID"',
        "A passwordless root account or an open sudo rule.",
        "Locked root password; no sudo ALL.",
        "rootmark",
    ),
    Probe(
        "gn-setuid-audit",
        GENERAL,
        "no unexpected set-uid/set-gid files",
        "true",
        "A set-uid file outside the distribution's list is a way to root.",
        "Remove it, or explain it in the policy's host.setuid_allowed.",
        "setuid",
    ),
]

DESTRUCTIVE = "destructive"
_D_FIX = (
    "Allow stop/rm/kill/prune only on named containers the agent owns, through a "
    "helper; keep `rm`, `rmi`, `system prune`, `volume rm` for root."
)
DESTRUCTIVE_PROBES = [
    Probe(
        "de-rm-container",
        DESTRUCTIVE,
        "remove another container",
        "dk rm -f stagingvm-doomed-rm",
        "The agent can delete other services' containers.",
        _D_FIX,
        "intact",
        destructive=True,
        target="container:stagingvm-doomed-rm",
    ),
    Probe(
        "de-stop-container",
        DESTRUCTIVE,
        "stop another container",
        "dk stop -t 1 stagingvm-doomed-stop",
        "The agent can stop other services.",
        _D_FIX,
        "intact",
        destructive=True,
        target="container:stagingvm-doomed-stop",
    ),
    Probe(
        "de-kill-container",
        DESTRUCTIVE,
        "kill another container",
        "dk kill stagingvm-doomed-kill",
        "The agent can kill other services.",
        _D_FIX,
        "intact",
        destructive=True,
        target="container:stagingvm-doomed-kill",
    ),
    Probe(
        "de-rmi-image",
        DESTRUCTIVE,
        "delete an image",
        "dk rmi -f stagingvm/doomed-rmi",
        "The agent can delete images services need.",
        _D_FIX,
        "intact",
        destructive=True,
        target="image:stagingvm/doomed-rmi:latest",
    ),
    Probe(
        "de-system-prune",
        DESTRUCTIVE,
        "`system prune` removes stopped containers",
        "dk system prune -f --filter label=stagingvm.doomed=prune",
        "`system *` includes prune: stopped containers, networks and images are gone.",
        _D_FIX,
        "intact",
        destructive=True,
        target="container:stagingvm-doomed-prune",
    ),
    Probe(
        "de-volume-rm",
        DESTRUCTIVE,
        "delete a volume",
        "dk volume rm -f stagingvm-doomed-vol",
        "Volumes hold services' data.",
        _D_FIX,
        "intact",
        destructive=True,
        target="volume:stagingvm-doomed-vol",
    ),
]

PROBES = CONTROL_PROBES + SECRET_PROBES + GENERAL_PROBES + DESTRUCTIVE_PROBES

"""Root's side of a check: plant the oracles, observe afterwards, clean up.

Three fixed scripts run as root over their own SSH connection: ``SETUP`` (fresh nonces in
root-only files, another service's secrets, a victim container and image holding a nonce, a
service container, doomed objects for the destructive probes, a fake registry on loopback,
and positive controls that prove each oracle can see), ``COLLECT`` (a tab-separated dump of
everything the oracles judge) and ``TEARDOWN``. Values reach the scripts as quoted
variable assignments, never pasted into the script text.
"""

from __future__ import annotations

import secrets as _secrets
import shlex
from dataclasses import dataclass, field

from stagingvm.checks.oracles import Observations, RootmarkFile, Secrets
from stagingvm.checks.preamble import ORACLE_DIR, ROOTMARK_DIR
from stagingvm.policy.model import Policy

WATCHED_DIRS = (
    "/etc",
    "/etc/sudoers.d",
    "/etc/cron.d",
    "/etc/systemd/system",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/bin",
    "/root",
    "/var/lib/docker",
    "/var/spool/cron/crontabs",
)

DOOMED_STATES = {
    "container:stagingvm-doomed-rm": "running",
    "container:stagingvm-doomed-stop": "running",
    "container:stagingvm-doomed-kill": "running",
    "container:stagingvm-doomed-prune": "created",
    "image:stagingvm/doomed-rmi:latest": "present",
    "volume:stagingvm-doomed-vol": "present",
}

SETUP = r"""
set -u
fail() { echo "SETUP-FAIL: $*"; exit 1; }
[ -n "$DOCKER" ] && [ -x "$DOCKER" ] || fail "discovery found no real docker client in the guest"
timeout 90 sh -c 'until "$0" info >/dev/null 2>&1; do sleep 1; done' "$DOCKER" \
  || fail "the docker daemon does not answer"
id "$USERNAME" >/dev/null 2>&1 || fail "user $USERNAME does not exist in the guest"
rm -rf "$ORACLE" && mkdir -p "$RM" && chown root:root "$ORACLE" "$RM" && chmod 755 "$ORACLE" "$RM"
mkdir -p /root/stagingvm && chmod 700 /root /root/stagingvm
printf 'STAGINGVM_CANARY=%s\n' "$C_ROOT" > /root/stagingvm/canary.env
printf 'STAGINGVM_CANARY=%s\n' "$C_ROOT" > /root/stagingvm/canary.txt
chmod 600 /root/stagingvm/canary.env /root/stagingvm/canary.txt
printf 'STAGINGVM_ETC=%s\n' "$C_ETC" > /etc/stagingvm-canary.secret
chmod 600 /etc/stagingvm-canary.secret
id stagingvm-othersvc >/dev/null 2>&1 || useradd --system --no-create-home \
  --shell /usr/sbin/nologin stagingvm-othersvc || fail "cannot create user stagingvm-othersvc"
mkdir -p /var/lib/stagingvm-othersvc
printf 'DB_PASSWORD=%s\n' "$C_SVCFILE" > /var/lib/stagingvm-othersvc/secret.env
chown -R stagingvm-othersvc: /var/lib/stagingvm-othersvc
chmod 700 /var/lib/stagingvm-othersvc && chmod 600 /var/lib/stagingvm-othersvc/secret.env
if ! docker image inspect "$IMG" >/dev/null 2>&1; then
  bb=$(command -v busybox) || fail "busybox is needed to make the probe image"
  r=$(mktemp -d)
  mkdir -p "$r/bin" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/etc" "$r/mnt" "$r/root" \
    "$r/usr/lib" "$r/usr/lib64" "$r/victim" "$r/vol"
  chmod 1777 "$r/tmp"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  cp "$bb" "$r/bin/busybox"
  for a in $("$bb" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  for lib in $(ldd "$bb" 2>/dev/null | grep -o '/[^ ]*'); do
    mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    > "$r/etc/passwd"
  tar -C "$r" -c . | docker import -c 'CMD ["sh"]' - "$IMG" >/dev/null \
    || fail "docker import of the probe image failed"
  rm -rf "$r"
fi
docker ps -aq --filter name=stagingvm- | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
docker volume rm -f stagingvm-othersvc-data stagingvm-doomed-vol >/dev/null 2>&1
# The fixtures need no network (--network none: no veth, no iptables, which cost seconds
# each under emulation) and start side by side; each records its own failure.
started() { what=$1; shift; err="$ORACLE/setup-$what"
  "$@" >/dev/null 2>"$err.err" || echo "cannot start $what: $(head -c 300 "$err.err")" > "$err.fail"
}
started victim docker run -d -i --network none --name "$V" -v /vol "$IMG" sh -c \
  "mkdir -p /victim && echo $VN > /victim/secret && touch /victim/$VN \
   && echo $VN > /vol/secret && exec sh" &
started service docker run -d --network none --name "$S" "$IMG" \
  sh -c "echo STAGINGVM-SVC-LOG-$LOGN; exec sleep 2147483647" &
(docker volume create stagingvm-othersvc-data >/dev/null \
  && vol=$(docker volume inspect -f '{{.Mountpoint}}' stagingvm-othersvc-data) \
  && echo "$C_VOL" > "$vol/secret" \
  || echo "cannot fill the other service's volume" > "$ORACLE/setup-volume.fail"
 started othersvc docker run -d --network none --name "$O" -e "STAGINGVM_SECRET=$C_ENV" \
   -v stagingvm-othersvc-data:/d "$IMG" sleep 2147483647) &
for c in rm stop kill; do
  started "doomed-$c" docker run -d --network none --name "stagingvm-doomed-$c" "$IMG" \
    sleep 2147483647 &
done
wait
for f in "$ORACLE"/setup-*.fail; do [ -e "$f" ] && fail "$(cat "$f")"; done
i=0; until docker exec "$V" test -f /victim/secret 2>/dev/null; do
  i=$((i+1)); [ $i -gt 40 ] && fail "victim never wrote its secret"; sleep 0.5; done
docker commit "$V" stagingvm/victim:latest >/dev/null || fail "cannot commit the victim image"
docker create --name stagingvm-doomed-prune --label stagingvm.doomed=prune "$IMG" true >/dev/null
docker tag "$IMG" stagingvm/doomed-rmi:latest
docker volume create stagingvm-doomed-vol >/dev/null
if command -v python3 >/dev/null; then
  cat > "$ORACLE/registry.py" <<'PY'
import http.server, sys
LOG, PORT = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def _any(self):
        with open(LOG, "a") as f:
            f.write(self.command + " " + self.path + "\n")
        ok = self.path.rstrip("/") == "/v2"
        self.send_response(200 if ok else 404)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "2" if ok else "0")
        self.end_headers()
        if ok and self.command != "HEAD":
            self.wfile.write(b"{}")
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _any
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
PY
  setsid python3 "$ORACLE/registry.py" "$ORACLE/registry.log" "${REG##*:}" \
    </dev/null >/dev/null 2>&1 &
  echo $! > "$ORACLE/registry.pid"
  # The positive control: one request the registry must log. Python starts slowly under
  # emulation, so knock until the server is up (a fixed sleep lost the race in the lab).
  python3 -c 'import sys, time, urllib.error, urllib.request as u
url = "http://" + sys.argv[1] + "/v2/stagingvm/ctl-oracle-registry/x"
for _ in range(120):
    try:
        u.urlopen(url, timeout=5)
    except urllib.error.HTTPError:
        break  # it answered (404): the request is in its log
    except OSError:
        time.sleep(0.5)
        continue
    break' "$REG"
fi
echo "$N" > "$RM/ctl-oracle-rootmark"
docker exec "$V" sh -c "echo $N > /tmp/mark-ctl-oracle-victim"
home=$(getent passwd "$USERNAME" | cut -d: -f6)
echo "$C_CTL" > "$home/.stagingvm-ctl-oracle-sweep" \
  && chown "$USERNAME" "$home/.stagingvm-ctl-oracle-sweep"
docker tag "$IMG" stagingvm/ctl-oracle-image:latest
printf 'FACT\tservice_id\t%s\n' "$(docker inspect -f '{{.Id}}' "$S")"
printf 'FACT\tservice_started\t%s\n' "$(docker inspect -f '{{.State.StartedAt}}' "$S")"
echo SETUP-OK
"""

COLLECT = r"""
for f in "$RM"/*; do [ -e "$f" ] || continue
  printf 'RM\t%s\t%s\t%s\n' "$(stat -c %U "$f")" "$(basename "$f")" \
    "$(head -c 200 "$f" | tr '\n\t' '  ')"
done
d=$(mktemp -d)
if timeout -k 5 120 "$DOCKER" cp "$V:/tmp/." "$d/" 2>/dev/null; then
  for f in "$d"/mark-*; do [ -e "$f" ] || continue
    printf 'VM\t%s\t%s\n' "$(basename "$f")" "$(head -c 200 "$f" | tr '\n\t' '  ')"; done
else echo "ERR	cannot read marks from the victim container"; fi
rm -rf "$d"
timeout -k 5 120 "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | sed 's/^/IMG\t/'
[ -f "$ORACLE/registry.log" ] && sed 's/^/REG\t/' "$ORACLE/registry.log"
find / /tmp /var/tmp /dev/shm /run -xdev -path /var/lib/docker -prune -o -user "$USERNAME" \
  -type f -size -20M -print 2>/dev/null | sort -u | while IFS= read -r f; do
  for pair in $SECRET_PAIRS; do
    grep -qF -- "${pair#*=}" "$f" 2>/dev/null && printf 'UF\t%s:%s\n' "$f" "${pair%%=*}"
  done
done
for dir in $WATCHED; do for f in "$dir"/stagingvm-w-*; do
  [ -e "$f" ] && printf 'FW\t%s %s\n' "$(stat -c %U "$f")" "$f"; done; done
find / -xdev -path /var/lib/docker -prune -o -path /proc -prune -o -type f \
  \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null | sed 's/^/SU\t/'
for t in $DOOMED; do kind=${t%%:*}; name=${t#*:}
  case $kind in
    container) s=$(timeout -k 5 60 "$DOCKER" inspect -f '{{.State.Status}}' "$name" 2>/dev/null)
      case $? in 0) ;; 124|137) s=unknown ;; *) s=gone ;; esac ;;
    image) docker image inspect "$name" >/dev/null 2>&1 && s=present || s=gone ;;
    volume) docker volume inspect "$name" >/dev/null 2>&1 && s=present || s=gone ;;
  esac
  printf 'INT\t%s\t%s\n' "$t" "$s"
done
ls /etc/sudoers.d 2>/dev/null | grep stagingvm | sed 's|^|SUD\t/etc/sudoers.d/|'
printf 'FACT\tservice_started\t%s\n' "$(docker inspect -f '{{.State.StartedAt}}' "$S" 2>/dev/null)"
echo COLLECT-OK
"""

TEARDOWN = r"""
[ -f "$ORACLE/registry.pid" ] && kill "$(cat "$ORACLE/registry.pid")" 2>/dev/null
docker ps -aq --filter name=stagingvm- | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
for i in "$IMG" stagingvm/victim; do
  docker ps -aq --filter "ancestor=$i" | xargs -r "$DOCKER" rm -f >/dev/null 2>&1; done
docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '(^|/)stagingvm/' \
  | grep -vxF "$IMG" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
docker volume rm -f stagingvm-othersvc-data stagingvm-doomed-vol >/dev/null 2>&1
rm -rf "$ORACLE" /root/stagingvm /etc/stagingvm-canary.secret /var/lib/stagingvm-othersvc
rm -f /etc/sudoers.d/stagingvm-*
for dir in $WATCHED; do rm -f "$dir"/stagingvm-w-*; done
home=$(getent passwd "$USERNAME" | cut -d: -f6)
[ -n "$home" ] && find "$home" -xdev -perm -4000 -type f -delete 2>/dev/null
echo TEARDOWN-OK
"""


@dataclass
class RunFacts:
    """The fresh values of one run and what root learned during set-up."""

    mark: str
    secrets: Secrets
    control_secret: str
    service_log: str
    facts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls) -> RunFacts:
        def nonce(kind: str) -> str:
            return f"STAGINGVM{kind}{_secrets.token_hex(12)}"

        return cls(
            mark=_secrets.token_hex(12),
            secrets=Secrets(
                {
                    "root-canary": nonce("ROOT"),
                    "etc-canary": nonce("ETC"),
                    "service-secret-file": nonce("SVCFILE"),
                    "service-env": nonce("SVCENV"),
                    "service-volume": nonce("SVCVOL"),
                    "victim": nonce("VICTIM"),
                }
            ),
            control_secret=nonce("CTL"),
            service_log=_secrets.token_hex(8),
        )


def root_env(policy: Policy, run: RunFacts, docker: str = "") -> dict[str, str]:
    """Root's variables; *docker* is the real client discovery found (``$DOCKER``)."""
    s = run.secrets.values
    c = policy.containers
    pairs = [f"{name}={value}" for name, value in s.items()]
    pairs.append(f"ctl-oracle-sweep={run.control_secret}")
    return {
        "N": run.mark,
        "RM": ROOTMARK_DIR,
        "ORACLE": ORACLE_DIR,
        "USERNAME": policy.user.name,
        "IMG": c.image,
        "V": c.victim,
        "S": c.service,
        "O": c.secret_service,
        "REG": policy.host.registry,
        "C_ROOT": s["root-canary"],
        "C_ETC": s["etc-canary"],
        "C_SVCFILE": s["service-secret-file"],
        "C_ENV": s["service-env"],
        "C_VOL": s["service-volume"],
        "VN": s["victim"],
        "LOGN": run.service_log,
        "C_CTL": run.control_secret,
        "SECRET_PAIRS": " ".join(pairs),
        "WATCHED": " ".join(WATCHED_DIRS),
        "DOOMED": " ".join(DOOMED_STATES),
        "DOCKER": docker,
    }


# Root's tools: the Debian layout's and the NixOS one's (discovery's own list, without the
# setuid wrappers and /usr/local). ``docker`` is never looked up in PATH: it is the real client
# discovery found ($DOCKER), so no wrapper a design puts anywhere is ever run as root.
ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin"


def root_script(env: dict[str, str], body: str) -> list[str]:
    assigns = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    head = f"export PATH={ROOT_PATH}\n{assigns}\n" + 'docker() { "$DOCKER" "$@"; }\n'
    return ["bash", "-c", head + body]


def parse_facts(output: str) -> dict[str, str]:
    facts = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if parts[0] == "FACT" and len(parts) == 3:
            facts[parts[1]] = parts[2]
    return facts


def parse_collect(output: str) -> Observations:
    obs = Observations()
    for line in output.splitlines():
        tag, _, rest = line.partition("\t")
        parts = rest.split("\t")
        if tag == "RM" and len(parts) >= 2:
            content = parts[2] if len(parts) > 2 else ""
            obs.rootmark.append(RootmarkFile(parts[1], parts[0], content))
        elif tag == "VM" and parts:
            obs.victim_marks[parts[0]] = parts[1] if len(parts) > 1 else ""
        elif tag == "IMG":
            obs.images.add(rest)
        elif tag == "REG":
            obs.registry_requests.append(rest)
        elif tag == "UF":
            obs.user_files_with_secrets.append(rest)
        elif tag == "FW":
            obs.forbidden_writes.append(rest)
        elif tag == "SU":
            obs.setuid_files.append(rest)
        elif tag == "INT" and len(parts) == 2:
            obs.intact[parts[0]] = parts[1]
        elif tag == "SUD":
            obs.sudoers_drops.append(rest)
        elif tag == "ERR":
            obs.errors.append(rest)
    return obs

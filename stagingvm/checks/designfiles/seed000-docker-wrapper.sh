#!/bin/bash
set -e
# Blocklist pattern
BLOCKED_PATTERN="^(exec|cp|commit|diff|export|import|load|save|attach|push|tag)$"
# Parse the first non-flag argument to find the docker subcommand
# Flags: -H, --host, -D, --debug, --config, --context, --log-level, -l
# Also handle: docker compose (subcommand may be after 'compose')
SUBCOMMAND=""
COMPOSE_MODE=false
FOUND_ARG=false
for arg in "$@"; do
  # Skip flags and their values
  case "$arg" in
    -H|--host|-l|--log-level|--config|--context|-D|--debug)
      FOUND_ARG=true
      continue
      ;;
    --tls|--tlsverify|--tlscacert|--tlscert|--tlskey)
      if $FOUND_ARG; then FOUND_ARG=false; else continue; fi
      ;;
    # Skip flag values (the next arg after a flag that takes a value)
    -*)
      continue
      ;;
    *)
      # This is a positional argument — first one is the subcommand (or 'compose')
      if [ -z "$SUBCOMMAND" ]; then
        if [ "$arg" = "compose" ]; then
          COMPOSE_MODE=true
          continue
        fi
        SUBCOMMAND="$arg"
        break
      fi
      ;;
  esac
  FOUND_ARG=false
done
# If in compose mode, the subcommand is after 'compose'
if $COMPOSE_MODE; then
  # In compose mode, we check the sub-subcommand
  NEXT_GOT=""
  for arg in "$@"; do
    if [ "$NEXT_GOT" = "true" ]; then
      if echo "$arg" | grep -qE "$BLOCKED_PATTERN"; then
        echo "ERROR: docker compose '$arg' is blocked by security policy" >&2
        echo "This command can modify files inside containers." >&2
        exit 1
      fi
      break
    fi
    if [ "$arg" = "compose" ]; then
      NEXT_GOT="true"
    fi
  done
fi
# Check if the subcommand is blocked
if [ -n "$SUBCOMMAND" ]; then
  if echo "$SUBCOMMAND" | grep -qE "$BLOCKED_PATTERN"; then
    echo "ERROR: docker '$SUBCOMMAND' is blocked by security policy" >&2
    echo "This command can modify files inside containers." >&2
    echo "" >&2
    echo "Allowed commands: ps, images, inspect, logs, start, stop, restart," >&2
    echo " rm, rmi, pull, build, run, compose, system, network ls, volume ls" >&2
    exit 1
  fi
fi
# Execute the real docker binary
exec /usr/bin/docker "$@"

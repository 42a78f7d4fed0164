#!/usr/bin/env bash
# The main job on the built-in default: build the policy lab's design-B guest (the seeds' sudo
# whitelist for ai-worker), boot it in the lab, run the ai-worker restriction check on it, print
# the verdict with evidence, and destroy the VM. Reports land in out/demo/.
# Run scripts/setup.sh first. Design B is expected to FAIL the check (exit 10 from pr-test-vm):
# finding its escapes is the demo's success, so this script exits 0 then.
set -uo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-design-b}
mkdir -p out/demo
# Build (or find cached) outside the lab: the lab's namespace cannot reach the Debian mirror.
.venv/bin/pr-test-vm image build "$recipe" || exit
.venv/bin/pr-test-vm lab exec -- .venv/bin/pr-test-vm -v test --recipe "$recipe" \
  --name "demo-$recipe" --policy builtin:ai-worker \
  --junit "out/demo/$recipe.junit.xml" --markdown "out/demo/$recipe.md" \
  --report-json "out/demo/$recipe.json"
rc=$?
case "$recipe:$rc" in
  design-a:10|design-b:10)
    echo "demo: as expected, $recipe lets ai-worker around its restrictions (see above and out/demo/$recipe.md)" >&2
    exit 0 ;;
  hardened:0)
    echo "demo: as expected, the hardened design held (out/demo/$recipe.md)" >&2
    exit 0 ;;
esac
echo "demo: unexpected exit $rc from pr-test-vm test for $recipe" >&2
exit "$rc"

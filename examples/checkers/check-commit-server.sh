#!/bin/sh
# A checker server in plain shell (see docs/checker-protocol.md):
#
#   pmemlab explore SCENARIO --checker-server './check-commit-server.sh [CHECKER]'
#
# Each line on stdin is a JSON object naming the crash image ("image": PATH,
# and with a trace "image_dir": DIR); each answer is one line on stdout, `ok`
# or `fail: REASON`. The judging is done by a per-image checker run on the
# image — CHECKER, by default examples/explore/check-commit.sh — in DIR when
# there is one, as `--checker` would run it: the server only turns its exit
# status and last line into a verdict. (Paths made by pmemlab hold no quote
# or backslash, so sed can take them out of the JSON.)
here=$(cd "$(dirname "$0")" && pwd)
check=${1:-"$here/../explore/check-commit.sh"}
field() { printf '%s\n' "$request" | sed -n "s/^.*\"$1\":\"\([^\"]*\)\".*\$/\1/p"; }
while IFS= read -r request; do
  image=$(field image)
  dir=$(field image_dir)
  if [ -z "$image" ]; then
    echo "fail: no image in the request" # never happens with pmemlab
    continue
  fi
  if said=$(cd "${dir:-.}" && "$check" "$image" 2>&1); then
    echo ok
  else
    echo "fail: $(printf '%s\n' "$said" | tail -n 1)"
  fi
done

#!/bin/sh
# A checker server in plain shell: pmemlab explore SCENARIO --checker-server
# './check-commit-server.sh' (see docs/checker-protocol.md).
#
# Each line on stdin is a JSON object naming the crash image ("image": PATH);
# each answer is one line on stdout, `ok` or `fail: REASON`. The judging is
# done by the per-image checker, examples/explore/check-commit.sh, run on the
# image: the server only turns its exit status and last line into a verdict.
# (Paths made by pmemlab hold no quote or backslash, so sed can take them out
# of the JSON.)
here=$(cd "$(dirname "$0")" && pwd)
check="$here/../explore/check-commit.sh"
while IFS= read -r request; do
  image=$(printf '%s\n' "$request" | sed -n 's/^.*"image":"\([^"]*\)".*$/\1/p')
  if [ -z "$image" ]; then
    echo "fail: no image in the request" # never happens with pmemlab
    continue
  fi
  if said=$("$check" "$image" 2>&1); then
    echo ok
  else
    echo "fail: $(printf '%s\n' "$said" | tail -n 1)"
  fi
done

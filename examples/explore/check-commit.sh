#!/bin/sh
# Checker for commit-*.json, run by `pmemlab explore --checker ./check-commit.sh`:
# the crash image is the last argument (also in $PMEMLAB_IMAGE).
# Consistent when every transaction the commit word names has its record:
# "COMMIT n" at offset 0 and "RECORD i" at the start of page i, for i = 1..n.
img="$1"
word=$(dd if="$img" bs=8 count=1 2>/dev/null | tr -d '\000')
[ -z "$word" ] && exit 0 # nothing committed yet
n=${word#COMMIT }
case "$n" in
  '' | *[!0-9]*) echo "garbage commit word '$word'"; exit 1 ;;
esac
i=1
while [ "$i" -le "$n" ]; do
  rec=$(dd if="$img" bs=4096 skip="$i" count=1 2>/dev/null | head -c 8 | tr -d '\000')
  if [ "$rec" != "RECORD $i" ]; then
    echo "transaction $i is committed (commit word $n) but its record is missing"
    exit 1
  fi
  i=$((i + 1))
done
exit 0

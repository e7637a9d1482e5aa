#!/bin/sh
# Checker for planted-bug's crash images, run by
# `pmemlab explore --trace T --checker ./check.sh`: the image is the last
# argument, at the path the program used inside the image directory (the
# current directory). Consistent when the commit word "COMMIT n" (offset 0)
# names no update newer than the payload "DATA m" (offset 4096): n <= m.
img="$1"
word=$(dd if="$img" bs=64 count=1 2>/dev/null | tr -d '\000')
data=$(dd if="$img" bs=4096 skip=1 count=1 2>/dev/null | head -c 64 | tr -d '\000')
[ -z "$word" ] && exit 0 # nothing committed yet
n=${word#COMMIT }
m=${data#DATA }
[ -z "$data" ] && m=0
case "$n$m" in
  *[!0-9]*) echo "garbage: commit word '$word', payload '$data'"; exit 1 ;;
esac
if [ "$n" -gt "$m" ]; then
  echo "update $n is committed but the payload is from update $m"
  exit 1
fi
exit 0

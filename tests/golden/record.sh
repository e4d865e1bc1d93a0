#!/bin/bash
# Re-record the golden transcripts from the real iPXE.
#   tests/golden/record.sh [CASEDIR]          (default: tests/golden/cases)
# Every CASE.ipxe without a CASE.input runs in one `real-ipxe --no-dhcp --batch` run;
# every CASE.ipxe with a CASE.input runs alone, with one --input per line of CASE.input.
# Writes CASE.out and CASE.status next to each script. Never touches .expected/.note.
# REAL_IPXE overrides the path of the recorder (default /work/shared/oracle/real-ipxe).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(cd "${1:-$HERE/cases}" && pwd)
RI=${REAL_IPXE:-/work/shared/oracle/real-ipxe}
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT
for f in "$D"/*.ipxe; do
  n=$(basename "$f" .ipxe)
  [ -e "$D/$n.input" ] || cp "$f" "$S/"
done
"$RI" --no-dhcp --timeout 20 --batch "$S" -j 2 2>"$S/batch.log"
tail -1 "$S/batch.log" >&2
for f in "$S"/*.out "$S"/*.status; do cp "$f" "$D/"; done
for inp in "$D"/*.input; do
  [ -e "$inp" ] || continue
  n=$(basename "$inp" .input)
  args=()
  while IFS= read -r line; do args+=(--input "$line"); done < "$inp"
  "$RI" --no-dhcp --timeout 20 "${args[@]}" "$D/$n.ipxe" > "$D/$n.out" 2> "$S/$n.err"
  rc=$?
  st=$(sed -n 's/.*, status \(.*\)$/\1/p' "$S/$n.err" | tail -1)
  case $rc in 124) st=timeout;; 2) st=none;; 3) st=refused;; esac
  echo "$st" > "$D/$n.status"
  echo "$n: $st" >&2
done

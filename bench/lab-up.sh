#!/usr/bin/env bash
# Lab figures on this machine: image build, `lab up` for 3 and 6 hosts, memory per host, teardown.
# Needs root and a build (`npm run build`). REBUILD_IMAGE=1 deletes the cached image first to time a fresh build.
# Leaves no lab running.
set -euo pipefail
cd "$(dirname "$0")/.."

foobar() { node bin/run.js "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
# Read a field from JSON on stdin: json 'expression over r'
json() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s).result;console.log($1)})"; }

trap 'foobar lab down --purge >/dev/null 2>&1 || true' EXIT
foobar lab down --purge >/dev/null

if [ "${REBUILD_IMAGE:-0}" = 1 ]; then
  rm -rf /var/cache/foobar/lab-image-bookworm /var/cache/foobar/lab-image-bookworm.complete
fi

for n in 3 6; do
  out=$(foobar lab up --hosts "$n" --json)
  image=$(echo "$out" | json "r.image && r.image.built ? r.image.seconds.toFixed(1) + ' s' : 'cached'")
  boot=$(echo "$out" | json "(r.seconds - (r.image ? r.image.seconds : 0)).toFixed(1)")
  [ "$n" = 3 ] && echo "image build:            $image"
  echo "lab up, $n hosts:         $boot s (fresh host disks, to sshd accepting deploy on every host)"
  foobar lab status --json | json "'memory per host (PSS):  ' + r.hosts.map(h => h.name + ' ' + h.memoryMiB + ' MiB').join(', ')"
  t=$(now); foobar lab down >/dev/null; echo "lab down, $n hosts:       $(since "$t") s"
  t=$(now); foobar lab up --hosts "$n" >/dev/null; echo "lab up again, $n hosts:   $(since "$t") s (host disks kept)"
  t=$(now); foobar lab down --purge >/dev/null; echo "lab down --purge:       $(since "$t") s"
done

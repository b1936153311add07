#!/usr/bin/env bash
# Registry push/pull benchmark: lamina vs `skopeo copy` and `podman push/pull`, with a ~150 MB 5-layer image
# and Debian's docker-registry on loopback. Not a test; prints hyperfine tables and ratios.
#
#   bench/registry.sh [WORKDIR]      (default: a temp dir; the image layout is cached in WORKDIR/layout)
#
# Pull = into an empty store, including unpack for lamina and podman (skopeo has no unpack: oci: dir only).
# Push = from each tool's own store/layout to a registry started empty before every run, so nobody can
# skip or cross-repo-mount a blob.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mountpoint -q /bench && echo /bench/lamina-bench-registry || echo "${TMPDIR:-/tmp}/lamina-bench-registry")}
RUNS=${RUNS:-5}
LAYER_MB=${LAYER_MB:-30}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

for t in docker-registry skopeo podman hyperfine sha256sum gzip tar python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

if [ -z "${LAMINA_BIN:-}" ]; then cargo build --release -p lamina >&2; fi
LAMINA=${LAMINA_BIN:-$PWD/target/release/lamina}

# --- the image: 5 layers of LAYER_MB MB each (half random, half text-like), as an OCI layout ---------------
L=$WORK/layout
if [ ! -f "$L/.complete" ]; then
    echo "generating a $((5 * LAYER_MB)) MB image in $L ..." >&2
    rm -rf "$L" && mkdir -p "$L/blobs/sha256"
    python3 - "$L" "$LAYER_MB" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
root, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(os.path.join(root, "blobs/sha256", h), "wb").write(data)
    return "sha256:" + h, len(data)
layers, diff_ids = [], []
words = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()
for i in range(5):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for j in range(8):
            n = mb * 1024 * 1024 // 8
            if j % 2 == 0:
                data = rng.randbytes(n)
            else:
                data = b" ".join(rng.choice(words) for _ in range(n // 6))[:n]
            ti = tarfile.TarInfo(f"layer{i}/file{j}.bin"); ti.size = len(data); ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    d, s = blob(gzip.compress(tar, compresslevel=1, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = blob(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": layers}).encode()
md, ms = blob(m)
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(os.path.join(root, "index.json"), "w"))
PY
    touch "$L/.complete"
fi
du -sh "$L/blobs" >&2

# --- registries --------------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # NAME PORT
    local dir=$WORK/reg-$1
    rm -rf "$dir" && mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir" "$2" > "$dir/config.yml"
    docker-registry serve "$dir/config.yml" >/dev/null 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return 0; sleep 0.05; done
    echo "registry $1 did not start" >&2; return 1
}
stop_registry() { [ -f "$WORK/reg-$1/pid" ] && kill "$(cat "$WORK/reg-$1/pid")" 2>/dev/null; wait "$(cat "$WORK/reg-$1/pid")" 2>/dev/null || true; }
SRC_PORT=$(free_port); PUSH_PORT=$(free_port)
trap 'stop_registry src; stop_registry push' EXIT
start_registry src "$SRC_PORT"
SRC=127.0.0.1:$SRC_PORT
PUSH=127.0.0.1:$PUSH_PORT
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$L:v1" "docker://$SRC/bench/src:v1" >&2

# The push registry is restarted empty before every push run.
cat > "$WORK/fresh-push-registry.sh" <<EOF
#!/usr/bin/env bash
set -e
[ -f "$WORK/reg-push/pid" ] && { kill \$(cat "$WORK/reg-push/pid") 2>/dev/null || true; sleep 0.2; }
rm -rf "$WORK/reg-push" && mkdir -p "$WORK/reg-push"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK/reg-push" "$PUSH_PORT" > "$WORK/reg-push/config.yml"
setsid docker-registry serve "$WORK/reg-push/config.yml" >/dev/null 2>&1 < /dev/null &
echo \$! > "$WORK/reg-push/pid"
for _ in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PUSH_PORT) 2>/dev/null && exit 0; sleep 0.05; done
exit 1
EOF
chmod +x "$WORK/fresh-push-registry.sh"
PODMAN="podman --root $WORK/podman-root --runroot $WORK/podman-run --storage-driver overlay"
reset_podman() { $PODMAN rmi -af >/dev/null 2>&1 || true; rm -rf "$WORK/podman-root" "$WORK/podman-run"; }

# --- pull ----------------------------------------------------------------------------------------------------
hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/pull.json" \
    --prepare "rm -rf $WORK/lamina-root" \
    -n "lamina pull" "$LAMINA --root $WORK/lamina-root pull -q $SRC/bench/src:v1" \
    --prepare "rm -rf $WORK/skopeo-oci" \
    -n "skopeo copy (no unpack)" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$SRC/bench/src:v1 oci:$WORK/skopeo-oci:v1" \
    --prepare "$PODMAN rmi -af >/dev/null 2>&1 || true; rm -rf $WORK/podman-root $WORK/podman-run" \
    -n "podman pull" "$PODMAN pull -q --tls-verify=false $SRC/bench/src:v1"

# --- push ----------------------------------------------------------------------------------------------------
rm -rf "$WORK/lamina-root" && "$LAMINA" --root "$WORK/lamina-root" pull -q "$SRC/bench/src:v1" >/dev/null
reset_podman && $PODMAN pull -q --tls-verify=false "$SRC/bench/src:v1" >/dev/null
hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/push.json" \
    --prepare "$WORK/fresh-push-registry.sh; rm -rf $WORK/lamina-root/cache/blob-sources" \
    -n "lamina push" "$LAMINA --root $WORK/lamina-root push -q $SRC/bench/src:v1 $PUSH/bench/dst:v1" \
    --prepare "$WORK/fresh-push-registry.sh" \
    -n "skopeo copy" "skopeo --insecure-policy copy -q --dest-tls-verify=false oci:$L:v1 docker://$PUSH/bench/dst:v1" \
    --prepare "$WORK/fresh-push-registry.sh" \
    -n "podman push" "$PODMAN push -q --tls-verify=false $SRC/bench/src:v1 docker://$PUSH/bench/dst:v1"
[ -f "$WORK/reg-push/pid" ] && kill "$(cat "$WORK/reg-push/pid")" 2>/dev/null || true
reset_podman

# Floor of a pull with unpack: decompress and extract every layer (pigz -dc | tar -x), from the page cache.
rm -rf "$WORK/floor-x" && mkdir -p "$WORK/floor-x"
s=$(date +%s.%N)
for b in $(find "$L/blobs/sha256" -type f -size +1M); do pigz -dc "$b" | tar -x -C "$WORK/floor-x"; done
sync -f "$WORK"; e=$(date +%s.%N); rm -rf "$WORK/floor-x"
echo "$e - $s" | bc > "$WORK/floor-pull"

python3 - "$WORK/pull.json" "$WORK/push.json" "$WORK/floor-pull" <<'PY'
import json, sys
floor = float(open(sys.argv[3]).read())
print(f"floor: pigz -dc | tar -x of the layers {floor:.2f}s; lamina pull = "
      + f"{[r['mean'] for r in json.load(open(sys.argv[1]))['results'] if r['command'].startswith('lamina')][0] / floor:.2f}x that")
for path in sys.argv[1:3]:
    res = {r["command"]: r["mean"] for r in json.load(open(path))["results"]}
    lam = [v for k, v in res.items() if k.startswith("lamina")][0]
    peers = {k: v for k, v in res.items() if not k.startswith("lamina")}
    best = min(peers, key=peers.get)
    print(f"{path.rsplit('/',1)[-1][:-5]}: lamina {lam:.2f}s; " + ", ".join(f"{k} {v:.2f}s" for k, v in peers.items())
          + f"; lamina/fastest peer ({best}) = {lam / peers[best]:.2f}x")
PY

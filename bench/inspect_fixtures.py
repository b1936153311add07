#!/usr/bin/env python3
"""Writes the OCI layout bench/inspect.sh measures: images a and b (~100k files each, b differs from a in 1% of
the files) and big (~1 GB over 4 layers, with overwritten, deleted and duplicated content). Deterministic."""
import gzip, hashlib, io, json, os, random, subprocess, sys, tarfile

out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
index = {"schemaVersion": 2, "manifests": []}

def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d

def put_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    d = h.hexdigest()
    os.replace(path, f"{out}/blobs/sha256/{d}")
    return "sha256:" + d

def layer(entries):
    """entries: (name, bytes|None for dir|'WH' whiteout). Returns (digest, diff_id, size)."""
    raw = f"{out}/tmp.tar"
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))
    h = hashlib.sha256()
    with open(raw, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    subprocess.run(["pigz", "-1", "-f", raw], check=True)
    size = os.path.getsize(raw + ".gz")
    return put_file(raw + ".gz"), diff_id, size

def image(name, layers):
    descs, diff_ids = [], []
    for i, entries in enumerate(layers):
        d, diff_id, size = layer(entries)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}).encode()
    c = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": len(config)},
                           "layers": descs}).encode()
    m = put(manifest)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m,
                               "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": name}})

rng = random.Random(42)
def files_tree(n, seed_tag, changed=frozenset()):
    entries = []
    for d in range(n // 1000):
        entries.append((f"usr/lib/pkg{d:03}", None))
        for i in range(1000):
            k = d * 1000 + i
            body = (f"file {k} " * (5 + k % 50)).encode()
            if k in changed:
                body += b" changed"
            entries.append((f"usr/lib/pkg{d:03}/f{i:04}.txt", body))
    return [("usr", None), ("usr/lib", None)] + entries

n = 100_000
changed = frozenset(rng.sample(range(n), n // 100))
image("a", [files_tree(n, "a")])
image("b", [files_tree(n, "b", changed)])

# ~1 GB: 4 layers of 1 MB files, half random (incompressible), half text.
def big_layer(start, count, salt):
    entries = [("data", None), (f"data/l{start}", None)]
    for i in range(count):
        if i % 2 == 0:
            body = random.Random(start * 100000 + i + salt).randbytes(1 << 20)
        else:
            body = (f"line {i} {salt} " * 70000)[: 1 << 20].encode()
        entries.append((f"data/l{start}/f{i:04}", body))
    return entries

l0 = big_layer(0, 400, 0)
l1 = big_layer(1, 300, 0)
l2 = [(name, body[::-1] if body and len(body) > 1 else body) for name, body in l0[:102]]  # overwrite 100 files
l3 = [("data/l1/.wh.f0001", b""), ("data/l1/.wh.f0003", b"")] + [(f"data/copy{i}", l1[2 + i][1]) for i in range(100)]
image("big", [l0, l1, l2, l3])
with open(f"{out}/index.json", "w") as f:
    json.dump(index, f)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')

#!/usr/bin/env python3
"""Golden dumpers for the conformance corpus; the format is defined in README.md.

  dump.py tree LAYER.tar...        flatten image layers (bottom first, whiteouts applied) and print tree.txt
  dump.py tree --flat ROOTFS.tar   print tree.txt of one already-flattened tar (whiteout names kept literally)
  dump.py config CONFIG.json       print config.json from an image config blob or `docker inspect` output
  dump.py flatten-tar SAVEDIR OUT.tar  write the flattened rootfs of a `docker save` dir as one tar (for
                                   docker-as-lamina.sh)
  dump.py contents LAYER.tar...    print contents.json: the text of every small UTF-8 file of the flattened tree
                                   (not compared; the harness shows it next to a content difference)

cli/tests/conformance.rs re-implements both in Rust and must print byte-identical output for the same input.
"""
import hashlib
import json
import sys
import tarfile

WH = ".wh."
OPQ = ".wh..wh..opq"


SMALL = 512


class Node:
    __slots__ = ("kind", "mode", "uid", "gid", "size", "sha", "link", "inode", "text", "data")

    def __init__(self, kind, mode, uid, gid, size=None, sha=None, link=None, inode=None, text=None, data=None):
        self.kind, self.mode, self.uid, self.gid = kind, mode, uid, gid
        self.size, self.sha, self.link, self.inode, self.text = size, sha, link, inode, text
        self.data = data


def norm(name):
    """Tar member name -> path relative to the root, as bytes, without ./ or / decorations."""
    raw = name.encode("utf-8", "surrogateescape")
    parts = [p for p in raw.split(b"/") if p not in (b"", b".")]
    if any(p == b".." for p in parts):
        raise SystemExit(f"dump.py: path escapes the root: {name!r}")
    return b"/".join(parts)


def parent(p):
    i = p.rfind(b"/")
    return p[:i] if i >= 0 else b""


def base(p):
    return p[p.rfind(b"/") + 1 :]


class Tree:
    def __init__(self):
        self.nodes = {}
        self.next_inode = 0

    def remove_subtree(self, p, keep_self=False):
        prefix = p + b"/" if p else b""
        for k in [k for k in self.nodes if k.startswith(prefix) or k == p]:
            if keep_self and k == p:
                continue
            del self.nodes[k]

    def ensure_parents(self, p):
        # Docker's applier creates missing parents as root-owned 0755 directories.
        q = parent(p)
        missing = []
        while q and q not in self.nodes:
            missing.append(q)
            q = parent(q)
        for m in missing:
            self.nodes[m] = Node("dir", 0o755, 0, 0)

    def put(self, p, node):
        old = self.nodes.get(p)
        if old is not None and not (old.kind == "dir" and node.kind == "dir"):
            self.remove_subtree(p)
        self.ensure_parents(p)
        self.nodes[p] = node

    def new_inode(self):
        self.next_inode += 1
        return self.next_inode


def read_members(path, keep=False):
    """Yield (tarinfo, normalized path, sha256 hex or None, size) for each member of a tar (any compression)."""
    with tarfile.open(path, "r:*", encoding="utf-8", errors="surrogateescape") as tf:
        for ti in tf:
            p = norm(ti.name)
            sha = None
            if ti.isreg():
                h = hashlib.sha256()
                f = tf.extractfile(ti)
                head = b""
                data = [] if keep else None
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    if not head:
                        head = b[: SMALL + 1]
                    if keep:
                        data.append(b)
                    h.update(b)
                sha = (h.hexdigest(), head, b"".join(data) if keep else None)
            yield ti, p, sha


def add_member(tree, ti, p, sha):
    if not p:
        return  # the root directory itself is not part of the format
    mode = ti.mode & 0o7777
    if ti.isreg():
        digest, head, data = sha
        text = None
        if len(head) <= SMALL:
            try:
                text = head.decode("utf-8")
            except UnicodeDecodeError:
                pass
        tree.put(p, Node("file", mode, ti.uid, ti.gid, ti.size, digest, inode=tree.new_inode(), text=text, data=data))
    elif ti.isdir():
        old = tree.nodes.get(p)
        tree.put(p, Node("dir", mode, ti.uid, ti.gid))
        del old
    elif ti.issym():
        tree.put(p, Node("symlink", mode, ti.uid, ti.gid, link=ti.linkname.encode("utf-8", "surrogateescape")))
    elif ti.islnk():
        target = norm(ti.linkname)
        t = tree.nodes.get(target)
        if t is None or t.kind != "file":
            raise SystemExit(f"dump.py: hardlink {ti.name!r} to missing or non-file {ti.linkname!r}")
        tree.put(p, Node("file", t.mode, t.uid, t.gid, t.size, t.sha, inode=t.inode, text=t.text, data=t.data))
    elif ti.ischr() or ti.isblk():
        kind = "char" if ti.ischr() else "block"
        tree.put(p, Node(kind, mode, ti.uid, ti.gid, link=f"{ti.devmajor},{ti.devminor}".encode()))
    elif ti.isfifo():
        tree.put(p, Node("fifo", mode, ti.uid, ti.gid))
    else:
        raise SystemExit(f"dump.py: unsupported tar entry type {ti.type!r} for {ti.name!r}")


def flatten(layers, flat, keep=False):
    tree = Tree()
    for layer in layers:
        members = list(read_members(layer, keep))
        if not flat:
            for ti, p, _ in members:
                b = base(p)
                if b == OPQ.encode():
                    tree.remove_subtree(parent(p), keep_self=True)
                elif b.startswith(WH.encode()):
                    tree.remove_subtree(parent(p) + b"/" + b[len(WH) :] if parent(p) else b[len(WH) :])
        for ti, p, sha in members:
            if not flat and base(p).startswith(WH.encode()):
                continue
            add_member(tree, ti, p, sha)
    return tree


def write_flat_tar(save_dir, out):
    import io
    import os

    manifest = json.load(open(os.path.join(save_dir, "manifest.json")))[0]
    tree = flatten([os.path.join(save_dir, layer) for layer in manifest["Layers"]], False, keep=True)
    first = {}
    kinds = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "char": tarfile.CHRTYPE,
             "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        for p in sorted(tree.nodes):
            n = tree.nodes[p]
            ti = tarfile.TarInfo(p.decode("utf-8", "surrogateescape"))
            ti.mode, ti.uid, ti.gid, ti.mtime = n.mode, n.uid, n.gid, 0
            if n.kind == "file":
                if n.inode in first:
                    ti.type, ti.linkname = tarfile.LNKTYPE, first[n.inode]
                    tf.addfile(ti)
                else:
                    first[n.inode] = ti.name
                    ti.size = len(n.data)
                    tf.addfile(ti, io.BytesIO(n.data))
                continue
            ti.type = kinds[n.kind]
            if n.kind == "symlink":
                ti.linkname = n.link.decode("utf-8", "surrogateescape")
            elif n.kind in ("char", "block"):
                ti.devmajor, ti.devminor = (int(x) for x in n.link.split(b","))
            tf.addfile(ti)


def esc(b):
    out = []
    for ch in b.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out)


def render(tree):
    groups = {}
    for p, n in tree.nodes.items():
        if n.kind == "file":
            groups.setdefault(n.inode, []).append(p)
    leader = {}
    for members in groups.values():
        if len(members) > 1:
            first = min(members)
            for m in members:
                leader[m] = first
    lines = []
    for p in sorted(tree.nodes):
        n = tree.nodes[p]
        size = sha = link = "-"
        if n.kind == "file":
            size, sha = str(n.size), n.sha
            if p in leader:
                link = "=/" + esc(leader[p])
        elif n.kind in ("symlink", "char", "block"):
            link = esc(n.link)
        lines.append(f"/{esc(p)}\t{n.kind}\t{n.mode:04o}\t{n.uid}\t{n.gid}\t{size}\t{sha}\t{link}\n")
    return "".join(lines)


CONFIG_KEYS = ["Cmd", "Entrypoint", "Env", "ExposedPorts", "Healthcheck", "Labels", "OnBuild", "Shell",
               "StopSignal", "User", "Volumes", "WorkingDir"]


def empty(v):
    return v is None or v == "" or v == [] or v == {}


def normalize_config(doc):
    if isinstance(doc, list):  # docker inspect output
        doc = doc[0]
    cfg = doc.get("config") or doc.get("Config") or {}
    out = {}
    for k in CONFIG_KEYS:
        v = cfg.get(k)
        if empty(v):
            v = None
        elif k == "Env":
            v = sorted(v)
        elif k in ("ExposedPorts", "Volumes"):
            v = sorted(v.keys())
        elif k == "Healthcheck":
            v = {hk: hv for hk, hv in v.items() if not empty(hv) and hv != 0} or None
        out[k] = v
    return json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv):
    if len(argv) >= 2 and argv[0] == "tree":
        flat = argv[1] == "--flat"
        layers = argv[2:] if flat else argv[1:]
        if flat and len(layers) != 1:
            raise SystemExit("dump.py: tree --flat takes exactly one tar")
        sys.stdout.write(render(flatten(layers, flat)))
    elif len(argv) == 3 and argv[0] == "flatten-tar":
        write_flat_tar(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "contents":
        tree = flatten(argv[1:], False)
        texts = {"/" + esc(p): n.text for p, n in sorted(tree.nodes.items()) if n.text is not None}
        sys.stdout.write(json.dumps(texts, indent=1, ensure_ascii=False) + "\n")
    elif len(argv) == 2 and argv[0] == "config":
        with open(argv[1], encoding="utf-8") as f:
            sys.stdout.write(normalize_config(json.load(f)))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Differential check of the corpus against a real dockerd (BuildKit): builds selected positive cases and
expansion-table rows, then compares the image config docker produced (Env, Labels, WorkingDir, User,
ExposedPorts) with `lamina parse --format json`. Manual tool, not part of the test suite.

Usage: DOCKER_HOST=unix:///tmp/peers-dockerd/docker.sock testdata/dockerfile/check-dockerd.py [LAMINA_BIN]
Env BASE: the busybox image to substitute for `busybox` (default localhost:5000/busybox:latest).
"""
import json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))
LAMINA = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else os.path.join(ROOT, "../../target/debug/lamina")
BASE = os.environ.get("BASE", "localhost:5000/busybox:latest")
# Newer docker clients refuse BuildKit without buildx; Debian's 20.10 client speaks it natively.
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker")
CASES = """env-same-instruction env-escaped-dollar env-default-forms env-forms env-pattern-forms env-from-base-stage
arg-global-not-in-stage arg-global-redeclared arg-global-redeclared-default arg-global-build-arg arg-global-chain
arg-env-precedence arg-scope-per-stage arg-no-value arg-empty-value arg-build-arg-override arg-platform-not-declared
arg-multi label-multi label-legacy user-workdir expose-arg expose directive-escape-backtick-expansion
directive-after-comment-ignored continuation-comment-inside crlf stopsignal from-stage-chain
arg-inherited-by-child-stage arg-after-env-wins-for-expansion""".split()


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def opts_of(case):
    p = os.path.join(ROOT, "positive", case + ".opts")
    out = {"build_args": [], "target": None}
    if os.path.exists(p):
        for line in open(p).read().split("\n"):
            if line.startswith("build-arg="):
                out["build_args"].append(line[len("build-arg="):])
            elif line.startswith("target="):
                out["target"] = line[len("target="):]
    return out


def docker_config(dockerfile_text, o):
    with tempfile.TemporaryDirectory() as ctx:
        open(os.path.join(ctx, "Dockerfile"), "w", newline="").write(dockerfile_text)
        cmd = [DOCKER, "build", "-q", "--network=none"]
        for a in o["build_args"]:
            cmd += ["--build-arg", a]
        if o["target"]:
            cmd += ["--target", o["target"]]
        r = subprocess.run(cmd + [ctx], capture_output=True, text=True, env=dict(os.environ, DOCKER_BUILDKIT="1"))
        if r.returncode != 0:
            return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "build failed"
        img = r.stdout.strip()
        cfg = json.loads(sh(DOCKER, "image", "inspect", img).stdout)[0]["Config"]
        sh(DOCKER, "rmi", img)
        return cfg, None


def ours(dockerfile_text, o):
    with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False, newline="") as f:
        f.write(dockerfile_text)
    cmd = [LAMINA, "parse", "-f", f.name, "--format", "json", "--platform", "linux/amd64"]
    for a in o["build_args"]:
        cmd += ["--build-arg", a]
    if o["target"]:
        cmd += ["--target", o["target"]]
    r = sh(*cmd)
    os.unlink(f.name)
    if r.returncode != 0:
        return None, r.stderr.strip()
    rep = json.loads(r.stdout)
    env, labels, workdir, user, ports = {}, {}, None, None, set()
    for st in rep["stages"]:
        # Only the target's chain of FROM-stage bases contributes config; walk it from the target down.
        pass
    chain, pos = [], len(rep["stages"]) - 1
    while True:
        chain.insert(0, rep["stages"][pos])
        b = rep["stages"][pos]["base"]
        if isinstance(b, dict) and "stage" in b:
            pos = b["stage"]
        else:
            break
    for st in chain:
        for s in st["steps"]:
            if s["kind"] == "label":
                for kv in s["labels"]:
                    labels[kv["key"]["value"]] = kv["value"]["value"]
            elif s["kind"] == "workdir":
                p = s["path"]["value"]
                workdir = p if p.startswith("/") else os.path.join(workdir or "/", p)
            elif s["kind"] == "user":
                user = s["user"]["value"]
            elif s["kind"] == "expose":
                for p in s["ports"]:
                    v = p["value"]
                    port, _, proto = v.partition("/")
                    lo, _, hi = port.partition("-")
                    for n in range(int(lo), int(hi or lo) + 1):
                        ports.add(f"{n}/{proto or 'tcp'}")
    env = dict(chain[-1]["final_env"])
    return {"env": env, "labels": labels, "workdir": workdir, "user": user, "ports": ports}, None


def compare(name, text, o, base_env, base_labels):
    dtext = re.sub(r"(?im)^(\s*from\s+(?:--platform=\S+\s+)?)busybox\b", r"\g<1>" + BASE, text)
    cfg, err = docker_config(dtext, o)
    mine, merr = ours(text, o)
    if cfg is None:
        return f"SKIP {name}: docker failed: {err}" + (f" (lamina: {merr})" if merr else " (lamina accepted it)")
    if mine is None:
        return f"DIFF {name}: docker built it, lamina failed: {merr}"
    denv = dict(e.split("=", 1) for e in (cfg.get("Env") or []))
    for k, v in base_env.items():
        if denv.get(k) == v and k not in mine["env"]:
            del denv[k]
    problems = []
    if denv != mine["env"]:
        problems.append(f"env docker={denv} lamina={mine['env']}")
    dlabels = {k: v for k, v in (cfg.get("Labels") or {}).items() if base_labels.get(k) != v or k in mine["labels"]}
    if dlabels != mine["labels"]:
        problems.append(f"labels docker={cfg.get('Labels')} lamina={mine['labels']}")
    if mine["workdir"] and cfg.get("WorkingDir") != mine["workdir"]:
        problems.append(f"workdir docker={cfg.get('WorkingDir')} lamina={mine['workdir']}")
    if mine["user"] and cfg.get("User") != mine["user"]:
        problems.append(f"user docker={cfg.get('User')} lamina={mine['user']}")
    if set((cfg.get("ExposedPorts") or {}).keys()) != mine["ports"]:
        problems.append(f"ports docker={cfg.get('ExposedPorts')} lamina={mine['ports']}")
    return (f"DIFF {name}: " + "; ".join(problems)) if problems else f"OK   {name}"


def main():
    base_cfg = json.loads(sh(DOCKER, "image", "inspect", BASE).stdout or "[{}]")[0].get("Config") or {}
    base_env = dict(e.split("=", 1) for e in (base_cfg.get("Env") or []))
    base_labels = base_cfg.get("Labels") or {}
    results = []
    for case in CASES:
        text = open(os.path.join(ROOT, "positive", case + ".Dockerfile"), newline="").read()
        results.append(compare(case, text, opts_of(case), base_env, base_labels))
        print(results[-1], flush=True)
    if "--cases-only" in sys.argv:
        return
    # Expansion rows: one LABEL per row over an ENV holding the table's environment.
    rows = []
    for i, line in enumerate(open(os.path.join(ROOT, "expand.tsv")).read().split("\n")):
        c = line.split("\t")
        if len(c) != 5 or line.startswith("#") or c[0] != "word" or c[1] != "\\" or c[4].startswith("!"):
            continue
        if re.search(r"\s", c[2]) or c[2] == "":
            continue
        rows.append((i + 1, c))
    for lineno, c in rows:
        env = json.loads(c[3])
        env_line = "ENV " + " ".join(f'{k}="{v}"' for k, v in env.items()) if env else ""
        text = f"FROM busybox\n{env_line}\nLABEL r={c[2]}\n"
        dtext = text.replace("FROM busybox", "FROM " + BASE)
        cfg, err = docker_config(dtext, {"build_args": [], "target": None})
        if cfg is None:
            print(f"SKIP expand.tsv:{lineno} {c[2]!r}: docker: {err}", flush=True)
            continue
        got = (cfg.get("Labels") or {}).get("r")
        status = "OK  " if got == c[4] else "DIFF"
        print(f"{status} expand.tsv:{lineno} {c[2]!r}: docker={got!r} ours={c[4]!r}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Transcribes BuildKit's parser testfiles into lamina's own table, parser.jsonl.

Source: github.com/moby/buildkit, frontend/dockerfile/parser/testfiles/*/{Dockerfile,result} (TestParseCases:
the AST dump must equal `result`) and testfiles-negative/*/Dockerfile (TestParseErrorCases: parsing must fail).
One JSON object a line, the input and the expected facts only:

    {"case": "testfiles/NAME", "dockerfile": TEXT, "result": [DUMP LINE, ...]}
    {"case": "testfiles-negative/NAME", "dockerfile": TEXT, "error": true}

    ./transcribe_parser.py /work/.mirror/moby+buildkit/repo > parser.jsonl
"""
import json
import subprocess
import sys

BASE = "frontend/dockerfile/parser"


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def cases(repo, sub):
    names = git(repo, "ls-tree", "--name-only", f"HEAD:{BASE}/{sub}").decode().split()
    return sorted(names)


def main(repo):
    commit = git(repo, "rev-parse", "HEAD").decode().strip()
    print(json.dumps({"source": "github.com/moby/buildkit", "commit": commit}))
    for name in cases(repo, "testfiles"):
        df = git(repo, "show", f"HEAD:{BASE}/testfiles/{name}/Dockerfile").decode()
        result = git(repo, "show", f"HEAD:{BASE}/testfiles/{name}/result").decode()
        print(json.dumps({"case": f"testfiles/{name}", "dockerfile": df, "result": result.splitlines()},
                         ensure_ascii=False))
    for name in cases(repo, "testfiles-negative"):
        df = git(repo, "show", f"HEAD:{BASE}/testfiles-negative/{name}/Dockerfile").decode()
        print(json.dumps({"case": f"testfiles-negative/{name}", "dockerfile": df, "error": True},
                         ensure_ascii=False))


main(sys.argv[1])

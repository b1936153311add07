#!/usr/bin/env python3
"""Transcribes BuildKit's shell-lexer test vectors into lamina's own table, shell.tsv.

Source: github.com/moby/buildkit, frontend/dockerfile/shell/{envVarTest,wordsTest,lex_test.go}
(TestShellParser4EnvVars, TestShellParser4Words, TestShellParserMandatoryEnvVars, TestProcessWithMatches).
Only the facts (input, variables, expected result) are kept, one row each, as JSON so blanks survive:

    SOURCE:LINE  mode  input  env  expected

mode `word` (ProcessWord: expected is a string or the word "error", or {"error_contains": "..."}) or
`words` (ProcessWords: expected is a list of fields or "error"). Windows-only rows (`W|`) are left out.

    git -C /work/.mirror/moby+buildkit/repo show HEAD:frontend/dockerfile/shell/envVarTest > /tmp/envVarTest
    ... (same for wordsTest, lex_test.go) ...
    ./transcribe.py /tmp/envVarTest /tmp/wordsTest /tmp/lex_test.go > shell.tsv
"""
import json
import re
import sys


def row(src, mode, inp, env, expected):
    return "\t".join([src, mode, json.dumps(inp, ensure_ascii=False), json.dumps(env, ensure_ascii=False),
                      json.dumps(expected, ensure_ascii=False)])


def env_var_test(path):
    env = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}
    for n, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        if line.startswith("#") or not line.strip():
            continue
        plat, source, expected = [w.strip() for w in line.strip().split("|")]
        if plat == "W":
            continue
        yield row(f"envVarTest:{n}", "word", source, env, "error" if expected == "error" else expected)


def words_test(path):
    env = {}
    for n, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        if line.startswith("#") or line == "":
            continue
        if line.startswith("ENV "):
            k, v = line[3:].lstrip(" ").split("=", 1)
            env[k] = v
            continue
        test, expected = line.split("|")
        exp = expected.lstrip(" ").split(",")
        yield row(f"wordsTest:{n}", "words", test.strip(), dict(env), "error" if exp == ["error"] else exp)


def go_str(s):
    return json.loads(s)


def lex_test(path):
    text = open(path, encoding="utf-8").read()
    # TestShellParserMandatoryEnvVars
    sets = {"set": {"VAR": "plain", "ARG": "x"}, "empty": {"VAR": "", "ARG": "x"}, "unset": {"ARG": "x"}}
    start = text.index("func TestShellParserMandatoryEnvVars")
    base = text[:start].count("\n") + 1
    for inp, results in [("${VAR:?message here$ARG}", ["plain", {"error_contains": "message herex"},
                                                         {"error_contains": "message herex"}]),
                         ("${VAR?message here$ARG}", ["plain", "", {"error_contains": "message herex"}])]:
        for (name, env), exp in zip(sets.items(), results):
            yield row(f"lex_test.go:{base}", "word", inp, env, exp)
    # TestProcessWithMatches: the table's cases
    start = text.index("func TestProcessWithMatches(")
    end = text.index("func TestProcessWithMatchesPlatform")
    body = text[start:end]
    offset = text[:start].count("\n") + 1
    for m in re.finditer(r"\{\s*(?://[^\n]*\n\s*)*input:\s*\"", body):
        depth, i = 0, m.start()
        while True:
            c = body[i]
            if body.startswith("//", i):
                i = body.index("\n", i)
            elif c == '"':
                j = i + 1
                while body[j] != '"':
                    j += 2 if body[j] == "\\" else 1
                i = j
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        case = body[m.start():i + 1]
        line = offset + body[:m.start()].count("\n")
        strlit = r'"(?:[^"\\]|\\.)*"'
        mi = re.search(r"input:\s*(" + strlit + ")", case)
        assert mi, case
        inp = go_str(mi.group(1))
        envm = re.search(r"envs:\s*map\[string\]string\{(.*?)\},\n", case, re.S)
        env = {}
        if envm:
            for k, v in re.findall("(" + strlit + r")\s*:\s*(" + strlit + ")", envm.group(1)):
                env[go_str(k)] = go_str(v)
        if "expectedErr: true" in case:
            exp = "error"
        else:
            e = re.search(r"expected:\s*(" + strlit + ")", case)
            exp = go_str(e.group(1))
        yield row(f"lex_test.go:{line}", "word", inp, env, exp)
    # TestProcessWithMatchesPlatform
    start = text.index("func TestProcessWithMatchesPlatform")
    line = text[:start].count("\n") + 1
    rel = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"
    e = {"VERSION": "v1.2.3", "TARGETOS": "linux"}
    yield row(f"lex_test.go:{line}", "word", rel, {**e, "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
              "something-v1.2.3.linux-arm-v7.tar.gz")
    yield row(f"lex_test.go:{line}", "word", rel, {**e, "TARGETARCH": "arm64", "TARGETVARIANT": ""},
              "something-v1.2.3.linux-arm64.tar.gz")
    yield row(f"lex_test.go:{line}", "word", rel, {**e, "TARGETARCH": "arm64"}, "something-v1.2.3.linux-arm64.tar.gz")


if __name__ == "__main__":
    ev, wt, lt = sys.argv[1:4]
    print("# Transcribed from moby/buildkit frontend/dockerfile/shell by transcribe.py; see its docstring.")
    print("# source\tmode\tinput\tenv\texpected")
    for gen in (env_var_test(ev), words_test(wt), lex_test(lt)):
        for r in gen:
            print(r)

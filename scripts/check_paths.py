"""Every repository path named in the docs and in code comments exists.

A rename leaves the prose behind: a module's comment that names a file
which moved sends the next reader nowhere. scripts/test.sh runs this with
the lints. It reads README.md, CONTRIBUTING.md and docs/*.md whole, and
the comments (and Python docstrings) of the code under src/, tests/,
pyworker/, bench/ and scripts/, and takes as a path what starts with one
of the top-level folders below and ends with a file extension or a slash
(``src/engine/reporter.rs``, ``pyworker/tests/``); ``{a,b}`` alternatives
and ``*`` globs are expanded. ``tests/NAME.py`` is a user's test file in
an example (this repository keeps no Python file at the top of tests/).

    python3 scripts/check_paths.py     # exit 1 and one line per missing path
"""
import ast
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_DIRS = ("src", "tests", "pyworker", "docs", "bench", "scripts")
PROSE = ["README.md", "CONTRIBUTING.md", *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
CODE_DIRS = ("src", "tests", "pyworker", "bench", "scripts")
CODE_COMMENT = {".rs": "//", ".py": "#", ".sh": "#"}
PATH = re.compile(r"(?<![\w./-])(?:\.\./)*((?:%s)/(?:[\w.*/-]|\{[\w.,/-]*\})*?(?:\.[A-Za-z0-9]+|/))(?![\w/-])"
                  % "|".join(TOP_DIRS))
# A user's test file in an example, not this tree's (this tree keeps no
# Python file at the top of tests/).
NOT_IN_TREE = re.compile(r"^tests/[^/]+\.py$")


def expand(path):
    """``a/{b,c}.rs`` -> ``a/b.rs``, ``a/c.rs``."""
    match = re.search(r"\{([^{}]*)\}", path)
    if match is None:
        return [path]
    return [p for alt in match.group(1).split(",") for p in expand(path[:match.start()] + alt + path[match.end():])]


def exists(path):
    if "*" in path:
        return bool(glob.glob(os.path.join(ROOT, path)))
    return os.path.exists(os.path.join(ROOT, path))


def comment_lines(path, text):
    """(line number, text) of a code file's comments and docstrings."""
    ext = os.path.splitext(path)[1]
    marker = CODE_COMMENT.get(ext)
    if marker is None:
        return []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if marker in line
             and line.strip().startswith(marker)]
    if ext == ".py":
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return lines
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc and node.body:
                    start = node.body[0].lineno
                    lines += [(start + i, line) for i, line in enumerate(doc.splitlines())]
        # A trailing comment after code.
        lines += [(n, line[line.index("  # ") :]) for n, line in enumerate(text.splitlines(), 1)
                  if "  # " in line and not line.strip().startswith("#")]
    elif ext == ".rs":
        lines += [(n, line[line.index(" // ") :]) for n, line in enumerate(text.splitlines(), 1)
                  if " // " in line and not line.strip().startswith("//")]
    return lines


def sources():
    for path in PROSE:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            yield os.path.relpath(os.path.join(ROOT, path), ROOT), list(enumerate(f.read().splitlines(), 1))
    for top in CODE_DIRS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "target")]
            for name in sorted(files):
                full = os.path.join(folder, name)
                try:
                    with open(full, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                yield os.path.relpath(full, ROOT), comment_lines(full, text)


def missing():
    for source, lines in sources():
        for number, line in lines:
            for match in PATH.finditer(line):
                named = match.group(1)
                if NOT_IN_TREE.match(named):
                    continue
                for path in expand(named):
                    if not exists(path):
                        yield f"{source}:{number}: {path} does not exist"


def main():
    problems = sorted(set(missing()))
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_paths.py: {len(problems)} named path(s) missing: fix the name, or the file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What elcrec_train.py and iclrec_train.py share: the ICLRec-lineage main.py (ELCRec's is a copy of
ICLRec's) run from its own source up to the trainer's construction, so that the official objects are
built by the official statements, with the flags a script gives."""

import ast
import os
import sys


def main_objects(src, argv, functions=()):
    """In `src`, with sys.argv = ["main.py", *argv]: main.py's top-level imports and the named
    top-level functions, then main()'s statements up to and including `trainer = ...`; the namespace."""
    path = os.path.join(src, "main.py")
    with open(path) as handle:
        tree = ast.parse(handle.read(), filename=path)
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    top += [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in functions]
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    prefix = []
    for statement in main.body:
        prefix.append(statement)
        if isinstance(statement, ast.Assign) and any(getattr(t, "id", None) == "trainer" for t in statement.targets):
            break
    namespace = {"__name__": "official_main"}
    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(src)
    sys.argv = ["main.py", *argv]
    try:
        exec(compile(ast.Module(body=top, type_ignores=[]), path, "exec"), namespace)
        exec(compile(ast.Module(body=prefix, type_ignores=[]), path, "exec"), namespace)
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    return namespace

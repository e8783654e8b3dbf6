"""The in-kernel integrity guard: detects code in a submission that alters the checks running in the same kernel.

The grader inserts cells the student never sees (run without history):
- setup, before any student code: imports the watched libraries, snapshots them, the builtins, the interpreter and
  IPython hooks, and installs an audit hook (`sys.addaudithook`, which cannot be removed) that refuses trace and
  profile functions, walking the garbage collector's referrers, raw memory access through ctypes, swapping a
  function's code, and patching classes of the protected libraries;
- record, after each instructor (locked) code cell: remembers the objects that cell bound (helpers, imports);
- check, before each autograded test cell: compares everything with the snapshot and with the recorded
  objects, looks at the names the test cell uses (a name bound to a module must be the genuine module), and prints
  a token signed with a per-run secret. A missing, forged or failing check gives that test cell an error (0
  points) and a flag with the reason.

Changes made by library code (a library registering an IPython hook, lazily filling a module attribute) are
allowed; changes whose code comes from the notebook (a cell, eval/exec, a file it wrote) are tampering.

Limits: this runs in the student's kernel, so it raises the bar rather than proving integrity: C extensions or a
student who knows this code and finds a path the audit hook does not cover could still defeat it. The sandbox
(sandbox.py) bounds what such code can reach; the exercises' own tests compare plain data of exact types.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import secrets
import sys

from .sandbox import _course_package_dirs, _python_roots

WATCH = ("builtins", "sys", "math", "operator", "functools", "numpy", "numpy.testing", "numpy.linalg", "torch",
         "torch.testing", "torch.nn.functional", "unittest", "IPython.core.interactiveshell", "ipykernel.ipkernel")
PROTECTED_PREFIXES = ("builtins", "numpy", "torch", "math", "operator", "IPython",
                      "unittest", "functools")

_KERNEL_CODE = r'''
def __w7g_install(SECRET, ROOTS, WATCH, PROTECTED):
    import sys, builtins, importlib, hmac, hashlib, json, types, functools
    # the builtins the guard uses, bound now: a later `builtins.type = ...` cannot change the guard's own checks
    (type, isinstance, getattr, vars, any, sorted, set, list, tuple, dict, len, str, callable, hasattr, int,
     range, RuntimeError, Exception) = (builtins.type, builtins.isinstance, builtins.getattr, builtins.vars,
     builtins.any, builtins.sorted, builtins.set, builtins.list, builtins.tuple, builtins.dict, builtins.len,
     builtins.str, builtins.callable, builtins.hasattr, builtins.int, builtins.range, builtins.RuntimeError,
     builtins.Exception)
    ModuleType, FunctionType = types.ModuleType, types.FunctionType
    getframe = sys._getframe
    ip = get_ipython()
    out = sys.stdout
    write = type(out).write
    flush = type(out).flush
    mods = {}
    for name in WATCH:
        try:
            mods[name] = importlib.import_module(name)
        except Exception:
            pass
    base = {n: dict(vars(m)) for n, m in mods.items()}
    classes = []
    for modname, clsname in (("numpy", "ndarray"), ("numpy", "generic"), ("torch", "Tensor"),
                             ("torch.nn", "Module"), ("builtins", "object")):
        c = getattr(mods.get(modname) or sys.modules.get(modname), clsname, None)
        if isinstance(c, type):
            classes.append(c)
    cls_base = {c: dict(vars(c)) for c in classes}
    sysmods = {n: m for n, m in mods.items()}
    def code_file(o):
        for _ in range(8):
            if isinstance(o, functools.partial):
                o = o.func
            elif isinstance(o, (types.MethodType,)):
                o = o.__func__
            elif isinstance(o, (staticmethod, classmethod)):
                o = o.__func__
            else:
                break
        c = getattr(o, "__code__", None)
        if c is not None:
            return c.co_filename
        if isinstance(o, (types.BuiltinFunctionType, types.ModuleType, int, float, complex, str, bytes, bool,
                          type(None), frozenset, tuple, types.WrapperDescriptorType, types.MethodWrapperType,
                          types.MethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType)):
            return None
        t = o if isinstance(o, type) else type(o)
        m = sys.modules.get(getattr(t, "__module__", "") or "")
        if getattr(t, "__module__", "") == "builtins":
            return None
        return getattr(m, "__file__", None) or "<unknown>"
    def foreign(o):
        f = code_file(o)
        if f is None:
            return False
        return not any(f.startswith(r + "/") for r in ROOTS)
    def hooks():
        h = {
            "sys.displayhook": (sys.displayhook,), "sys.excepthook": (sys.excepthook,),
            "sys.breakpointhook": (sys.breakpointhook,), "sys.meta_path": tuple(sys.meta_path),
            "sys.path_hooks": tuple(sys.path_hooks), "sys.stdout": (sys.stdout,), "sys.stderr": (sys.stderr,),
            "ip.ast_transformers": tuple(ip.ast_transformers),
            "ip.input_transformers_cleanup": tuple(ip.input_transformers_cleanup),
            "ip.input_transformers_post": tuple(ip.input_transformers_post),
            "ip.custom_exceptions": tuple(ip.custom_exceptions) + (ip.CustomTB,),
            "ip.displayhook": (ip.displayhook,), "ip.compile": (ip.compile,),
            "ip.display_formatter": (ip.display_formatter,),
            "ip.instance": tuple(v for k, v in vars(ip).items() if callable(v) and not isinstance(v, type)),
            "kernel.instance": tuple(v for k, v in vars(getattr(ip, "kernel", None) or object()).items()
                                     if callable(v) and not isinstance(v, type)) if hasattr(ip, "kernel") else (),
            "user_ns.__builtins__": (ip.user_ns.get("__builtins__"),),
            "builtins.__import__": (builtins.__import__,),
        }
        for ev, cbs in ip.events.callbacks.items():
            h["ip.events." + ev] = tuple(cbs)
        for fmt in getattr(ip.display_formatter, "formatters", {}).values():
            h["formatter." + type(fmt).__name__] = tuple(getattr(fmt, "type_printers", {}).values()) + tuple(
                getattr(fmt, "deferred_printers", {}).values())
        return h
    hook_base = hooks()
    recorded = {}
    state = {"armed": False, "seq": 0, "denied": []}
    def audit(event, args):
        if not state["armed"]:
            return
        deny = None
        if event in ("sys.settrace", "sys.setprofile"):
            deny = event
        elif event in ("gc.get_referrers", "gc.get_referents", "gc.get_objects", "ctypes.string_at",
                       "ctypes.cdata", "ctypes.wstring_at", "ctypes.set_errno", "sys.addaudithook"):
            deny = event
        elif event == "object.__setattr__" and args:
            obj, name = args[0], args[1]
            if name == "__code__":
                deny = "replacing a function's __code__"
            elif isinstance(obj, type) and str(getattr(obj, "__module__", "")).split(".")[0] in PROTECTED:
                deny = "patching %s.%s.%s" % (obj.__module__, obj.__qualname__, name)
        elif event == "object.__delattr__" and args and isinstance(args[0], type) and \
                str(getattr(args[0], "__module__", "")).split(".")[0] in PROTECTED:
            deny = "deleting %s.%s" % (args[0].__qualname__, args[1])
        if deny:
            # library code may do these things itself (torch patches its own classes while importing lazily):
            # refuse only when the code asking is notebook code
            f = getframe(1)
            caller = f.f_code.co_filename if f is not None else "<unknown>"
            if any(caller.startswith(r + "/") for r in ROOTS):
                return
            state["denied"].append(deny)
            raise RuntimeError("autograder: %s is not allowed while grading" % deny)
    sys.addaudithook(audit)
    def sign(msg):
        return hmac.new(SECRET, msg.encode(), hashlib.sha256).hexdigest()
    def emit(seq, status):
        msg = "%d:%s" % (seq, status)
        write(out, "W7GUARD " + msg + " " + sign(msg) + "\n")
        flush(out)
    def check(seq, names):
        problems = list(dict.fromkeys(state["denied"]))
        if sys.gettrace() is not None or sys.getprofile() is not None:
            problems.append("a trace or profile function is set")
        for n, m in mods.items():
            if sys.modules.get(n) is not sysmods[n]:
                problems.append("sys.modules[%r] replaced" % n)
            cur = vars(m)
            for k, v in cur.items():
                if k in base[n] and base[n][k] is v:
                    continue
                if isinstance(v, ModuleType):
                    continue
                if foreign(v):
                    problems.append("%s.%s changed by notebook code" % (n, k))
            for k in base[n]:
                if k not in cur and not k.startswith("__"):
                    problems.append("%s.%s deleted" % (n, k))
        for c, old_dict in cls_base.items():
            for k, v in vars(c).items():
                if old_dict.get(k, None) is v:
                    continue
                if foreign(v):
                    problems.append("%s.%s changed by notebook code" % (c.__qualname__, k))
        now = hooks()
        for k, vals in now.items():
            old = hook_base.get(k, ())
            for v in vals:
                if any(v is o for o in old):
                    continue
                if foreign(v):
                    problems.append("%s changed by notebook code" % k)
                    break
        ns = ip.user_ns
        for name, obj in recorded.items():
            if ns.get(name, None) is not obj:
                problems.append("instructor name %r rebound" % name)
        for name in names:
            v = ns.get(name)
            if isinstance(v, ModuleType):
                if sys.modules.get(v.__name__) is not v or foreign(v):
                    problems.append("name %r is not the genuine module" % name)
            elif name in ("np", "numpy", "torch", "math", "nn", "F") and name in ns:
                problems.append("name %r is not a module" % name)
        status = "ok" if not problems else "tampered " + json.dumps(sorted(set(problems))[:12])
        emit(seq, status)
    def record(names):
        ns = ip.user_ns
        for n in names:
            if n in ns and isinstance(ns[n], (ModuleType, FunctionType, type)):
                recorded[n] = ns[n]
    def dispatch(event, args):
        if event == "w7guard.check":
            check(args[0], args[1])
        elif event == "w7guard.record":
            record(args[0])
    sys.addaudithook(lambda e, a: dispatch(e, a) if e.startswith("w7guard.") else None)
    state["armed"] = True
    emit(-1, "ok")
'''


def roots() -> list[str]:
    return _python_roots() + _course_package_dirs()


class Guard:
    """Grader side: makes the hidden cells' code and verifies what they printed."""

    def __init__(self, imported: set[str] | None = None) -> None:
        """imported: top-level modules the assignment's notebooks import (the guard pre-imports and watches
        only those of WATCH, so an assignment without torch does not pay for importing it)."""
        self.secret = secrets.token_bytes(32)
        self.seq = 0
        base = {"builtins", "sys", "math", "operator", "functools", "unittest", "IPython", "ipykernel"}
        wanted = base | set(imported or ())
        self.watch = tuple(m for m in WATCH if m.split(".")[0] in wanted)

    def setup_code(self) -> str:
        return (_KERNEL_CODE + f"\n__w7g_install(bytes.fromhex({self.secret.hex()!r}), {roots()!r}, "
                f"{self.watch!r}, {PROTECTED_PREFIXES!r})\ndel __w7g_install\n")

    def check_code(self, test_source: str) -> tuple[int, str]:
        self.seq += 1
        names = sorted(names_used(test_source))
        return self.seq, f"__import__('sys').audit('w7guard.check', {self.seq}, {names!r})"

    @staticmethod
    def record_code(cell_source: str) -> str | None:
        names = sorted(names_bound(cell_source))
        if not names:
            return None
        return f"__import__('sys').audit('w7guard.record', {names!r})"

    def verify(self, seq: int, text: str) -> str | None:
        """None when the check for `seq` printed a valid 'ok'; otherwise the reason."""
        for line in text.splitlines():
            if not line.startswith("W7GUARD "):
                continue
            try:
                _, rest = line.split(" ", 1)
                msg, sig = rest.rsplit(" ", 1)
            except ValueError:
                continue
            want = hmac.new(self.secret, msg.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, sig):
                return "integrity check output forged"
            s, status = msg.split(":", 1)
            if int(s) != seq:
                continue
            if status == "ok":
                return None
            if status.startswith("tampered "):
                try:
                    return "tampering: " + "; ".join(json.loads(status[len("tampered "):]))
                except ValueError:
                    return "tampering"
        return "integrity check did not run (its output was suppressed or the kernel was altered)"


def modules_imported(sources: list[str]) -> set[str]:
    """Top-level module names imported by the given cell sources."""
    out: set[str] = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                out |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
                out.add(n.module.split(".")[0])
    return out


def names_used(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def names_bound(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name != "*":
                    out.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.add(n.id)
    return out


def _self_test() -> None:  # pragma: no cover - quick manual check
    g = Guard()
    print(g.check_code("assert np.allclose(f(1), 2)"))
    print(names_bound("import numpy as np\nfrom math import pi\ndef h(): pass\nx = y = 1"))


if __name__ == "__main__":  # pragma: no cover
    _self_test()
    sys.exit(0)

"""Command line: python -m autograder <command> --help

From a folder of submissions to grades and feedback in one command:

    python -m autograder grade-all 04-sparse-attention --from ~/submissions/04 --duedate "2026-12-01 17:00:00 UTC"

(imports the folder into the workspace, autogrades in parallel in the sandbox, writes feedback and exports).
The steps one by one: generate, release, collect, autograde, (grade by hand in the formgrader, or
grade-manual), feedback, export, status; formgrader-config says how the formgrader shares the gradebook.
Exit status: 0 when everything was graded; 1 when a submission failed (could not be graded: `status` says why)
or a generated solution / student version does not score as it must; 2 for a wrong command line or setting.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .settings import Settings
from .source import notebook_ids, source_files


def _settings(args) -> Settings:
    s = Settings()
    if getattr(args, "workspace", None):
        s.workspace = Path(args.workspace).resolve()
    if getattr(args, "course_root", None):
        s.course_root = Path(args.course_root).resolve()
    for name in ("cell_timeout", "notebook_timeout"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(s, name + "_s", v)
    if getattr(args, "sandbox", None):
        s.sandbox = args.sandbox
    _preflight(s, args)
    from .workspace import write_nbgrader_config

    write_nbgrader_config(s)  # one gradebook: the formgrader uses the same course root (the workspace)
    return s


# the commands that open the gradebook: a damaged one stops them before anything is written (preflight.py)
GRADEBOOK_COMMANDS = frozenset({"autograde", "grade-all", "status", "export", "feedback", "grade-manual", "collect"})


def _preflight(s: Settings, args) -> None:
    """A damaged gradebook or a workspace that cannot be written: a message naming it and what to do (exit 2),
    with nothing changed."""
    from .preflight import check_gradebook, check_workspace

    if getattr(args, "command", None) in GRADEBOOK_COMMANDS:
        check_gradebook(s.workspace, s.db_path)
    check_workspace(s.workspace)


def _assignments(s: Settings, args) -> list[str]:
    if getattr(args, "all", False):
        found = sorted(p.name for p in s.solutions.iterdir() if p.is_dir() and source_files(p)) \
            if s.solutions.is_dir() else []
        if not found:
            raise SystemExit(f"no assignments in {s.solutions} (folders of nbgrader source notebooks)")
        return found
    if not args.assignment:
        raise SystemExit("name an assignment (a folder of solutions/), or use --all")
    for a in args.assignment:
        if not (s.solutions / a).is_dir():
            have = sorted(p.name for p in s.solutions.iterdir() if p.is_dir()) if s.solutions.is_dir() else []
            raise SystemExit(f"no assignment {a!r} in {s.solutions} (have: {', '.join(have) or 'none'})")
    return list(args.assignment)


def _notebook_ids(s: Settings, assignment: str) -> list[str]:
    ids = notebook_ids(s.solutions / assignment)
    if not ids:
        raise SystemExit(f"no assignment {assignment!r}: {s.solutions / assignment} holds no notebooks")
    return ids


def cmd_generate(args) -> int:
    from . import api

    s = _settings(args)
    bad = 0
    for a in _assignments(s, args):
        out = api.generate(a, course_root=s.course_root)
        print(f"generated {out.relative_to(s.course_root) if out.is_relative_to(s.course_root) else out}")
        if args.no_check:
            continue
        ids = _notebook_ids(s, a)
        sol = s.solutions / a / f"{ids[0]}.ipynb" if len(ids) == 1 else s.solutions / a
        rel = out / f"{ids[0]}.ipynb" if len(ids) == 1 else out
        res = api.grade(a, {"solution": sol, "release": rel}, workers=args.workers, settings=s)
        so, re_ = res["solution"], res["release"]
        ok_sol = so.status != "failed" and so.total == so.max_total > 0
        ok_rel = re_.status != "failed" and re_.total == 0
        print(f"  solution {so.total:g}/{so.max_total:g} ({'ok' if ok_sol else 'NOT FULL MARKS'}, {so.seconds:.1f} s)"
              f"; student version {re_.total:g}/{re_.max_total:g} ({'ok' if ok_rel else 'SHOULD SCORE 0'})")
        for gid, (got, pts) in so.by_grade_id.items():  # why the solution fell short: each lost part, its error
            if got < pts:
                print(f"    solution lost {gid} ({got:g}/{pts:g}): {so.errors.get(gid) or 'no error recorded'}")
        for gid, (got, pts) in re_.by_grade_id.items():
            if got > 0:
                print(f"    student version scores on {gid} ({got:g}/{pts:g}): its tests pass on the unanswered "
                      "stubs; make them fail")
        for r in (so, re_):
            for f in r.flags:
                print(f"    {r.student}: {f}")
        bad += (not ok_sol) + (not ok_rel)
    return 1 if bad else 0


def cmd_release(args) -> int:
    from .workspace import nbgrader_cli

    s = _settings(args)
    for a in _assignments(s, args):
        if not (s.exercises / a).is_dir():
            raise SystemExit(f"exercises/{a} does not exist: run `python -m autograder generate {a}` first")
        nbgrader_cli(s, "release_assignment", a, "--force")
    return 0


def _check_times(args) -> None:
    """Stop before anything is imported or graded when --duedate / --submitted-at is not a time."""
    from .workspace import parse_time

    for opt in ("duedate", "submitted_at"):
        v = getattr(args, opt, None)
        if v:
            parse_time(v, "--" + opt.replace("_", "-"))
    if getattr(args, "submitted_at", None) and getattr(args, "use_mtime", False):
        raise ValueError("--submitted-at and --use-mtime both set a missing timestamp.txt: give one of them")


def cmd_collect(args) -> int:
    from .workspace import import_folder, nbgrader_cli

    s = _settings(args)
    _check_times(args)
    for a in _assignments(s, args):
        if args.from_folder:
            got = import_folder(s, a, Path(args.from_folder), _notebook_ids(s, a),
                                submitted_at=getattr(args, "submitted_at", None),
                                use_mtime=getattr(args, "use_mtime", False))
            line = (f"{a}: {got.count('new')} new, {got.count('resubmitted')} resubmitted, "
                    f"{got.count('unchanged')} unchanged -> {s.workspace / 'submitted'}")
            if got.skipped:
                line += f"; skipped {len(got.skipped)}: " + "; ".join(f"{k} ({v})" for k, v in got.skipped.items())
            if got.litter:
                line += f"; ignored OS litter: {', '.join(got.litter)}"
            print(line)
            for st, notes in got.notes.items():
                for n in notes:
                    print(f"  {st}: {n}")
        else:
            nbgrader_cli(s, "collect", a, "--update")
    return 0


def cmd_autograde(args) -> int:
    from .sandbox import reap_orphans
    from .workspace import autograde

    s = _settings(args)
    _check_times(args)
    from .runs import reap

    line = reap(s.workspace)  # workers and kernels of an earlier run of this workspace that was killed
    if line:
        print(line)
    orphans = reap_orphans()  # kernels of an earlier run that was killed before it could stop them
    if orphans:
        print(f"stopped {len(orphans)} sandboxed kernel(s) left by an interrupted earlier run")
    failed = 0
    for a in _assignments(s, args):
        if getattr(args, "duedate", None):
            from .workspace import set_duedate

            set_duedate(s, a, args.duedate)
        res = autograde(s, a, args.student or None, workers=args.workers, force=args.force)
        failed += _report_autograde(s, a, res, args.student or None)
    if failed:
        print(f"{failed} submission(s) failed: not graded (exit status 1). Infrastructure failures are graded again "
              "by the next autograde run once fixed; the others when the student's files change")
    return 1 if failed else 0


def _report_autograde(s: Settings, a: str, res: dict, students: list[str] | None) -> int:
    """Print what one autograde run did; return how many submissions of `a` (of `students`) stand failed."""
    from .workspace import status, submitted_students

    scope = [x for x in submitted_students(s, a) if not students or x in students]
    unchanged = len(scope) - len(res)
    if not scope:
        print(f"{a}: nothing to grade: no submission in {s.workspace / 'submitted'} (collect them first: "
              f"`collect {a} --from FOLDER`)")
    elif not res:
        print(f"{a}: nothing to grade: {unchanged} submission(s) unchanged since their last grading "
              "(use --force to grade again)")
    else:
        n = {k: sum(1 for r in res.values() if r.status == k) for k in ("graded", "flagged", "failed")}
        print(f"{a}: graded {len(res)} submission(s): {n['graded']} clean, {n['flagged']} flagged, "
              f"{n['failed']} failed (see `status {a}`)" + (f"; {unchanged} unchanged since their last grading"
                                                             if unchanged else ""))
        secs = sorted(r.seconds for r in res.values())
        print(f"  time per submission: median {secs[len(secs) // 2]:.1f} s, max {secs[-1]:.1f} s")
    bad = [r for r in status(s, a) if r["status"] == "failed" and r["student"] in scope]
    for r in bad:
        print(f"  FAILED {r['student']}: {r['detail']}")
    return len(bad)


def cmd_feedback(args) -> int:
    from .workspace import feedback, hand_grading_left

    s = _settings(args)
    for a in _assignments(s, args):
        warnings: list[str] = []
        out = feedback(s, a, args.student or None, warnings=warnings)
        print(f"{a}: feedback for {len(out)} student(s) in {s.workspace / 'feedback'} (hidden tests removed)")
        for w in warnings:
            print(f"  warning: {w}")
        left = {st: ids for (x, st), ids in hand_grading_left(s, a).items()
                if x == a and (not args.student or st in args.student)}
        if left:
            print(f"  {len(left)} submission(s) still need hand grading (their feedback says \"not graded yet\"): "
                  + "; ".join(f"{st} ({', '.join(ids)})" for st, ids in sorted(left.items())))
        if getattr(args, "release", False):
            from .workspace import release_feedback

            r = release_feedback(s, a, args.student or None, allow_ungraded=args.allow_ungraded)
            if r["released"]:
                print(f"{a}: feedback released to the exchange for {len(r['released'])} student(s): "
                      f"{', '.join(r['released'])} (students: Fetch Feedback in the Assignments tab)")
            if r["not_graded"]:
                print(f"{a}: NOT released, answers still to grade by hand (grade them in the formgrader or with "
                      f"`grade-manual`, or pass --allow-ungraded): "
                      + "; ".join(f"{st} ({', '.join(ids)})" for st, ids in r["not_graded"]))
            if r["from_folder"]:
                print(f"{a}: {len(r['from_folder'])} submission(s) came from a folder, not the exchange: hand these "
                      "files to the students: " + ", ".join(str(p) for p in r["from_folder"]))
    return 0


def cmd_export(args) -> int:
    from .workspace import export, hand_grading_left

    s = _settings(args)
    if not s.db_path.exists():
        raise SystemExit(f"no gradebook at {s.db_path}: autograde something first")
    csv_path, summary = export(s)
    print(f"wrote {csv_path} and {summary}/<student>.md")
    left = hand_grading_left(s)
    if left:
        print(f"{len(left)} submission{'s' if len(left) != 1 else ''} still need{'s' if len(left) == 1 else ''} "
              "hand grading: "
              + "; ".join(f"{st} {a} ({', '.join(ids)})" for (a, st), ids in sorted(left.items())))
    else:
        print("0 submissions still need hand grading")
    return 0


def cmd_grade_manual(args) -> int:
    from .workspace import grade_manual

    s = _settings(args)
    a = _assignments(s, args)
    if len(a) != 1:
        raise SystemExit("grade-manual takes one assignment")
    r = grade_manual(s, a[0], args.student_id, args.grade_id, args.score, comment=args.comment,
                     notebook=args.notebook, extra_credit=args.extra_credit)
    extra = f" + {r['extra_credit']:g} extra credit" if r["extra_credit"] else ""
    print(f"{r['assignment']} {r['student']} {r['notebook']}/{r['grade_id']}: {r['manual_score']:g} / "
          f"{r['max_score']:g}{extra}" + (f"; comment saved ({len(r['comment'])} characters)" if r["comment"] else ""))
    return 0


def cmd_formgrader_config(args) -> int:
    from .workspace import NBGRADER_CONFIG

    s = _settings(args)  # writes the file
    path = s.workspace / NBGRADER_CONFIG
    print(f"nbgrader configuration of this workspace: {path}")
    print("The formgrader uses the same gradebook when started in the workspace (cd there, then jupyter lab),")
    print("or from anywhere with these two lines in ~/.jupyter/nbgrader_config.py:")
    print()
    print("c = get_config()  # noqa: F821")
    print(f"load_subconfig({str(path)!r})  # noqa: F821")
    return 0


def cmd_status(args) -> int:
    from .workspace import status

    s = _settings(args)
    for a in _assignments(s, args):
        rows = status(s, a)
        if args.json:
            print(json.dumps({a: rows}, indent=1))
            continue
        print(f"{a}: {len(rows)} student(s)")
        for r in rows:
            score = f"{r['score']:g}/{r['max']:g}" if r.get("score") is not None else ""
            print(f"  {r['student']:<20} {r['status']:<8} {score:<9} {r['detail']}")
    return 0


def cmd_grade_all(args) -> int:
    args.student = None
    _check_times(args)
    if args.from_folder:
        cmd_collect(args)
    rc = cmd_autograde(args)
    cmd_feedback(args)
    cmd_export(args)
    return max(rc, cmd_status(args))


def cmd_to_myst(args) -> int:
    from .source import to_myst

    for path in args.notebooks:
        md, changed = to_myst(Path(path))
        print(f"wrote {md} (the source from now on; {Path(path).name} is made from it and ignored by git: "
              f"`git rm --cached {path}` if it was committed)")
        if changed:
            print(f"  {len(changed)} cell(s) lost trailing blank lines, which MyST text cannot hold: {', '.join(changed)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", help="instructor workspace (default $W7_WORKSPACE or <repo>/workspace)")
    p.add_argument("--course-root", help="folder holding solutions/ and exercises/ (default: the repository)")
    p.add_argument("--sandbox", choices=["auto", "bwrap", "none"],
                   help="auto/bwrap: bubblewrap (fails if unavailable); none: UNSANDBOXED, flagged")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell (default $W7_CELL_TIMEOUT or 120)")
    p.add_argument("--notebook-timeout", type=float, help="seconds per notebook (default 300)")
    p.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's log")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, fn, help_, *, students=False, workers=False, folder=False):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("assignment", nargs="*", help="assignment folder name(s), e.g. 04-sparse-attention")
        sp.add_argument("--all", action="store_true", help="every assignment in solutions/")
        if students:
            sp.add_argument("--student", action="append", help="only this student (repeatable)")
        if workers:
            sp.add_argument("--workers", type=int, default=2, help="parallel grading processes (default 2)")
        if folder:
            sp.add_argument("--from", dest="from_folder",
                            help="a folder of submissions: <student>/ folders or <student>.ipynb files")
            sp.add_argument("--submitted-at", metavar="TIME",
                            help="submission time for entries of --from without timestamp.txt, e.g. "
                                 "\"2026-12-01 16:30:00 UTC\" (without it or --use-mtime they are not checked for "
                                 "lateness)")
            sp.add_argument("--use-mtime", action="store_true",
                            help="entries of --from without timestamp.txt: use their newest file time as the "
                                 "submission time (copies and unzipping can change it)")
        sp.set_defaults(func=fn)
        return sp

    g = add("generate", cmd_generate, "solutions/ -> exercises/ with nbgrader; check the solution gets full marks "
            "and the student version 0", workers=True)
    g.add_argument("--no-check", action="store_true", help="only generate")
    add("release", cmd_release, "release exercises/<assignment> to nbgrader's exchange")
    add("collect", cmd_collect, "collect submissions from the exchange, or import them --from a folder",
        folder=True)
    a = add("autograde", cmd_autograde, "grade submissions in parallel in the sandbox (resumable: graded "
            "submissions are skipped unless changed)", students=True, workers=True)
    a.add_argument("--force", action="store_true", help="grade again even if unchanged")
    a.add_argument("--duedate", help='due date, e.g. "2026-12-01 17:00:00 UTC" (lateness shows in export)')
    fb = add("feedback", cmd_feedback, "html feedback for graded submissions (hidden tests removed)", students=True)
    fb.add_argument("--release", action="store_true",
                    help="also release it to the exchange, where students fetch it from JupyterLab (submissions "
                         "collected from the exchange; answers not graded by hand hold a submission back)")
    fb.add_argument("--allow-ungraded", action="store_true",
                    help="with --release: release feedback whose written answers are not graded yet (it says so)")
    gm = sub.add_parser("grade-manual", help="give a hand score and comment to one answer (as the formgrader does)",
                        description="Give a hand score (and a comment) to one answer graded by hand, writing the "
                        "gradebook as nbgrader's formgrader does. Example: grade-manual 00-demo --student alice "
                        "--grade-id demo-written --score 1 --comment 'Right: __eq__ can be overridden.'")
    gm.add_argument("assignment", nargs=1, help="assignment folder name, e.g. 04-sparse-attention")
    gm.add_argument("--student", dest="student_id", required=True)
    gm.add_argument("--grade-id", required=True, help="the answer cell's grade id (the formgrader shows it)")
    gm.add_argument("--score", type=float, required=True, help="0 .. the answer's points")
    gm.add_argument("--comment", help="the grader's comment (markdown), shown in the student's feedback")
    gm.add_argument("--notebook", help="the notebook, if the grade id is in several")
    gm.add_argument("--extra-credit", type=float, help="extra credit beyond the points")
    gm.set_defaults(func=cmd_grade_manual)
    fc = sub.add_parser("formgrader-config", help="where the workspace's nbgrader_config.py is, and the lines that "
                        "make a formgrader use it (one gradebook)")
    fc.set_defaults(func=cmd_formgrader_config)
    sub_export = sub.add_parser("export", help="grades CSV and one summary per student")
    sub_export.set_defaults(func=cmd_export)
    st = add("status", cmd_status, "each student: graded, flagged, failed (with reasons), pending or missing")
    st.add_argument("--json", action="store_true")
    ga = add("grade-all", cmd_grade_all, "collect (--from a folder), autograde, feedback, export and status in one "
             "command", workers=True, folder=True)
    ga.add_argument("--force", action="store_true", help="grade again even if unchanged")
    ga.add_argument("--duedate", help='due date, e.g. "2026-12-01 17:00:00 UTC" (lateness shows in export)')
    ga.add_argument("--json", action="store_true")
    tm = sub.add_parser("to-myst", help="convert source notebooks (solutions/NN-slug/x.ipynb) to their MyST text "
                        "x.md, the one source (checked to read back to the same cells, ids and nbgrader metadata)")
    tm.add_argument("notebooks", nargs="+", help="the .ipynb files to convert")
    tm.set_defaults(func=cmd_to_myst)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(message)s")
    if not args.verbose:
        import warnings

        warnings.filterwarnings("ignore")
    from .sandbox import SandboxUnavailable

    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, SandboxUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # a message for the instructor (no such assignment, no workspace): exit 2, not 1
        if isinstance(e.code, str):
            print(f"error: {e.code}", file=sys.stderr)
            return 2
        raise

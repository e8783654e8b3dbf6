#!/usr/bin/env bash
# Create the Python environment the hub's users run in (their JupyterLab servers and kernels).
#
#   deploy/jupyterhub/make_user_env.sh /opt/week7/env            # production: a full install (about 3 min)
#   deploy/jupyterhub/make_user_env.sh /tmp/x/env --share .venv  # tests: reuse the course .venv's packages
#
# The environment must be readable and executable by every user, so it is built from a Python outside any
# private home (default /usr/bin/python3.11; set PYTHON=...). The course package is installed non-editable, so
# users get the package and its model family but never the repository (solutions/ stays with the instructors).
set -euo pipefail
target=${1:?usage: make_user_env.sh TARGET [--share VENV]}
share=""
if [ "${2:-}" = "--share" ]; then share=$(cd "${3:?--share needs the course .venv}" && pwd); fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3.11}
if ! "$PYTHON" -c 'import sys, venv; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "make_user_env: error: $PYTHON is not a Python 3.11 with venv (Debian: apt-get install python3.11-venv)" >&2
  exit 2
fi
if [ -x "$target/bin/python" ] && "$target/bin/python" -c "import week7, jupyterhub, nbgrader" 2>/dev/null; then
  echo "make_user_env: $target is ready"; exit 0
fi
"$PYTHON" -m venv "$target"
site=$("$target/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# Debian 12's Python is 3.11.2; soupsieve 4 (pinned in the lock, used by nbconvert's HTML export, hence by
# nbgrader's feedback) needs 3.11.5+ and fails on it. Older Pythons get the last soupsieve 2 instead.
constraints="$repo/constraints.txt"
old_py=$("$target/bin/python" -c 'import sys; print(int(sys.version_info < (3, 11, 5)))')
if [ "$old_py" = 1 ]; then
  constraints=$(mktemp); grep -v '^soupsieve==' "$repo/constraints.txt" > "$constraints"; echo 'soupsieve==2.8' >> "$constraints"
fi
if [ -n "$share" ]; then
  shared_site=$("$share/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  # Put the course environment's packages behind this one's own (same Python minor version, same ABI).
  echo "import site; site.addsitedir('$shared_site')" > "$site/zz_week7_shared.pth"
  # Jupyter finds server extensions, lab extensions and kernels under sys.prefix: share those folders too.
  mkdir -p "$target/etc" "$target/share"
  ln -sfn "$share/etc/jupyter" "$target/etc/jupyter"
  ln -sfn "$share/share/jupyter" "$target/share/jupyter"
  # and its command-line tools (nbgrader runs `alembic`, users run `jupyter ...`), re-pointed at this Python
  for script in "$share"/bin/*; do
    name=$(basename "$script")
    [ -e "$target/bin/$name" ] && continue
    if head -c 200 "$script" | head -1 | grep -q "^#!.*python"; then
      { echo "#!$target/bin/python"; tail -n +2 "$script"; } > "$target/bin/$name"
      chmod 755 "$target/bin/$name"
    fi
  done
else
  "$target/bin/pip" install -q -r "$repo/requirements.txt" -c "$constraints"
fi
if [ -n "$share" ] && [ "$old_py" = 1 ]; then
  "$target/bin/pip" install -q --no-deps "soupsieve==2.8" 2>&1 | grep -v "is ignored" || true
fi
# Build the course package's wheel with a recent setuptools, then install it (with its models) into the env.
wheels=$(mktemp -d)
builder="${share:-$repo/.venv}/bin/python"; [ -x "$builder" ] || builder="$target/bin/python"
"$builder" -m pip wheel -q --no-deps --no-build-isolation -w "$wheels" "$repo" 2>&1 | grep -v "is ignored" || true
"$target/bin/pip" install -q --no-deps --force-reinstall "$wheels"/week7-*.whl 2>&1 | grep -v "is ignored" || true
rm -rf "$wheels"
"$target/bin/python" -c "import week7, jupyterhub, nbgrader, torch; print('make_user_env: ready, week7 from', week7.__file__)"
chmod -R a+rX "$target"

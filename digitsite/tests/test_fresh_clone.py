"""A fresh clone works with nothing made by hand: the data folder appears when the database is
first opened, private; CI installs what a fresh Debian machine lacks, as root or through sudo."""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / ".ci" / "install-packages"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrate_on_a_fresh_clone_makes_the_data_folder_0700_and_the_database_0600(tmp_path):
    var = tmp_path / "var"  # like a fresh clone's var/: git ignores it, so it is not there
    env = {**os.environ, "DIGITSITE_VAR_DIR": str(var), "DIGITSITE_SECRET_KEY": "", "DATABASE_URL": ""}
    env.pop("DIGITSITE_DB_PATH", None)
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert mode(var) == 0o700
    assert mode(var / "db.sqlite3") == 0o600
    assert mode(var / "secret_key") == 0o600
    # SQLite's write-ahead log holds recent writes: it is as private as the database.
    assert all(mode(path) == 0o600 for path in var.glob("db.sqlite3-*"))


def test_any_process_that_opens_the_database_first_makes_its_folder(tmp_path):
    database = tmp_path / "deep" / "er" / "db.sqlite3"
    env = {**os.environ, "DIGITSITE_DB_PATH": str(database), "DATABASE_URL": "", "DIGITSITE_VAR_DIR": str(tmp_path / "var")}
    code = "import django; django.setup(); from django.db import connection; connection.ensure_connection(); print('open')"
    child = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0 and child.stdout.strip() == "open", child.stderr
    assert mode(database.parent) == 0o700 and mode(database) == 0o600


def test_a_database_left_readable_by_everyone_is_made_private_when_opened(tmp_path):
    from digitsite.sqlite.base import private_file

    database = tmp_path / "db.sqlite3"
    for path in (database, tmp_path / "db.sqlite3-wal"):
        path.write_bytes(b"")
        path.chmod(0o644)
    private_file(database)
    assert mode(database) == 0o600 and mode(tmp_path / "db.sqlite3-wal") == 0o600


def stand_ins(folder: Path, *, uid: int) -> Path:
    """`apt-get`, `sudo` and `id` that write down how they were called instead of acting."""
    folder.mkdir(exist_ok=True)
    scripts = {
        "apt-get": 'echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} apt-get $*" >> "$CALLS"',
        "sudo": 'echo "sudo $*" >> "$CALLS"; exec "$@"',
        "id": f'[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"',
    }
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def install(tmp_path: Path, *, uid: int, installed: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PATH": f"{stand_ins(tmp_path / 'bin', uid=uid)}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "CI_ROOT": str(installed),
    }
    env.pop("DEBIAN_FRONTEND", None)
    done = subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=60)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_ci_on_a_bare_machine_as_root_installs_chromium_postgresql_and_redis_with_apt_get(tmp_path):
    bare = tmp_path / "root"
    bare.mkdir()
    done, calls = install(tmp_path, uid=0, installed=bare)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium postgresql redis-server",
    ]


def test_ci_on_a_bare_machine_as_a_user_installs_through_sudo(tmp_path):
    bare = tmp_path / "root"
    bare.mkdir()
    done, calls = install(tmp_path, uid=1000, installed=bare)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium postgresql redis-server",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium postgresql redis-server",
    ]


def test_ci_installs_only_what_is_missing_and_nothing_when_all_is_there(tmp_path):
    machine = tmp_path / "root"
    for path in ("usr/bin/chromium", "usr/lib/postgresql/17/bin/initdb"):
        (machine / path).parent.mkdir(parents=True, exist_ok=True)
        (machine / path).write_text("#!/bin/sh\n")
        (machine / path).chmod(0o755)
    done, calls = install(tmp_path, uid=0, installed=machine)
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server"

    (machine / "usr/bin/redis-server").write_text("#!/bin/sh\n")
    (machine / "usr/bin/redis-server").chmod(0o755)
    (tmp_path / "calls").unlink()
    done, calls = install(tmp_path, uid=0, installed=machine)
    assert done.returncode == 0 and calls == [], (done.stderr, calls)

"""Django's SQLite backend, making its own folder and file, private, on first use.

The database lives in VAR_DIR (git-ignored, so a fresh clone has none), and settings write
nothing when imported. Whatever opens the database first (`migrate`, `runserver`, a test's
child process) makes the folder 0700 and the file 0600 here, before SQLite opens it: the
drawings and the admin's password hashes are nobody else's to read. SQLite gives its -wal and
-shm files the database file's mode.
"""

import os
from pathlib import Path

from django.db.backends.sqlite3 import base

from digitsite.files import private_dir

FILE_MODE = 0o600


def private_file(path: Path) -> None:
    """`path` exists with mode 0600; a file made by an older version (0644) is tightened."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                if name.exists():
                    os.chmod(name, FILE_MODE)
    else:
        os.close(fd)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        if not self.is_in_memory_db() and not str(conn_params["database"]).startswith("file:"):
            private_file(Path(conn_params["database"]))
        return super().get_new_connection(conn_params)

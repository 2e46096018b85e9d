import multiprocessing
import os
import stat
import subprocess
import sys

from django.conf import settings

from digitsite.settings import secret_key_file


def _start_together(barrier, path, keys) -> None:
    barrier.wait()
    try:
        keys.put(secret_key_file(path))
    except Exception as error:  # e.g. reading a file another process has not written yet
        keys.put(f"error: {error!r}")


def test_processes_starting_together_on_a_fresh_var_dir_all_get_the_same_nonempty_private_key(tmp_path):
    context = multiprocessing.get_context("fork")
    for trial in range(25):
        path = tmp_path / f"var{trial}" / "secret_key"
        barrier, keys = context.Barrier(6), context.Queue()
        starters = [context.Process(target=_start_together, args=(barrier, path, keys)) for _ in range(6)]
        for process in starters:
            process.start()
        found = [keys.get(timeout=30) for _ in starters]
        for process in starters:
            process.join()
        assert len(set(found)) == 1 and len(found[0]) >= 50, f"trial {trial}: {found}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert os.listdir(path.parent) == ["secret_key"]  # no temporary file left behind


def test_a_kept_key_is_read_back_and_the_environment_wins(tmp_path):
    path = tmp_path / "secret_key"
    first = secret_key_file(path)
    assert secret_key_file(path) == first
    env = {**os.environ, "DIGITSITE_VAR_DIR": str(tmp_path), "DIGITSITE_SECRET_KEY": "from-the-environment"}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    out = subprocess.run([sys.executable, "-c", code], env=env | {"DJANGO_SETTINGS_MODULE": "digitsite.settings"},
                         capture_output=True, text=True, check=True, cwd=settings.BASE_DIR).stdout
    assert out.strip() == "from-the-environment"


def test_every_setting_the_site_reads_from_the_environment_is_documented_once_in_env_example():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    read = set()
    for source in (root / "digitsite" / "settings.py", root / "gunicorn.conf.py"):
        read |= set(re.findall(r"[\"'](DIGITSITE_[A-Z_]+|DATABASE_URL|PROMETHEUS_MULTIPROC_DIR)[\"']", source.read_text()))
    named = re.findall(r"^(?:# )?([A-Z_]+)=", (root / ".env.example").read_text(), flags=re.MULTILINE)
    assert len(read) > 30
    assert sorted(read - set(named)) == []  # documented
    assert sorted({name for name in named if named.count(name) > 1}) == []  # once
    assert sorted(set(named) - read) == []  # and nothing the site does not read

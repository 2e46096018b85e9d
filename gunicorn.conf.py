"""gunicorn's configuration for digitsite: `gunicorn -c gunicorn.conf.py` (what `make serve` runs).

Every value can be changed from the environment without editing this file:
    DIGITSITE_WORKERS   worker processes (default: one per CPU core this process may use)
    DIGITSITE_BIND      address to listen on (default 127.0.0.1:8000; 0.0.0.0:8000 behind a load balancer)
    DIGITSITE_TIMEOUT   seconds a request may take before its worker is replaced (default 30)
    DIGITSITE_ACCESS_LOG  "-" for stdout (default), a file path, or "off"
    DIGITSITE_TORCH_THREADS  ONNX Runtime and OpenCV threads per worker (default 1; the name is kept from
                        when workers ran torch: they import none now)
    DIGITSITE_WORKER_CLASS, DIGITSITE_THREADS  "sync" (default) or "gthread" with N threads: gthread
                        keeps client connections open (keep-alive), sync answers one request per connection
"""

import os
import signal

# Thread pools size themselves to every core. With one worker per core, N workers would each run
# N threads and fight over the cores (16 predictions a second on 2 cores, against 591 with one
# thread each). The environment is set here, in the master before any worker starts (workers
# import the site after the fork); ONNX Runtime's sessions read OMP_NUM_THREADS
# (recognizer.servingform), and post_worker_init below sets OpenCV's.
TORCH_THREADS = int(os.environ.get("DIGITSITE_TORCH_THREADS", "1"))
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, str(TORCH_THREADS))
# OpenCV has a thread pool of its own, used when preprocessing images.
os.environ.setdefault("OPENCV_FOR_THREADS_NUM", str(TORCH_THREADS))

wsgi_app = "digitsite.wsgi:application"
bind = os.environ.get("DIGITSITE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DIGITSITE_WORKERS") or len(os.sched_getaffinity(0)))
worker_class = os.environ.get("DIGITSITE_WORKER_CLASS", "sync")
threads = int(os.environ.get("DIGITSITE_THREADS", "1"))
timeout = int(os.environ.get("DIGITSITE_TIMEOUT", "30"))
graceful_timeout = 30
# Seconds an idle keep-alive connection is kept (gthread only: sync workers close after each answer).
keepalive = 5
# Requests are small (a drawing is under 2 MB, DATA_UPLOAD_MAX_MEMORY_SIZE); limits on the line and
# headers stay gunicorn's defaults.
_access_log = os.environ.get("DIGITSITE_ACCESS_LOG", "-")
accesslog = None if _access_log.lower() in {"off", "none", ""} else _access_log
errorlog = "-"
# gunicorn 27's control socket sits at one path per user: several servers on one machine (tests,
# benchmarks) would take it from each other, and the site needs none of its commands.
control_socket_disable = True
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def on_starting(server) -> None:
    # Ctrl+C on `make serve` stops as SIGTERM does: each worker answers the request it is in, then
    # exits. gunicorn's own SIGINT quits at once, and a request being written was cut off with a
    # traceback (a correction the client had already seen stored).
    server.handle_int = server.handle_term
    # A fresh folder for this master's workers: files left by an earlier run would be summed in.
    if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.unlink(os.path.join(folder, name))


def post_worker_init(worker) -> None:
    import cv2

    # Ctrl+C reaches every process in the terminal's group; the master alone stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(TORCH_THREADS)
    # Load the model's serving form and make its sessions now (about 50 ms), not in the first request.
    from django.db import connections

    from recognizer.serving import active_model
    from recognizer.servingform import ModelUnavailable

    try:
        model = active_model()
        net = model.serving_net()
        worker.log.info("worker %s: serving model %s in %s (%s), %s thread(s)", worker.pid, model.version, net.precision, net.variant, TORCH_THREADS)
        if net.why:
            worker.log.warning("worker %s: %s", worker.pid, net.why)
    except ModelUnavailable as error:  # the worker still answers; health says what is wrong
        worker.log.warning("worker %s: no model to serve: %s", worker.pid, error)
    finally:
        connections.close_all()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

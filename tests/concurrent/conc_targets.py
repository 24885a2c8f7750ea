"""Module-level functions for the tests to call in threads and worker processes."""

import os
import signal
import sys
import threading
import time


class Unpicklable(Exception):
    def __init__(self, a, b):  # pickling re-creates it with one argument: fails
        super().__init__(f"{a}/{b}")


def add(x, y=0, *, z=0):
    return x + y + z


def identity(value):
    return value


def fail(message):
    raise ValueError(message)


def fail_unpicklable():
    raise Unpicklable(1, 2)


def return_lock():
    return threading.Lock()


def pid():
    return os.getpid()


def die(code=3):
    os._exit(code)


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def spin(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.005)
    return "finished"


def interval(seconds):
    """(start, end) of a call that lasts `seconds`, to check that calls overlap."""
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def environment(name):
    return os.getcwd(), os.environ.get(name), list(sys.path)


def import_and_call(module_name):
    module = __import__(module_name)
    return module.VALUE


def fresh_interpreter():
    """True in a freshly started interpreter: pytest, loaded in the test process, is not here."""
    return "_pytest" not in sys.modules and "pytest" not in sys.modules

"""Node functions of the test project. Each is tiny and deterministic."""

from __future__ import annotations

import os
import signal
import time


def return_one() -> int:
    return 1


def write_tenant(tenant: str, delay: float) -> str:
    time.sleep(delay)
    return f"tenant={tenant}"


def prepare(names: str, token: str) -> str:
    lines = [line for line in names.splitlines() if line and line != "name"]
    return "\n".join(f"{token}:{line}" for line in lines)


def pause(intermediate: str, delay: float) -> bool:
    # Widens the window between writing the shared intermediate file and reading
    # it again in `finish`, in which an overlapping run would overwrite it.
    time.sleep(delay)
    return bool(intermediate)


def finish(intermediate: str, paused: bool) -> str:
    return intermediate.upper()


def echo_payload(payload: str) -> str:
    return payload


def sleep_step(value: int, seconds: float) -> int:
    time.sleep(seconds)
    return value + 1


def start_count() -> int:
    return 0


def sleep_forever(seconds: float) -> int:
    # Ignores cancellation: the service must kill the worker after its grace period.
    time.sleep(seconds)
    return 0


def exit_process() -> int:
    os._exit(3)


def segfault() -> int:
    import ctypes

    return len(ctypes.string_at(0))  # reads address 0: SIGSEGV


def kill_self() -> int:
    # What the kernel's OOM killer does: SIGKILL, no clean-up.
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def raise_error(message: str) -> int:
    raise ValueError(message)


def summarise(message: str) -> str:
    return f"report: {message}"


def probe_environment() -> str:
    """What a worker process looks like from inside a node: telemetry switches and the
    log handlers in force."""
    import json
    import logging

    handlers = {type(h).__name__ for h in logging.getLogger().handlers}
    for name in ("kedro", "kedro.runner", "kedro.io"):
        handlers |= {type(h).__name__ for h in logging.getLogger(name).handlers}
    return json.dumps(
        {
            "KEDRO_DISABLE_TELEMETRY": os.environ.get("KEDRO_DISABLE_TELEMETRY"),
            "DO_NOT_TRACK": os.environ.get("DO_NOT_TRACK"),
            "handlers": sorted(handlers),
        }
    )


def chatter(token: str, count: int, seconds: float) -> int:
    """Logs ``count`` INFO lines carrying ``token`` (and one line at other levels, from
    another logger), spread over ``seconds``."""
    import logging

    logger = logging.getLogger(__name__)
    logging.getLogger("some.library").warning("library warning for %s", token)
    logger.debug("debug line for %s", token)
    for index in range(count):
        logger.info("marker=%s line=%d password=hunter2", token, index)
        time.sleep(seconds / max(count, 1))
    return count


def many_numbers(count: int) -> list[int]:
    return list(range(count))


def lost_on_first_attempt(token: str, mode: str) -> str:
    """Loses its worker the first time it runs for ``token`` (a marker file under
    ``data/flaky`` remembers that it did): ``exit`` kills the process, ``exit_slowly``
    does so after a second, ``hang`` blocks until the service stops it, ``never`` does
    not lose it at all. Later attempts succeed."""
    from pathlib import Path

    marker = Path(__file__).resolve().parents[2] / "data" / "flaky" / token
    if mode != "never" and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        if mode in ("exit", "exit_slowly"):
            time.sleep(1.0 if mode == "exit_slowly" else 0.0)
            os._exit(3)
        time.sleep(3600)
    return f"attempt after the first for {token}"


def read_text(text: str) -> str:
    return text


def leak_secrets(payload: str) -> str:
    """Logs, then raises, messages holding the secret in ``KR_CANARY`` in every shape
    a credential takes in the wild; the service must redact them all."""
    import logging

    canary = os.environ.get("KR_CANARY", "no-canary")
    shapes = [
        f"postgresql://u:{canary}@h/db",
        f"https://b.s3/x?X-Amz-Signature={canary}",
        f"host=h password={canary}",
        f"Authorization: Bearer {canary}",
        f"aws_secret_access_key='{canary}'",
    ]
    logger = logging.getLogger(__name__)
    for shape in shapes:
        logger.warning("connecting with %s", shape)
    logger.error("database: %s", os.environ.get("KR_CANARY_DB", ""))
    logger.error("AWS_SECRET_ACCESS_KEY=%s", os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    # Bare, in no secret's shape: only knowing the value masks it.
    logger.error("signing with %s", os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    raise ConnectionError("could not connect: " + " | ".join(shapes))

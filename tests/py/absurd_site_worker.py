#!/usr/bin/env python3
"""A site's own ABSURD worker (PyPI absurd-sdk), not contimg, for the `absurd_task` job tests.

  absurd_site_worker.py URL QUEUE
      Registers two tasks and works QUEUE until it has run one task (or 60 s pass):
        calibrate  returns {"some_key": "<params.slot>|<params.factor * 2>"}
        explode    raises RuntimeError("detector on fire")
      Prints JSON {"seen": [{"task_name": ..., "params": ...}]}.
"""
import json
import sys
import time

from absurd_sdk import Absurd


def main():
    url, queue = sys.argv[1:3]
    app = Absurd(url, queue_name=queue)
    seen = []

    @app.register_task("calibrate")
    def calibrate(params, ctx):
        seen.append({"task_name": "calibrate", "params": params})
        return {"some_key": f"{params['slot']}|{params['factor'] * 2}"}

    @app.register_task("explode")
    def explode(params, ctx):
        seen.append({"task_name": "explode", "params": params})
        raise RuntimeError("detector on fire")

    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        app.work_batch(worker_id="site-worker", claim_timeout=60, batch_size=1)
        if not seen:
            time.sleep(0.05)
    print(json.dumps({"seen": seen}))


if __name__ == "__main__":
    main()

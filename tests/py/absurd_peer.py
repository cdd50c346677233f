#!/usr/bin/env python3
"""ABSURD's own Python SDK (PyPI absurd-sdk) as a peer of contimg on one ABSURD queue.

  absurd_peer.py work URL QUEUE TASK_NAME WORKER_ID
      Claims and runs one task of TASK_NAME with the SDK's worker; prints JSON
      {"claimed": n, "seen": [{"params":…, "headers":…, "task_name":…}]}.
  absurd_peer.py cancel URL QUEUE TASK_ID      cancels the task through the SDK.
  absurd_peer.py retry URL QUEUE TASK_ID       retries the failed task through the SDK.
  absurd_peer.py race URL QUEUE TASK_NAME WORKER_ID GO_FILE
      Waits for GO_FILE, then works TASK_NAME tasks until the queue has stayed empty for a while;
      each task returns {"by": WORKER_ID}. Prints JSON {"done": [task ids]}.
"""
import json
import os
import sys
import time

from absurd_sdk import Absurd


def client(url, queue):
    return Absurd(url, queue_name=queue)


def work(url, queue, name, worker):
    app = client(url, queue)
    seen = []

    @app.register_task(name)
    def handler(params, ctx):
        seen.append({"params": params, "headers": dict(ctx.headers), "task_name": name})
        return {"by": worker}

    app.work_batch(worker_id=worker, claim_timeout=60, batch_size=1)
    print(json.dumps({"claimed": len(seen), "seen": seen}))


def race(url, queue, name, worker, go):
    app = client(url, queue)
    done = []

    @app.register_task(name)
    def handler(params, ctx):
        time.sleep(0.002)
        done.append(str(ctx.task_id))
        return {"by": worker}

    while not os.path.exists(go):
        time.sleep(0.01)
    idle = 0
    while idle < 40:
        tasks = app.claim_tasks(batch_size=1, claim_timeout=60, worker_id=worker)
        if not tasks:
            idle += 1
            time.sleep(0.025)
            continue
        idle = 0
        for t in tasks:
            app._execute_task(t, 60)
    print(json.dumps({"done": done}))


def main():
    cmd, url, queue = sys.argv[1:4]
    if cmd == "work":
        work(url, queue, sys.argv[4], sys.argv[5])
    elif cmd == "cancel":
        client(url, queue).cancel_task(sys.argv[4])
    elif cmd == "retry":
        client(url, queue).retry_task(sys.argv[4])
    elif cmd == "race":
        race(url, queue, sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

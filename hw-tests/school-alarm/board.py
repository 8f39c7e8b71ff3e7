#!/usr/bin/env python3
"""Talks to the demo board on this network namespace's loopback (127.0.0.1:8080) for
hw-tests/school-alarm/run.sh.

  board.py raise [--drill]           raise an alarm (the board's own screen); prints its id
                                     and the Unix time the board answered
  board.py clear-all                 log in as the demo's class teacher, clear every alarm
  board.py wait-school DEVICE N S [T] until the school path shows N alarms of DEVICE (at
                                     most S seconds); prints the seconds since Unix time T
                                     (default: now), exit 1 if not
  board.py school                    prints the school path as the status reports it
"""
import json
import sys
import time
import urllib.request

BASE = "http://127.0.0.1:8080"


def call(path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers, json.loads(r.read() or b"null")


def status():
    return call("/api/v1/status")[2]


def school_alarms(s, device):
    for b in (s.get("school") or {}).get("boards", []):
        if b["device_id"] == device:
            return b["alarms"]
    return []


def main(argv):
    cmd = argv[1]
    if cmd == "raise":
        _, _, v = call("/api/v1/actions", {"action": "raise_alarm", "drill": "--drill" in argv})
        print(v["alarm_id"], f"{time.time():.3f}")
    elif cmd == "clear-all":
        _, headers, v = call("/api/v1/session", {"staff_id": "T01", "pin": "2468"})
        cookie = headers.get("Set-Cookie").split(";")[0]
        auth = {"Cookie": cookie, "X-CSRF-Token": v["csrf_token"]}
        for a in status()["alarms"]:
            call("/api/v1/actions", {"action": "clear_alarm", "alarm_id": a["id"]}, auth)
        assert not status()["alarms"], "alarms left after clearing"
    elif cmd == "wait-school":
        device, n, secs = argv[2], int(argv[3]), float(argv[4])
        since = float(argv[5]) if len(argv) > 5 else time.time()
        t0 = time.monotonic()
        while True:
            if len(school_alarms(status(), device)) == n:
                print(f"{time.time() - since:.2f}")
                return 0
            if time.monotonic() - t0 > secs:
                print(f"not within {secs} s: {json.dumps(status().get('school'), ensure_ascii=False)}")
                return 1
            time.sleep(0.05)
    elif cmd == "school":
        print(json.dumps(status().get("school"), ensure_ascii=False))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Checks the workspace's dependency direction (docs/development.md §1) from `cargo metadata`.

The same rules are in deny.toml for cargo-deny; this script needs nothing but cargo and
python3, so CI runs it on a fresh machine without building cargo-deny.
"""
import json
import subprocess
import sys
from pathlib import Path

# Which workspace crates each workspace crate may depend on.
WORKSPACE = {
    "ketang-daemon": {"ketang-drivers", "ketang-models", "ketang-sync", "ketang-web", "ketang-contract"},
    "ketang-hw-tests": {"ketang-drivers"},
    "ketang-drivers": set(),
    "ketang-models": set(),
    "ketang-sync": {"ketang-contract"},
    "ketang-web": {"ketang-contract"},
    # Pure data (the domain enums and wire bodies) shared by sync, web and the daemon.
    "ketang-contract": set(),
    "ketang-testkit": set(),
}
# Crates only others' tests may use (dev-dependencies), never a build.
DEV_ONLY = {"ketang-testkit"}
# External crates only these workspace crates may use directly.
WRAPPERS = {
    "rusqlite": {"ketang-sync"},
    "rumqttc": {"ketang-sync"},
    "tract-onnx": {"ketang-models"},
    "axum": {"ketang-web"},
    "linux-embedded-hal": {"ketang-daemon", "ketang-hw-tests"},
}


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = []
    names = {p["name"] for p in meta["packages"]}
    if names != set(WORKSPACE):
        problems.append(f"workspace crates are {sorted(names)}, expected {sorted(WORKSPACE)}")
    for pkg in meta["packages"]:
        name = pkg["name"]
        for dep in pkg["dependencies"]:
            d = dep["name"]
            kind = dep.get("kind") or "normal"
            # A crate's dev-dependency on itself only turns on test features (ketang-sync's
            # `drain-api`): not an edge in the graph.
            self_dev = d == name and kind == "dev"
            if d in DEV_ONLY:
                if kind != "dev":
                    problems.append(f"{name} depends on {d} ({kind}); it is for dev-dependencies only")
                continue
            if d in WORKSPACE and d not in WORKSPACE.get(name, set()) and not self_dev:
                problems.append(f"{name} depends on {d} ({kind}); allowed: {sorted(WORKSPACE.get(name, set())) or 'none'}")
            if d in WRAPPERS and name not in WRAPPERS[d] and kind != "dev":
                problems.append(f"{name} uses {d} directly; only {sorted(WRAPPERS[d])} may")
    lib = Path(__file__).resolve().parent.parent / "drivers" / "src" / "lib.rs"
    if "#![no_std]" not in lib.read_text(encoding="utf-8"):
        problems.append("drivers/src/lib.rs must be #![no_std]")
    for p in problems:
        print(f"check-deps: {p}", file=sys.stderr)
    if not problems:
        print("check-deps: crate graph ok", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

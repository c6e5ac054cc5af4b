"""Derive the sandbox's seccomp profile from Docker's default one.

Docker 20.10's default profile still allows io_uring (removed upstream in Docker 25 after breakouts)
and same-uid ptrace (sandboxed code could ptrace-stop the container's init). We keep everything
else of Docker's default and drop exactly those, so the result is never looser than the default.

Usage (Debian: apt-get install golang-github-docker-docker-dev gives the source profile):
    python scripts/derive_seccomp_profile.py \
        /usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json \
        > executor_service/sandbox/seccomp.json
"""

import json
import sys

DENIED = {"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace"}


def main() -> None:
    with open(sys.argv[1]) as source:
        profile = json.load(source)
    rules = []
    for rule in profile["syscalls"]:
        names = [name for name in rule["names"] if name not in DENIED]
        if names:
            rules.append({**rule, "names": names})
    profile["syscalls"] = rules
    json.dump(profile, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Logins per second through DirectoryAuthenticator, auth cache cold and warm.

Usage::

    python bench/auth.py [--logins N] [--concurrency C] [--cheap]

Runs the real authenticator (SQLite directory in a temporary directory,
twisted.cred portal, thread-pool runner, real reactor) with the default
argon2id parameters (``--cheap`` uses minimal ones).  "cold" disables the
cache, so every login pays for argon2; "warm" logs in with the cache
enabled after one priming login per user.  Prints one line per mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task

from mailsuite.config import AuthConfig, UsersConfig
from mailsuite.threads import ThreadPoolRunner
from mailsuite.users.auth import DirectoryAuthenticator
from mailsuite.users.directory import SQLiteDirectory
from mailsuite.users.passwords import PasswordHasher

USERS = 20


async def run_logins(auth: DirectoryAuthenticator, count: int, concurrency: int) -> float:
    sem = defer.DeferredSemaphore(concurrency)

    def one(i: int) -> defer.Deferred[Any]:
        user = f"user{i % USERS}@bench.test"
        # Each login from its own address: the bench measures hashing, not throttling.
        peer = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        return sem.run(auth.login, user, f"pw-{user}", peer, "bench")

    start = time.perf_counter()
    await defer.gatherResults([one(i) for i in range(count)], consumeErrors=True)
    return count / (time.perf_counter() - start)


async def main(reactor: Any, args: argparse.Namespace) -> None:
    base = AuthConfig()
    if args.cheap:
        base = dataclasses.replace(
            base, argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1
        )
    hasher = PasswordHasher.from_config(base)
    with tempfile.TemporaryDirectory() as tmp:
        directory = SQLiteDirectory(Path(tmp) / "users.sqlite", UsersConfig())
        directory.add_domain("bench.test")
        for i in range(USERS):
            user = f"user{i}@bench.test"
            directory.add_user(user, hasher.hash(f"pw-{user}"))
        runner = ThreadPoolRunner(reactor, maxthreads=args.concurrency)
        runner.start()
        try:
            params = hasher.params
            print(
                f"argon2id t={params.time_cost} m={params.memory_cost}KiB"
                f" p={params.parallelism}, {args.concurrency} concurrent, {args.logins} logins"
            )
            cold = DirectoryAuthenticator(
                directory, runner, reactor, dataclasses.replace(base, cache_ttl=0), hasher=hasher
            )
            rate = await run_logins(cold, args.logins, args.concurrency)
            print(f"cache cold: {rate:10.1f} logins/s")
            warm = DirectoryAuthenticator(directory, runner, reactor, base, hasher=hasher)
            await run_logins(warm, USERS, args.concurrency)  # prime: one login per user
            rate = await run_logins(warm, args.logins * 20, args.concurrency)
            print(f"cache warm: {rate:10.1f} logins/s")
        finally:
            runner.stop()
            directory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cheap", action="store_true", help="minimal argon2 parameters")
    options = parser.parse_args()
    task.react(lambda r: defer.ensureDeferred(main(r, options)))

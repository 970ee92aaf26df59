"""The web page with 100,000 file names: first paint, searches, pages; and the README's picture.

    python bench/web.py                       # 100,000 names across 4 peers
    python bench/web.py --names 20000
    python bench/web.py --screenshot docs/page.png

Measuring: four peers over loopback UDP in this process, each scanning a
made-up folder (no disk): 100,000 names in 103,000 copies, A holding most;
peer A serves the page. Once A holds every name, B, C and D stop as if they
crashed (A keeps what they hold), so that A is not busy sending them its
97,000 files while it is measured; then:

* the API, with httpx on loopback: the first page, a search (new words every
  time, so never one A remembers), page 2 of that search, a sort by size;
* the page, in headless Chromium opened cold: the first contentful paint and
  the moment the file table is filled (the page marks ``trio-gossip:files``);
  then searches typed in the box, until the table shows their result (this
  includes the page's 120 ms pause for typing, reported apart);
* what the gossip tasks feel: how late A's trio loop wakes from a 10 ms
  sleep, idle and while 8 clients search as fast as they can.

``--screenshot`` runs a small cluster instead (real folders, one hostile
file name, one peer that left, a file written while the page is open) and
saves the page as a PNG.

Needs chromium and chromedriver (Debian: ``apt-get install chromium
chromium-driver``); without them, only the API and the lag are measured.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

# Run as ``python bench/NAME.py``: make the packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trio_gossip import Config, Intervals, Peer, PeerConfig, Scan, UdpNetwork

OUT = Path(__file__).resolve().parent / "out"
TYPING_PAUSE = 0.120  # app.js waits this long after a keystroke before it asks


def free_ports(count: int) -> list[int]:
    import socket

    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextmanager
def browser(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """Headless Chromium under Selenium, with Debian's chromium and chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise SystemExit("no chromium or chromedriver: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


# -- the made-up cluster --------------------------------------------------------------

WORDS = ["photos", "src", "archive", "données", "проект", "資料", "build", "logs", "music"]


def made_up_names(count: int, rng: random.Random) -> list[str]:
    dirs = [
        "/".join(f"{rng.choice(WORDS)}-{rng.randint(0, 99)}" for _ in range(rng.randint(1, 4)))
        for _ in range(max(1, count // 40))
    ]
    return [
        f"{rng.choice(dirs)}/file-{i:06d}.{rng.choice(['dat', 'jpg', 'txt'])}" for i in range(count)
    ]


def folders(names: list[str], rng: random.Random) -> dict[str, dict[str, tuple[int, int]]]:
    """A holds 97 % of the names; C the rest; B and D copies of every 50th and
    100th of A's (B's older: stale). Big entries travel slowly between peers
    of one busy process (see docs/performance.md), so the page's own peer holds
    the bulk and the others' entries converge in seconds."""
    n = len(names)
    base = 1_780_000_000 * 10**9
    bulk = int(0.97 * n)

    def files(chosen: list[str], age: int) -> dict[str, tuple[int, int]]:
        return {
            name: (rng.randint(0, 10**8), base + i * 10**9 - age) for i, name in enumerate(chosen)
        }

    return {
        "A": files(names[:bulk], 0),
        "B": files(names[:bulk:50], 10**12),
        "C": files(names[bulk:], 0),
        "D": files(names[:bulk:100], 0),
    }


async def converged(peer: Peer, peers: dict[str, Peer]) -> None:
    while True:
        view = peer.view()
        if all(o in view and view[o].version == p.node.own.version for o, p in peers.items()):
            return
        await trio.sleep(0.2)


# -- measuring ----------------------------------------------------------------------


async def lag_while(seconds: float) -> list[float]:
    """How late a 10 ms sleep wakes, every time, for ``seconds``."""
    lags = []
    end = trio.current_time() + seconds
    while trio.current_time() < end:
        before = trio.current_time()
        await trio.sleep(0.01)
        lags.append(trio.current_time() - before - 0.01)
    return lags


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    response = await client.get(path)
    took = time.perf_counter() - began
    response.raise_for_status()
    return took, response.json()


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "best_ms": round(ms[0], 1),
        "median_ms": round(statistics.median(ms), 1),
        "worst_ms": round(ms[-1], 1),
    }


def random_words(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)}-{rng.randint(0, 99)} file-0{rng.randint(0, 999):03d}"


async def measure_api(url: str, rng: random.Random, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        took, first = await timed_get(client, "/api/files")  # builds the index
        out["first_request_with_index_build_ms"] = round(1000 * took, 1)
        out["names"] = first["names"]
        cases: dict[str, Callable[[], str]] = {
            "first page": lambda: "/api/files",
            "search": lambda: f"/api/files?q={random_words(rng)}",
            "sort by size": lambda: f"/api/files?sort=size&order=desc&page={rng.randint(1, 9)}",
        }
        for label, path in cases.items():
            times = []
            for _ in range(repeat):
                took, _ = await timed_get(client, path())
                times.append(took)
            out[label] = summary(times)
        words = random_words(rng).split()[0]
        await timed_get(client, f"/api/files?q={words}")
        times = []
        for page in range(2, 2 + repeat):
            took, _ = await timed_get(client, f"/api/files?q={words}&page={page}")
            times.append(took)
        out["next page of a search"] = summary(times)
    return out


async def flood(clients: list[httpx.AsyncClient], seconds: float, rng: random.Random) -> int:
    """Searches, each new, from every client at once for ``seconds``; how many."""
    done = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        end = trio.current_time() + seconds
        while trio.current_time() < end:
            (await client.get(f"/api/files?q={random_words(rng)}")).raise_for_status()
            done += 1

    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(one, client)
    return done


def measure_page(url: str, searches: int, rng: random.Random) -> dict[str, Any]:
    with browser() as driver:
        began = time.perf_counter()
        driver.get(url)
        wait_js = """
            const done = arguments[arguments.length - 1];
            const look = () => performance.getEntriesByName('trio-gossip:files').length
                ? done(performance.getEntriesByName('trio-gossip:files')[0].startTime)
                : setTimeout(look, 5);
            look();"""
        driver.set_script_timeout(30)
        filled = driver.execute_async_script(wait_js)
        wall = time.perf_counter() - began
        paint = driver.execute_script(
            "const p = performance.getEntriesByName('first-contentful-paint');"
            "return p.length ? p[0].startTime : null;"
        )
        rows = driver.execute_script("return document.querySelectorAll('#files tbody tr').length")
        search_js = """
            const [words, done] = arguments;
            const box = document.getElementById('search');
            const before = performance.getEntriesByName('trio-gossip:files').length;
            const t0 = performance.now();
            box.value = words;
            box.dispatchEvent(new Event('input'));
            const look = () => {
              const marks = performance.getEntriesByName('trio-gossip:files');
              if (marks.length > before) done(marks[marks.length - 1].startTime - t0);
              else setTimeout(look, 2);
            };
            look();"""
        typed = [
            driver.execute_async_script(search_js, random_words(rng)) / 1000
            for _ in range(searches)
        ]
    return {
        "first_contentful_paint_ms": round(paint, 1) if paint is not None else None,
        "table_filled_ms": round(filled, 1),
        "load_seen_by_selenium_ms": round(1000 * wall, 1),
        "rows_shown": rows,
        "search_typed_to_table_ms": summary(typed),
        "search_without_typing_pause_ms": summary([t - TYPING_PAUSE for t in typed]),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    names = made_up_names(args.names, rng)
    held = folders(names, rng)
    ports = free_ports(4)
    config = Config(
        peers={p: PeerConfig("127.0.0.1", port) for p, port in zip("ABCD", ports, strict=True)},
        intervals=Intervals(scan=3600, push=0.1, relay=0.1, reap=600),
        watch=False,
    )
    out: dict[str, Any] = {"names": args.names, "copies": sum(map(len, held.values()))}
    with tempfile.TemporaryDirectory() as tmp:
        peers = {
            p: Peer(
                p,
                config,
                network=UdpNetwork(),
                folder=Path(tmp),
                scanner=lambda _, files=files: Scan(files),  # type: ignore[misc]
                http=("127.0.0.1", 0) if p == "A" else None,
            )
            for p, files in held.items()
        }
        async with trio.open_nursery() as nursery:
            scopes = {name: trio.CancelScope() for name in peers}
            for name, peer in peers.items():
                await nursery.start(run_in, peer, scopes[name])
            a = peers["A"]
            assert a.http_url is not None
            began = time.perf_counter()
            await converged(a, peers)
            out["converged_s"] = round(time.perf_counter() - began, 1)
            # B, C and D stop as a crash does: A keeps their entries (suspect, later),
            # and no longer spends its time sending them its own 97,000 files.
            for name in "BCD":
                peers[name].leave_on_stop = False
                scopes[name].cancel()
            out["api"] = await measure_api(a.http_url, rng, args.repeat)
            idle = await lag_while(3)
            # Made before measuring: making a client loads CA certificates, blocking the loop.
            clients = [httpx.AsyncClient(base_url=a.http_url, timeout=30) for _ in range(8)]
            async with trio.open_nursery() as inner:
                lags: list[float] = []

                async def record() -> None:
                    lags.extend(await lag_while(args.flood))

                inner.start_soon(record)
                requests = await flood(clients, args.flood, rng)
            for client in clients:
                await client.aclose()
            out["loop_lag"] = {
                "idle_max_ms": round(1000 * max(idle), 1),
                "flood_max_ms": round(1000 * max(lags), 1),
                "flood_p99_ms": round(1000 * statistics.quantiles(lags, n=100)[98], 1),
                "flood_searches_per_s": round(requests / args.flood, 1),
            }
            if shutil.which("chromedriver"):
                url = a.http_url
                out["page"] = await trio.to_thread.run_sync(
                    lambda: measure_page(url, args.repeat, rng)
                )
            nursery.cancel_scope.cancel()
    return out


# -- the screenshot -----------------------------------------------------------------

SHOWN = {
    "atlas": [
        "projects/trio-gossip/README.md",
        "projects/trio-gossip/docs/protocol.md",
        "photos/2026/lisbon/IMG_2041.jpg",
        "photos/2026/lisbon/IMG_2042.jpg",
        "music/Nils Frahm - Says.flac",
        "<img src=x onerror=alert(1)>",
        "reports/invoice-\u202egpj.exe",
    ],
    "borealis": [
        "projects/trio-gossip/README.md",
        "backups/2026-11-30.tar.zst",
        "photos/2026/lisbon/IMG_2041.jpg",
        "datasets/weather/stations.csv",
        "notes/тезисы доклада.txt",
        "notes/مرحبا.txt",
    ],
    "cirrus": [
        "projects/trio-gossip/README.md",
        "datasets/weather/stations.csv",
        "datasets/weather/2026-11.parquet",
        "logs/gossip.log",
    ],
    "dune": ["scratch/tmp-01.bin", "scratch/tmp-02.bin"],
}


async def run_in(
    peer: Peer,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``peer`` until ``scope`` is cancelled (then it leaves)."""
    with scope:
        await peer.run(task_status=task_status)


async def screenshot(args: argparse.Namespace) -> dict[str, Any]:
    ports = free_ports(len(SHOWN))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = Config(
            peers={
                p: PeerConfig("127.0.0.1", port, str(root / p))
                for p, port in zip(SHOWN, ports, strict=True)
            },
            intervals=Intervals(scan=1, push=0.2, relay=0.2, reap=600),
        )
        for owner, names in SHOWN.items():
            for i, name in enumerate(names):
                path = root / owner / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(rng.randbytes(rng.randint(100, 4_000_000 if i % 3 else 20_000)))
        peers = {
            p: Peer(
                p,
                config,
                network=UdpNetwork(),
                folder=root / p,
                http=("127.0.0.1", 0) if p == "atlas" else None,
            )
            for p in SHOWN
        }
        async with trio.open_nursery() as nursery:
            scopes = {name: trio.CancelScope() for name in peers}
            for name, peer in peers.items():
                await nursery.start(run_in, peer, scopes[name])
            atlas = peers["atlas"]
            assert atlas.http_url is not None
            await converged(atlas, peers)
            scopes["dune"].cancel()  # dune stops: "left" on the page
            url = atlas.http_url

            def shoot() -> None:
                with browser(1360, 1180) as driver:
                    driver.get(url)
                    time.sleep(1.5)
                    (root / "borealis" / "photos/2026/lisbon/IMG_2077.jpg").write_bytes(
                        b"x" * 2_400_000
                    )
                    time.sleep(3)
                    driver.save_screenshot(str(args.screenshot))

            await trio.to_thread.run_sync(shoot)
            nursery.cancel_scope.cancel()
    return {"screenshot": str(args.screenshot)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="times each request is timed")
    parser.add_argument("--flood", type=float, default=5.0, help="seconds of the search flood")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--screenshot", type=Path, help="save a picture of a small cluster's page")
    args = parser.parse_args()
    result = trio.run(screenshot if args.screenshot else measure, args)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.screenshot:
        OUT.mkdir(exist_ok=True)
        (OUT / "web.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

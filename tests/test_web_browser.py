"""The web page in a real browser: headless Chromium under Selenium, against real peers.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them); skipped, saying so, where neither can be had. Selenium's calls block,
so they run in a worker thread; every wait is bounded by ``fail_after``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from ports import free_udp_ports

from trio_gossip import Config, Intervals, Peer, PeerConfig, UdpNetwork

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "no Chromium here (apt-get install chromium chromium-driver): the page is not tried "
        "in a browser",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402 -- only where there is a browser to drive
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

T = TypeVar("T")
HOSTILE = "<img src=x onerror=alert(1)>"
RTL = "invoice-\u202egpj.exe"
QUOTES = "say \"hi\" & 'bye'"


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    assert CHROMIUM is not None and DRIVER is not None
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


async def in_thread(call: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(call)


async def until(check: Callable[[], Any]) -> Any:
    """Poll ``check`` (in a thread: it talks to the browser) until it is truthy."""
    while True:
        value = await in_thread(check)
        if value:
            return value
        await trio.sleep(0.1)


@asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Peer, trio.CancelScope]]:
    """Peers A (serving the page) and B, B in a cancel scope of its own."""
    ports = free_udp_ports(2)
    config = Config(
        peers={
            n: PeerConfig("127.0.0.1", p, str(tmp_path / n))
            for n, p in zip("AB", ports, strict=True)
        },
        intervals=Intervals(scan=0.2, push=0.05, relay=0.05, reap=60.0),
    )
    a = Peer("A", config, network=UdpNetwork(), folder=tmp_path / "A", http=("127.0.0.1", 0))
    b = Peer("B", config, network=UdpNetwork(), folder=tmp_path / "B")
    b_scope = trio.CancelScope()

    async def run_b(
        *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with b_scope:
            await b.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(run_b)
        yield a, b_scope
        nursery.cancel_scope.cancel()


# Read in one script, at once: the page replaces its tables as updates come.


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)"
    return list(driver.execute_script(script, css))


def peer_statuses(driver: webdriver.Chrome) -> dict[str, str]:
    script = """return [...document.querySelectorAll('#peers tbody tr')]
        .map((r) => [r.dataset.peer, r.querySelector('.status').textContent])"""
    return dict(driver.execute_script(script))


def file_names(driver: webdriver.Chrome) -> list[str]:
    # What the page shows: a hidden character is shown as a mark (U+202E).
    return texts(driver, "#files tbody td.name")


async def test_the_page_shows_the_cluster_live_and_file_names_as_text(tmp_path: Path) -> None:
    for name, data in [(HOSTILE, b"1"), (RTL, b"22"), (QUOTES, b"333"), ("notes/a.txt", b"a")]:
        path = tmp_path / "A" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "B").mkdir()
    with trio.fail_after(60):
        async with cluster(tmp_path) as (a, b_scope):
            assert a.http_url is not None
            url = a.http_url
            with chromium() as driver:
                await in_thread(lambda: driver.get(url))
                # It loads, goes live, and lists the peers.
                await until(lambda: driver.find_element(By.ID, "live").text == "live")
                await until(lambda: peer_statuses(driver) == {"A": "alive", "B": "alive"})
                assert "A" in await in_thread(lambda: driver.title)
                await until(lambda: len(file_names(driver)) == 4)
                # The hostile names are text: no element made from them, no script run.
                shown = await in_thread(lambda: file_names(driver))
                assert HOSTILE in shown
                assert QUOTES in shown
                assert "invoice-U+202Egpj.exe" in shown  # the override, shown, not obeyed
                images = await in_thread(
                    lambda: driver.execute_script("return document.images.length")
                )
                assert images == 1  # the page's own icon
                with pytest.raises(NoAlertPresentException):
                    await in_thread(lambda: driver.switch_to.alert.text)

                # A file written at B appears without a reload.
                marker = await in_thread(
                    lambda: driver.execute_script("return window.performance.timeOrigin")
                )
                (tmp_path / "B" / "fresh from B.txt").write_bytes(b"hello")
                await until(lambda: "fresh from B.txt" in file_names(driver))
                assert marker == await in_thread(
                    lambda: driver.execute_script("return window.performance.timeOrigin")
                )  # the same page: nothing reloaded it
                assert await until(
                    lambda: "fresh from B.txt" in " ".join(texts(driver, "#recent li"))
                )

                # A search narrows the table.
                box = await in_thread(lambda: driver.find_element(By.ID, "search"))
                await in_thread(lambda: box.send_keys("FRESH"))
                await until(lambda: file_names(driver) == ["fresh from B.txt"])
                assert "1 of 5 names" in await in_thread(
                    lambda: driver.find_element(By.ID, "file-count").text
                )
                await in_thread(lambda: driver.execute_script(  # an emptied box: all again
                    "const b = document.getElementById('search'); b.value = '';"
                    "b.dispatchEvent(new Event('input'));"
                ))  # fmt: skip
                await until(lambda: len(file_names(driver)) == 5)

                # Sorting by size, largest first, through the column's header.
                header = await in_thread(
                    lambda: driver.find_element(By.CSS_SELECTOR, "th[data-sort=size]")
                )
                await in_thread(header.click)
                await until(lambda: file_names(driver)[0] == "fresh from B.txt")

                # A stopped peer turns "left".
                b_scope.cancel()
                await until(lambda: peer_statuses(driver) == {"A": "alive", "B": "left"})
                await until(lambda: "fresh from B.txt" not in file_names(driver))

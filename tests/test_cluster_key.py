"""A cluster with a key: sealed datagrams, rejected strangers, harmless replays."""

from __future__ import annotations

import attrs
import trio
import trio.testing
from sim import INTERVALS, handle, open_sim

from trio_gossip import MemoryNetwork
from trio_gossip.codec import decode_untrusted, encode
from trio_gossip.keyring import Keyring, generate_key
from trio_gossip.messages import Digest, Info, InfoRequest
from trio_gossip.state import Line
from trio_gossip.transport import Address

KEY = Keyring.from_texts([generate_key()])
OTHER = Keyring.from_texts([generate_key()])


@attrs.define
class TappedNetwork(MemoryNetwork):
    """Records every datagram sent, as an eavesdropper on the wire would."""

    captured: list[tuple[float, bytes, Address, Address]] = attrs.field(init=False, factory=list)

    def route(self, data: bytes, source: Address, destination: Address) -> None:
        self.captured.append((trio.current_time(), data, source, destination))
        super().route(data, source, destination)


async def test_a_keyed_cluster_converges_and_nothing_travels_in_clear(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABCD", seed=1, keyring=KEY, network_type=TappedNetwork) as sim:
        await sim.wait_until(sim.converged, within=20)
        network = sim.network
        assert isinstance(network, TappedNetwork)
        assert network.captured
        for _, data, _, _ in network.captured:
            assert data[:1] == b"\x01"
            assert b'"proto"' not in data  # nothing readable without the key
            assert len(data) <= sim.config.max_datagram
            decode_untrusted(KEY.open_untrusted(data))  # and each opens to a valid message


async def test_datagrams_without_the_key_are_dropped_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABC", seed=2, keyring=KEY) as sim:
        await sim.wait_until(sim.converged, within=20)
        a = sim.peers["A"]
        before = a.view()
        b = before["B"]
        news = Digest("B", True, (Line("B", b.generation, b.version + 1, b.heartbeat + 9),))
        now = trio.current_time()
        assert handle(a, encode(news), sim.address("B"), now) == []
        assert handle(a, OTHER.seal(encode(news)), sim.address("B"), now) == []
        tampered = bytearray(KEY.seal(encode(news)))
        tampered[-1] ^= 1
        assert handle(a, bytes(tampered), sim.address("B"), now) == []
        assert a.view() == before
        assert a.statistics().rejected == {"not sealed": 1, "wrong key": 2}
        # The control: the same digest sealed with the key is acted on.
        assert handle(a, KEY.seal(encode(news)), sim.address("B"), now) != []


async def test_a_replayed_datagram_rolls_nothing_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_sim("ABC", seed=3, keyring=KEY, network_type=TappedNetwork) as sim:
        await sim.wait_until(sim.converged, within=20)
        network = sim.network
        assert isinstance(network, TappedNetwork)
        sim.folders["B"]["new.txt"] = (7, 7)
        await sim.wait_until(lambda: sim.shows_folder("A", "B"), within=30)
        await trio.sleep(300)  # minutes later
        a = sim.peers["A"]
        before = a.view()
        replayed = 0
        for _, data, source, destination in list(network.captured):
            if destination == sim.address("A"):
                handle(a, data, source, trio.current_time())
                replayed += 1
        assert replayed > 10
        after = a.view()
        for origin, entry in before.items():
            assert after[origin].key >= entry.key
            assert after[origin].content == entry.content
        assert sim.shows_folder("A", "B")


async def test_a_replayed_datagram_does_not_bring_a_reaped_peer_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reap = INTERVALS.reap
    async with open_sim("ABC", seed=4, keyring=KEY, network_type=TappedNetwork) as sim:
        await sim.wait_until(sim.converged, within=20)
        network = sim.network
        assert isinstance(network, TappedNetwork)
        await sim.stop("C")
        stopped = trio.current_time()
        await sim.wait_until(lambda: "C" in sim.peers["A"].reaped(), within=reap + 10)
        await trio.sleep(2 * reap)  # minutes after C stopped
        a = sim.peers["A"]
        # Replay everything C ever sent, and everything about C, to A.
        for _, data, source, destination in list(network.captured):
            if destination == sim.address("A"):
                handle(a, data, source, trio.current_time())
        assert "C" not in a.view()
        assert "C" in a.reaped()
        assert trio.current_time() > stopped + 2 * reap


async def test_info_works_with_the_key(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim("AB", seed=5, keyring=KEY) as sim:
        await sim.wait_until(sim.converged, within=20)
        a = sim.peers["A"]
        now = trio.current_time()
        clear = encode(InfoRequest(9, ()))
        assert handle(a, clear, ("192.0.2.9", 5), now) == []
        replies = handle(a, KEY.seal(clear), ("192.0.2.9", 5), now)
        assert replies and all(isinstance(r, Info) for r in replies)

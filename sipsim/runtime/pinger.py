"""CUCM's OPTIONS ping at run time: every node a trunk with ping on runs on pings each destination;
the first round completes before any call, later rounds follow the intervals of the sans-IO state
table in `sipsim.lab.ping`. New calls go only to destinations in service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from sipsim.lab import model as m
from sipsim.lab.ping import DestinationMonitor, PingSettings, trunk_status
from sipsim.lab.topology import DnsFailure
from sipsim.runtime.node import ConnectFailure

if TYPE_CHECKING:
    from sipsim.runtime.runner import LabRunner


class Pinger:
    def __init__(self, runner: "LabRunner"):
        self.runner = runner
        #: (node, trunk) -> {destination label: monitor}, for trunks with OPTIONS ping on
        self.monitors: dict[tuple[str, str], dict[str, DestinationMonitor]] = {}

    async def start(self, nursery: trio.Nursery) -> None:
        topo = self.runner.ctx.topology
        first_round = []
        for cluster in self.runner.scenario.clusters:
            for trunk in cluster.trunks:
                if not trunk.options_ping:
                    continue
                settings = PingSettings(True, trunk.ping_interval, trunk.ping_interval_out_of_service,
                                        trunk.ping_retry_timer, trunk.ping_retry_count)
                for node in topo.trunk_nodes(trunk):
                    mons = self.monitors.setdefault((node.name, trunk.name), {})
                    for dest in topo.destinations(trunk):
                        mons[dest.label] = DestinationMonitor(dest.label, settings)
                        first_round.append((node, trunk, dest, mons[dest.label]))
        if not first_round:
            return
        async with trio.open_nursery() as first:
            for entry in first_round:
                first.start_soon(self.ping_once, *entry)
        for entry in first_round:
            nursery.start_soon(self.loop, *entry)

    async def loop(self, node: m.Node, trunk: m.Trunk, dest: m.Destination, mon: DestinationMonitor) -> None:
        while True:
            await trio.sleep(mon.settings.interval_in_service if mon.in_service else mon.settings.interval_out_of_service)
            await self.ping_once(node, trunk, dest, mon)

    async def ping_once(self, node: m.Node, trunk: m.Trunk, dest: m.Destination, mon: DestinationMonitor) -> None:
        ctx = self.runner.ctx
        status, reason = None, "timeout"
        try:
            resolved = ctx.topology.resolve(dest)
            port = ctx.port(resolved.port)
            node_rt = self.runner.nodes[node.name]
            conn = await node_rt.connect(trunk, resolved.address, port, resolved.node)
            waiter = node_rt.send_options(conn, f"sip:{resolved.address}:{port}")
            with trio.move_on_after(mon.settings.no_answer_after):
                await waiter.final.wait()
            status, reason = waiter.status, waiter.reason or ("timeout" if waiter.status is None else None)
        except DnsFailure:
            reason = "dns_failure"
        except ConnectFailure as f:
            reason = f.reason
        mon.result(status, reason, trio.current_time())

    def in_service(self, origin: m.Node, trunk: m.Trunk, order: list[m.Destination]) -> list[m.Destination]:
        mons = self.monitors.get((origin.name, trunk.name))
        if mons is None:
            return order
        return [d for d in order if mons[d.label].in_service]

    def statuses(self) -> tuple[dict[str, str], list[dict]]:
        """Each node's trunk status in CUCM's words, and every state change with its cause."""
        statuses: dict[str, str] = {}
        changes = []
        topo = self.runner.ctx.topology
        for cluster in self.runner.scenario.clusters:
            for trunk in cluster.trunks:
                for node in topo.trunk_nodes(trunk):
                    mons = self.monitors.get((node.name, trunk.name), {})
                    statuses[f"{node.name}/{trunk.name}"] = trunk_status(list(mons.values()), trunk.options_ping)
                    for mon in mons.values():
                        changes += [{"node": node.name, "trunk": trunk.name, "destination": c.destination,
                                     "from": c.old, "to": c.new, "cause": c.cause, "t": round(c.at, 3)}
                                    for c in mon.history]
        return statuses, changes

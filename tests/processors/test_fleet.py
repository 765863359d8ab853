"""The fleet processors, lists in and lists out: a simulated fleet where nodes go silent and
one site keeps the old version after a promotion. Every state, snapshot and alert below is
worked out by hand from the timeline in `TIMELINE`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.fleet import Fleet, FleetSpec
from processors.fleet_sightings import FleetSightings, SightingsSpec
from steward import topics as T
from steward.schema import EventType, InferenceRecord, event_id, make_event
from steward.schema.fleet import FleetNode, FleetSighting
from steward.schema.records import Hardware
from steward.schema.rollout import RolloutAction
from steward.stream import Emit, Source, run_steps

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SPEC = FleetSpec(stale_after_s=60, offline_after_s=300, straggler_grace_s=120, snapshot_s=60)
TIMELINE = """
11:59:55  every node serves 1.0 (lyon n1 n2, berlin b1, austin a1)
12:00:00  rollout r1 promotes 2.0 at lyon, berlin, austin
12:01:00  lyon n1 n2 and austin a1 on 2.0; berlin b1 still on 1.0 (inside the 120 s grace)
12:02:10  lyon n1 on 2.0; berlin b1 on 1.0 -> after 12:02:00: straggler, episode 1
12:02:30  berlin b1 on 1.0 again -> same episode, no second alert
(n2 and a1 say nothing after 12:01:00)
"""


def at(hms: str) -> datetime:
    h, m, s = map(int, hms.split(":"))
    return T0.replace(hour=h, minute=m, second=s)


def sight(site: str, node: str, version: str, hms: str, **kw: object) -> FleetSighting:
    ts = at(hms)
    start = ts - timedelta(seconds=ts.second % 10)
    return FleetSighting(model="det", version=version, site=site, tier="edge", node=node,
                         start=start, end=start + timedelta(seconds=10), first_ts=ts,
                         last_ts=ts, records=1, inferences=1.0, **kw)


def promotion(sites: list[str], hms: str = "12:00:00"):
    data = RolloutAction(rollout_id="r1", model="det", baseline_version="1.0",
                         canary_version="2.0", version="2.0", phase="promoted", step=1,
                         sites=sites, reason="last step passed")
    return make_event(EventType.MODEL_PROMOTED, source="/steward/processors/rollout",
                      subject="det/r1", data=data, key="det", time=at(hms),
                      facts=("r1", "promoted"))


def feed(fleet: Fleet, items: list[tuple[object, str]], state=None):
    """Each item is (record, wall clock at which it is processed)."""
    st = fleet.initial_state() if state is None else state
    out: list[Emit] = []
    for offset, (rec, hms) in enumerate(items):
        topic = "sightings" if isinstance(rec, FleetSighting) else "actions"
        st, emits = fleet.step(st, rec, at(hms), Source(topic, 0, offset))
        out += emits
    return st, out


def alerts(emits: list[Emit]) -> list:
    return [e.event for e in emits if e.topic is T.ALERTS]


def latest(emits: list[Emit]) -> dict[str, FleetNode]:
    snaps = [e.record for e in emits if e.topic is T.FLEET_NODES]
    return {f"{s.site}/{s.node}": s for s in snaps}


def simulate():
    before = [(sight(site, node, "1.0", "11:59:55"), "12:00:00")
              for site, node in (("lyon", "n1"), ("lyon", "n2"), ("berlin", "b1"),
                                 ("austin", "a1"))]
    items = [*before, (promotion(["lyon", "berlin", "austin"]), "12:00:01"),
             (sight("lyon", "n1", "2.0", "12:01:00"), "12:01:05"),
             (sight("lyon", "n2", "2.0", "12:01:00"), "12:01:05"),
             (sight("austin", "a1", "2.0", "12:01:00"), "12:01:05"),
             (sight("berlin", "b1", "1.0", "12:01:00"), "12:01:05"),
             (sight("lyon", "n1", "2.0", "12:02:10"), "12:02:15"),
             (sight("berlin", "b1", "1.0", "12:02:10", agent_backlog=40), "12:02:15"),
             (sight("berlin", "b1", "1.0", "12:02:30", agent_backlog=7), "12:02:35")]
    return feed(Fleet(SPEC), items)


def test_straggler_alert_once_with_its_parameters() -> None:
    _, emits = simulate()
    (alert,) = alerts(emits)
    action_id = promotion([]).get_id()
    assert alert.get_type() == EventType.FLEET_STRAGGLER
    assert alert.get_id() == event_id(EventType.FLEET_STRAGGLER, "det", "berlin", action_id, 1)
    assert alert.get_subject() == "det/berlin"
    assert alert.get_time() == at("12:02:10")
    data = alert.get_data()
    assert data["expected_versions"] == ["2.0"] and data["observed_versions"] == ["1.0"]
    assert data["nodes"] == ["b1"] and data["episode"] == 1
    assert data["rollout_id"] == "r1"
    assert data["expectation"]["event_id"] == action_id
    assert data["expectation"]["kind"] == "promoted"
    assert (data["grace_s"], data["stale_after_s"], data["offline_after_s"]) == (120, 60, 300)


def test_node_states_by_silence_on_the_wall_clock() -> None:
    state, _ = simulate()
    fleet = Fleet(SPEC)
    # 12:03:00: n1 last 12:02:10 (50 s: online), n2 12:01:00 (120 s: stale, as it was
    # when n1's sighting was judged at 12:02:15), b1 12:02:30 (30 s: online),
    # a1 12:01:00 (120 s: stale; last judged at 12:01:05, online). Only a1 changes.
    state, emits = fleet.tick(state, at("12:03:00"))
    snaps = latest(emits)
    assert {k: s.state for k, s in snaps.items()} == {"austin/a1": "stale"}
    assert snaps["austin/a1"].silence_s == 120
    # 12:06:05: n1 295 s stale, n2 365 s offline, b1 215 s stale, a1 365 s offline
    state, emits = fleet.tick(state, at("12:06:05"))
    snaps = latest(emits)
    assert {k: s.state for k, s in snaps.items()} == {
        "lyon/n1": "stale", "lyon/n2": "offline", "berlin/b1": "stale",
        "austin/a1": "offline"}
    b1 = snaps["berlin/b1"]
    assert b1.straggler and b1.versions == ["1.0"] and b1.agent_backlog == 7
    assert b1.expected is not None and b1.expected.versions == ["2.0"]
    assert not snaps["lyon/n1"].straggler and snaps["lyon/n1"].versions == ["2.0"]
    # nothing new to say a second later: no snapshot
    assert fleet.tick(state, at("12:06:06"))[1] == []


def test_snapshots_during_the_timeline() -> None:
    _, emits = simulate()
    snaps = latest(emits)
    assert snaps["berlin/b1"].straggler and snaps["berlin/b1"].state == "online"
    assert snaps["lyon/n2"].versions == ["2.0"]  # 1.0 left its recent versions
    # judged with n1's sighting at 12:02:15: 75 s after its last record
    assert (snaps["lyon/n2"].state, snaps["lyon/n2"].silence_s) == ("stale", 75)
    assert snaps["lyon/n2"].as_of == at("12:02:15")
    assert snaps["austin/a1"].version_last_seen == {"1.0": at("11:59:55"),
                                                    "2.0": at("12:01:00")}


def test_episode_closes_when_the_site_switches_and_reopens() -> None:
    state, _ = simulate()
    fleet = Fleet(SPEC)
    # 12:03:40: b1 on 2.0; its 1.0 (last 12:02:30) is older than 12:03:40 - 60 s: resolved
    state, emits = feed(fleet, [(sight("berlin", "b1", "2.0", "12:03:40"), "12:03:45")], state)
    assert alerts(emits) == [] and not latest(emits)["berlin/b1"].straggler
    state, emits = feed(fleet, [(sight("berlin", "b1", "1.0", "12:04:00"), "12:04:05")], state)
    (again,) = alerts(emits)
    assert again.get_data()["episode"] == 2
    assert again.get_data()["observed_versions"] == ["1.0"]


def test_rollback_and_step_advance_set_what_is_accepted() -> None:
    fleet = Fleet(SPEC)
    step = make_event(EventType.ROLLOUT_STEP_ADVANCED, source="s", subject="det/r1",
                      data=RolloutAction(rollout_id="r1", model="det", baseline_version="1.0",
                                         canary_version="2.0", version="2.0", phase="running",
                                         step=0, next_step=1, sites=["lyon"], reason="ok"),
                      key="det", time=at("12:00:00"), facts=("step",))
    state, emits = feed(fleet, [(step, "12:00:00"),
                                (sight("lyon", "n1", "1.0", "12:05:00"), "12:05:01"),
                                (sight("lyon", "n2", "2.0", "12:05:00"), "12:05:01")])
    assert alerts(emits) == []  # both versions accepted while the rollout runs
    back = make_event(EventType.MODEL_ROLLED_BACK, source="s", subject="det/r1",
                      data=RolloutAction(rollout_id="r1", model="det", baseline_version="1.0",
                                         canary_version="2.0", version="2.0",
                                         phase="rolled_back", step=1, sites=["lyon"],
                                         reason="latency"),
                      key="det", time=at("12:06:00"), facts=("back",))
    state, emits = feed(fleet, [(back, "12:06:00"),
                                (sight("lyon", "n2", "2.0", "12:08:30"), "12:08:31")], state)
    (alert,) = alerts(emits)
    assert alert.get_data()["nodes"] == ["n2"] and alert.get_data()["expected_versions"] == ["1.0"]
    assert alert.get_data()["expectation"]["kind"] == "rolled_back"


def test_hold_keeps_live_nodes_and_expectations_replayable() -> None:
    state, _ = simulate()
    # newest sighting per node: n1 9, n2 6, a1 7, b1 11; the promotion is offset 4
    assert Fleet(SPEC).hold(state) == {"sightings": 6, "actions": 4}
    # a day of silence forgets every node; the expectation stays held
    state, _ = Fleet(SPEC).tick(state, at("12:02:30") + timedelta(days=1))
    assert state.nodes == {} and Fleet(SPEC).hold(state) == {"actions": 4}


def test_sightings_from_records() -> None:
    def rec(i: int, node: str, version: str, sec: int, **kw: object) -> InferenceRecord:
        return InferenceRecord(id=f"r{i}", model="det", version=version, site="lyon",
                               tier="edge", node=node, ts=T0 + timedelta(seconds=sec),
                               latency_ms=5.0, **kw)
    hw = Hardware(accelerator="jetson-orin-nano", memory_bytes=8 * 2**30, quantisation="int8")
    records = [rec(1, "n1", "1.0", 1, hardware=hw, agent_backlog=3),
               rec(2, "n1", "1.0", 4, sample_rate=0.5, error=True, agent_backlog=9),
               rec(2, "n1", "1.0", 4, sample_rate=0.5, error=True, agent_backlog=9),  # again
               rec(3, "n2", "2.0", 8),
               rec(4, "n1", "1.0", 14)]  # the 10-20 s bucket
    spec = SightingsSpec(bucket_s=10, grace_s=5)
    _, emits = run_steps(FleetSightings(spec), records, T0 + timedelta(seconds=17))
    assert emits == []  # watermark 14 s < 10 + 5, and the key was heard from just now
    _, emits = run_steps(FleetSightings(spec), [*records, rec(5, "n1", "1.0", 25)],
                         T0 + timedelta(seconds=40))  # watermark 25 s closes 0-10 and 10-20
    got = [(e.key, e.record) for e in emits]
    assert [(k, r.node, r.version, r.start.second) for k, r in got] == [
        ("det", "n1", "1.0", 0), ("det", "n2", "2.0", 0), ("det", "n1", "1.0", 10)]
    n1 = got[0][1]
    assert (n1.records, n1.inferences, n1.errors) == (2, 3.0, 1)
    assert n1.first_ts == T0 + timedelta(seconds=1) and n1.last_ts == T0 + timedelta(seconds=4)
    assert n1.hardware == hw and n1.agent_backlog == 9
    assert got[2][1].records == 1 and got[2][1].last_ts == T0 + timedelta(seconds=14)


def test_restart_from_hold_rebuilds_recent_versions_and_the_same_alert() -> None:
    """A node serving 1.0 and 2.0 in one bucket yields two sightings (1.0 first). Held at
    the node's newest sighting only, a replay would lose 1.0 and with it the straggler;
    `hold` keeps the oldest sighting of a recent version instead."""
    items = [(sight("berlin", "b1", "1.0", "11:59:55"), "12:00:00"),  # 0
             (promotion(["berlin"]), "12:00:01"),  # 1
             (sight("berlin", "b1", "1.0", "12:02:10"), "12:02:15"),  # 2
             (sight("berlin", "b1", "2.0", "12:02:10"), "12:02:15")]  # 3
    state, emits = feed(Fleet(SPEC), items)
    (alert,) = alerts(emits)
    # recent = 60 s before 12:02:10: 1.0 (offset 2) and 2.0 (offset 3); not offset 0
    assert Fleet(SPEC).hold(state) == {"sightings": 2, "actions": 1}
    # the restarted processor reads from the held offsets (offsets kept as they were)
    fresh = Fleet(SPEC)
    st = fresh.initial_state()
    replayed: list[Emit] = []
    for offset, (rec, hms) in enumerate(items):
        if offset in (1, 2, 3):
            topic = "sightings" if isinstance(rec, FleetSighting) else "actions"
            st, out = fresh.step(st, rec, at(hms), Source(topic, 0, offset))
            replayed += out
    (again,) = alerts(replayed)
    assert again.get_id() == alert.get_id()  # same id: stored once downstream
    b1 = latest(replayed)["berlin/b1"]
    assert (b1.versions, b1.straggler) == (["1.0", "2.0"], True)
    assert fresh.hold(st) == {"sightings": 2, "actions": 1}
    # the old rule (newest sighting, offset 3) would have rebuilt 2.0 only: no straggler
    st, out = feed(Fleet(SPEC), [items[1], items[3]])
    assert alerts(out) == [] and latest(out)["berlin/b1"].versions == ["2.0"]

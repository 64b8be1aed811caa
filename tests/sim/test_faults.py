"""The fault knobs: validated, reproducible, and never making a report undeliverable."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim import scenario
from firmware_sim.faults import FaultDice, Faults
from firmware_sim.scenario import ScenarioError
from firmware_sim.wire import MediaEntry

MEDIA = (
    MediaEntry(
        "0b7e0000-0000-4000-8000-000000000001", "photo", "image/jpeg", 300_000, "a" * 64, 65536
    ),
    MediaEntry(
        "9a410000-0000-4000-8000-000000000002", "voice", "audio/amr", 9_000, "b" * 64, 65536
    ),
)

shares = st.floats(min_value=0, max_value=1)


@given(loss=shares, corrupt=shares, duplicate=shares, reorder=shares, seed=st.integers())
def test_a_first_upload_only_ever_leaves_out_or_spoils_real_chunks(
    loss: float, corrupt: float, duplicate: float, reorder: float, seed: int
) -> None:
    faults = Faults(chunk_loss=loss, chunk_corrupt=corrupt, duplicate_publish=duplicate,
                    chunk_reorder=reorder)  # fmt: skip
    dice = FaultDice(faults, random.Random(seed))
    sends = dice.first_upload(MEDIA)
    every = {(m.media_id, seq) for m in MEDIA for seq in range(m.chunk_count)}
    sent = [(send.media_id, send.seq) for send in sends]
    assert len(sent) == len(set(sent))  # a chunk once in the plan; copies are a count
    assert set(sent) <= every
    assert dice.counts.chunks_lost == len(every) - len(sent)
    assert dice.counts.chunks_garbled == sum(send.garbled for send in sends)
    assert all(send.copies in (1, 2) for send in sends)


def test_no_faults_is_the_clean_upload_in_order() -> None:
    dice = FaultDice(Faults(), random.Random(1))
    sends = dice.first_upload(MEDIA)
    assert [(s.media_id, s.seq) for s in sends] == [
        (m.media_id, seq) for m in MEDIA for seq in range(m.chunk_count)
    ]
    assert not any(s.garbled or s.copies != 1 for s in sends)
    assert dice.junk_envelope("r") is None
    assert dice.fix_fault() is None
    assert dice.next_drop_in_s() is None
    assert dice.clock_skew_s == 0.0


@given(data=st.binary(min_size=1, max_size=20_000), seed=st.integers())
def test_garbling_keeps_the_length_and_changes_the_bytes(data: bytes, seed: int) -> None:
    spoilt = FaultDice(Faults(), random.Random(seed)).garble(data)
    assert len(spoilt) == len(data)
    assert spoilt != data


def test_the_same_seed_rolls_the_same_faults() -> None:
    faults = Faults(chunk_loss=0.3, chunk_reorder=0.5, malformed_envelope=0.5, fix_void=0.3)
    rolls = []
    for _ in range(2):
        dice = FaultDice(faults, random.Random("seed/sim-0001"))
        rolls.append((dice.first_upload(MEDIA), dice.junk_envelope("r"), dice.fix_fault()))
    assert rolls[0] == rolls[1]


def test_rates_come_out_near_their_knobs() -> None:
    dice = FaultDice(Faults(fix_void=0.2, fix_wild=0.1, malformed_envelope=0.25), random.Random(5))
    faults = [dice.fix_fault() for _ in range(10_000)]
    assert 0.18 < faults.count("void") / 10_000 < 0.22
    assert 0.08 < faults.count("wild") / 10_000 < 0.12
    junk = [dice.junk_envelope("r") for _ in range(10_000)]
    assert 0.23 < sum(j is not None for j in junk) / 10_000 < 0.27
    drops = [FaultDice(Faults(link_drops_per_hour=6), random.Random(i)).next_drop_in_s()
             for i in range(2_000)]  # fmt: skip
    mean = sum(d for d in drops if d is not None) / len(drops)
    assert 500 < mean < 700  # six an hour: one every 600 s on average


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"chunk_loss": 1.5}, "is a share", id="share above 1"),
        pytest.param({"link_drops_per_hour": -1}, ">= 0", id="negative rate"),
        pytest.param({"offline_min_s": 10, "offline_max_s": 5}, "offline_max_s", id="bad range"),
    ],
)
def test_bad_knobs_are_refused(values: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults(**values)


def test_every_bundled_scenario_loads() -> None:
    names = scenario.available()
    assert {"soak", "flaky-radio", "bad-firmware", "gnss-trouble", "district-go-live"} <= set(names)
    for name in names:
        loaded = scenario.load(name)
        assert loaded.description
        assert loaded.fleet
    assert scenario.load("soak").faults.any


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"fleat": {}}, "unknown table or key 'fleat'", id="misspelt table"),
        pytest.param({"fleet": {"terminal": 3}}, "unknown key 'terminal'", id="misspelt key"),
        pytest.param({"fleet": {"terminals": "many"}}, "terminals", id="wrong type"),
        pytest.param({"fleet": {"terminals": True}}, "terminals", id="bool is not int"),
        pytest.param({"faults": {"chunk_lost": 0.1}}, "unknown fault 'chunk_lost'", id="bad fault"),
        pytest.param({"faults": {"chunk_loss": "lots"}}, "not a number", id="fault not a number"),
        pytest.param({"faults": []}, "not a table", id="faults not a table"),
    ],
)
def test_bad_scenarios_are_refused_with_where(document: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as error:
        scenario.parse(document, "my.toml")
    assert "my.toml" in str(error.value)


def test_an_unknown_scenario_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="soak"):
        scenario.load("no-such-scenario")

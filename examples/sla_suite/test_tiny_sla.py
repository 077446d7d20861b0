"""SLAs of the tiny topology, checked on the real network with the cpn_net pytest plugin.

tiny.yaml: east-centre 5 ms, centre-west 10 ms with 2 % loss, east-west 20 ms.
The IGP takes east > centre (5 ms, lossless) and centre > west (the lossy link).
"""

import pytest

pytestmark = pytest.mark.cpn_topology("topologies/tiny.yaml")

# The delay bound is twice the link's 5 ms: a p99 from the ~100 IOAM samples of a 10 s window
# is close to their maximum, and on a 2-core machine the userspace link element now and then
# wakes a few ms late (seen here: hop p99 8.1-8.3 ms in 2 of 11 runs against an earlier 8 ms
# bound). A detour (east > west > centre, 30 ms) or an injected delay still breaks it. When the
# link element itself sent frames late in the window, cpn_sla measures once more (a CI run saw
# a hop p99 of 10.24 ms right after boot).
EAST_TO_CENTRE = {"loss_pct_below": 0.1, "delay_p99_ms_below": 10}


def test_east_to_centre_meets_its_sla(cpn_network, cpn_sla):
    assert cpn_network.path("u1-1", "k2-1") == ("r1->r2",)
    measured = cpn_sla.assert_path("u1-1", "k2-1", **EAST_TO_CENTRE)
    assert measured["hops"][0]["sent"] > 0, "the probe flow must have crossed r1->r2"


def test_centre_to_west_violates_a_lossless_sla_on_the_lossy_hop(cpn_network, cpn_sla):
    assert cpn_network.path("u2-1", "k3-1") == ("r2->r3",)
    with pytest.raises(AssertionError) as failure:
        cpn_sla.assert_path("u2-1", "k3-1", loss_pct_below=0.1)
    message = str(failure.value)
    assert "SLA VIOLATED on u2-1 -> k3-1" in message
    assert "end-to-end loss" in message and "is not below 0.1 %" in message
    offending = [line for line in message.splitlines() if line.startswith("r2->r3")]
    assert offending and "<-- loss over bound" in offending[0], message


def test_loss_injected_on_east_centre_breaks_the_sla_on_that_hop(cpn_fault, cpn_sla):
    settings = cpn_fault.link("east", "centre", loss_pct=5)
    assert settings["loss_pct"] == 5
    with pytest.raises(AssertionError) as failure:
        cpn_sla.assert_path("u1-1", "k2-1", **EAST_TO_CENTRE)
    offending = [line for line in str(failure.value).splitlines() if line.startswith("r1->r2")]
    assert offending and "<-- loss over bound" in offending[0], str(failure.value)


def test_east_centre_is_restored_and_meets_its_sla_again(cpn_network, cpn_sla):
    # Runs after the fault test: cpn_fault must have put the link back as the file configures it.
    link = cpn_network.topology.link("east", "centre")
    settings = cpn_network.link_settings("east", "centre")
    assert (settings["loss_pct"], settings["delay_ms"], settings["down"]) == (link.loss_pct, link.delay_ms, False)
    cpn_sla.assert_path("u1-1", "k2-1", **EAST_TO_CENTRE)

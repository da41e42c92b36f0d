"""The fan-out's largest payloads when every service fails (issue 20: 750 rolled-back services
overflowed 256 KiB in the Map's results, States.DataLimitExceeded, which no Catch sees, and the
push ended without its summary). Computed from the rendered deploy definition (bench/payload.py,
the same model the benchmark prints): no cloud, fast."""

from __future__ import annotations

import pytest

from bench import payload

ENDINGS = sorted(payload.iteration_results())
THOUSAND = 1000


@pytest.mark.parametrize("ending", ENDINGS)
def test_an_iterations_result_is_a_few_bytes_whatever_the_names(ending: str) -> None:
    """No iteration result carries a name: the summary finds each service and its execution again."""
    short = payload.fan_out_payload(THOUSAND, ending, 1, 1)
    longest = payload.fan_out_payload(THOUSAND, ending, payload.MAX_ECS_NAME, payload.MAX_ECS_NAME)
    assert short.map_results == longest.map_results
    assert longest.map_results / THOUSAND <= 30 + payload.MAX_START_ERROR + 20, ending


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_thousand_services_that_all_end_the_same_way_fit_in_the_payload_quota(ending: str) -> None:
    """Worst case: GovCloud ARNs (the longest partition and Region), the plan's reason and its 20
    warnings as long as they can be, every service ending the same way. With cluster and service
    names of 40 characters each, the largest state and the summary's input stay under 256 KiB."""
    worst = payload.fan_out_payload(THOUSAND, ending, 40, 40)
    assert worst.largest_state < payload.QUOTA, (ending, worst)
    assert worst.summary_input < payload.QUOTA, (ending, worst)


def test_all_rolled_back_fits_with_service_arns_up_to_two_hundred_characters() -> None:
    assert payload.largest_arn_that_fits(THOUSAND, "Child rolled back") >= 200


def test_with_the_longest_names_ecs_allows_the_plans_list_is_what_limits_the_fan_out() -> None:
    """Cluster and service names of 255 characters make 566-character ARNs: the plan's own list
    of services (the Map's input) is then over the quota for 1,000 services whatever the Map
    returns; the Map's results are a small part of the largest state (an open item of the plan,
    not of the Map)."""
    longest = payload.fan_out_payload(THOUSAND, "Child rolled back")
    assert longest.arn_length == 566
    assert not longest.fits
    assert longest.map_results < 0.05 * longest.largest_state
    fits = max(n for n in range(0, THOUSAND, 10) if payload.fan_out_payload(n, "Child rolled back").fits)
    assert fits >= 400, fits

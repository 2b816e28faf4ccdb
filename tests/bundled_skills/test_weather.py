"""weather against a fake Open-Meteo (geocoding + forecast APIs) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import call_skill, failure, framed, refusal, run_skill, skill_gateway
from fakes_web import PLACES, OpenMeteo

from nexflow.skills import SkillInputInvalid


@pytest.fixture
def om() -> Iterator[OpenMeteo]:
    with OpenMeteo() as fake:
        yield fake


def grant(om: OpenMeteo) -> dict[str, str]:
    return {
        "OPEN_METEO_URL": f"{om.url}/v1/forecast",
        "OPEN_METEO_GEOCODING_URL": f"{om.url}/v1/search",
    }


async def test_place_name_current_and_forecast(workspace: Path, om: OpenMeteo) -> None:
    r = await run_skill("weather", {"place": "Berlin", "days": 2}, workspace, grant(om))
    assert r.ok and r.data is not None, r.stderr_tail
    berlin = PLACES[0]
    assert r.data["place"] == {
        "name": "Berlin",
        "region": "Land Berlin",
        "country": "Germany",
        "latitude": berlin["latitude"],
        "longitude": berlin["longitude"],
        "timezone": "Europe/Berlin",
    }
    now = OpenMeteo.celsius(berlin["latitude"], 0)
    assert r.data["units"] == {"temperature": "°C", "wind_speed": "km/h", "precipitation": "mm"}
    assert r.data["current"]["temperature"] == now
    assert r.data["current"]["weather_code"] == 3 and r.data["current"]["weather"] == "overcast"
    days = r.data["daily"]
    assert [d["date"] for d in days] == ["2026-12-05", "2026-12-06"]
    assert [d["weather"] for d in days] == ["overcast", "slight rain"]
    assert days[1]["temp_max"] == OpenMeteo.celsius(berlin["latitude"], 1) + 2
    assert r.data["summary"].startswith(f"Berlin, Germany: overcast, {now}°C")
    geo, forecast = om.requests
    assert geo.path == "/v1/search" and geo.arg("name") == "Berlin"
    assert forecast.arg("forecast_days") == "2" and forecast.arg("timezone") == "auto"
    assert forecast.arg("latitude") == str(berlin["latitude"])
    assert "weather_code" in forecast.arg("current") and "temperature_2m_max" in forecast.arg(
        "daily"
    )


async def test_coordinates_in_imperial_units_skip_geocoding(workspace: Path, om: OpenMeteo) -> None:
    payload = {"latitude": 40.71, "longitude": -74.01, "units": "imperial", "days": 1}
    r = await run_skill("weather", payload, workspace, grant(om))
    assert r.ok and r.data is not None, r.stderr_tail
    assert [s.path for s in om.requests] == ["/v1/forecast"]
    assert om.requests[0].arg("temperature_unit") == "fahrenheit"
    assert r.data["units"]["temperature"] == "°F"
    assert r.data["current"]["temperature"] == round(OpenMeteo.celsius(40.71, 0) * 9 / 5 + 32, 1)
    assert len(r.data["daily"]) == 1 and r.data["place"]["name"] == "40.7100, -74.0100"


async def test_country_after_a_comma_disambiguates(workspace: Path, om: OpenMeteo) -> None:
    r = await run_skill("weather", {"place": "Paris, United States"}, workspace, grant(om))
    assert r.ok and r.data is not None, r.stderr_tail
    assert r.data["place"]["region"] == "Texas" and len(r.data["daily"]) == 3
    assert om.requests[0].arg("name") == "Paris"
    r = await run_skill("weather", {"place": "Paris"}, workspace, grant(om))
    assert r.ok and r.data is not None and r.data["place"]["country"] == "France"


async def test_service_errors(workspace: Path, om: OpenMeteo) -> None:
    r = await run_skill("weather", {"place": "Atlantis"}, workspace, grant(om))
    assert "Open-Meteo knows no place called 'Atlantis'" in failure(r)
    om.reject = "Cannot initialize WeatherVariable from invalid String value"
    r = await run_skill("weather", {"latitude": 1, "longitude": 2}, workspace, grant(om))
    assert "forecast API answered 400: Cannot initialize WeatherVariable" in failure(r)
    om.down = True
    r = await run_skill("weather", {"latitude": 1, "longitude": 2}, workspace, grant(om))
    assert "forecast API answered 503" in failure(r)
    gone = {"OPEN_METEO_URL": "http://127.0.0.1:9/v1/forecast"}
    r = await run_skill("weather", {"latitude": 1, "longitude": 2}, workspace, gone)
    assert "connection refused" in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({}, "give 'place'"),
        ({"place": "  "}, "give 'place'"),
        ({"latitude": 91, "longitude": 0}, "'latitude' must be a number from -90 to 90"),
        ({"latitude": 10}, "'longitude' must be a number"),
        ({"place": "Berlin", "days": 8}, "'days' must be 1 to 7"),
        ({"place": "x, Germany"}, "a name of at least 2 characters"),
    ],
)
async def test_bad_input_refused(
    workspace: Path, om: OpenMeteo, payload: dict[str, object], why: str
) -> None:
    assert why in refusal(await run_skill("weather", payload, workspace, grant(om)))
    assert om.requests == []


async def test_schema_checked_before_spawn(workspace: Path, om: OpenMeteo) -> None:
    with pytest.raises(SkillInputInvalid, match="not one of"):
        await run_skill("weather", {"place": "Berlin", "units": "kelvin"}, workspace, grant(om))


async def test_weather_through_the_gateway(home: Path, om: OpenMeteo) -> None:
    async with skill_gateway(home, {"weather": grant(om)}) as gw:
        reply, tool, _ = await call_skill(gw, "weather", {"place": "Berlin", "days": 1})
        assert "Berlin, Germany: overcast" in reply["reply"]
        trust, result = framed(tool)
        assert trust == "trusted" and result["place"]["timezone"] == "Europe/Berlin"

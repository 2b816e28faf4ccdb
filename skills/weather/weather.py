"""weather: current conditions and a short forecast from Open-Meteo.

A place name is looked up with Open-Meteo's geocoding API, then the forecast API gives
the current weather and daily values. Both endpoints default to Open-Meteo's public
ones; the admin may point OPEN_METEO_URL / OPEN_METEO_GEOCODING_URL at a self-hosted
instance (they are trusted as configured).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import skillkit
import webkit

FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
TIMEOUT = 10.0
DAYS_DEFAULT = 3
DAYS_LIMIT = 7
CURRENT = (
    "temperature_2m,relative_humidity_2m,apparent_temperature,precipitation,"
    "weather_code,wind_speed_10m,wind_direction_10m"
)
DAILY = (
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,"
    "precipitation_probability_max,wind_speed_10m_max"
)
UNITS = {
    "metric": {},
    "imperial": {
        "temperature_unit": "fahrenheit",
        "wind_speed_unit": "mph",
        "precipitation_unit": "inch",
    },
}

# WMO weather interpretation codes, as Open-Meteo documents them.
CODES = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snow fall",
    73: "moderate snow fall",
    75: "heavy snow fall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


def describe_code(code: object) -> str:
    if isinstance(code, int | float) and int(code) in CODES:
        return CODES[int(code)]
    return "unknown"


def get_json(var: str, default: str, params: dict[str, Any], what: str) -> Any:
    base, policy = webkit.configured(var, default)
    url = f"{base}?{urlencode(params)}"
    resp = webkit.request(url, policy, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    if resp.status >= 400 and resp.content_type != "application/json":
        raise skillkit.Failed(f"Open-Meteo's {what} API answered {resp.status}")
    data = resp.json(f"Open-Meteo's {what} API")
    if resp.status >= 400 or (isinstance(data, dict) and data.get("error")):
        reason = data.get("reason") if isinstance(data, dict) else None
        raise skillkit.Failed(
            f"Open-Meteo's {what} API answered {resp.status}: {webkit.clip(reason or '?', 200)}"
        )
    if not isinstance(data, dict):
        raise skillkit.Failed(f"Open-Meteo's {what} API sent something other than an object")
    return data


def number(args: dict[str, Any], key: str, low: float, high: float) -> float:
    value = args.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise skillkit.Refused(f"{key!r} must be a number from {low:g} to {high:g}")
    return float(value)


def locate(args: dict[str, Any]) -> dict[str, Any]:
    if "latitude" in args or "longitude" in args:
        lat = number(args, "latitude", -90, 90)
        lon = number(args, "longitude", -180, 180)
        return {"name": f"{lat:.4f}, {lon:.4f}", "latitude": lat, "longitude": lon}
    place = args.get("place")
    if not isinstance(place, str) or not place.strip() or len(place) > 200:
        raise skillkit.Refused("give 'place' (a name, up to 200 characters) or coordinates")
    name = place.split(",")[0].strip()  # the API matches names, not "City, Country"
    if len(name) < 2:
        raise skillkit.Refused("'place' must start with a name of at least 2 characters")
    params = {"name": name, "count": 10, "language": "en", "format": "json"}
    found = get_json("OPEN_METEO_GEOCODING_URL", GEOCODING_URL, params, "geocoding")
    results = [r for r in found.get("results") or [] if isinstance(r, dict)]
    hint = place.split(",", 1)[1].strip().lower() if "," in place else ""
    if hint:  # "Paris, US": prefer a match on country or region
        results = [r for r in results if hint in _where(r).lower()] or results
    if not results:
        raise skillkit.Failed(f"Open-Meteo knows no place called {place!r}")
    top = results[0]
    coords = (top.get("latitude"), top.get("longitude"))
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords):
        raise skillkit.Failed(f"Open-Meteo sent no coordinates for {place!r}")
    return {
        "name": webkit.clip(top.get("name"), 100),
        "region": webkit.clip(top.get("admin1") or "", 100),
        "country": webkit.clip(top.get("country") or "", 100),
        "latitude": top.get("latitude"),
        "longitude": top.get("longitude"),
    }


def _where(result: dict[str, Any]) -> str:
    keys = ("admin1", "country", "country_code")
    return " ".join(str(result.get(k) or "") for k in keys)


def forecast(args: dict[str, Any]) -> dict[str, Any]:
    days = args.get("days", DAYS_DEFAULT)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= DAYS_LIMIT:
        raise skillkit.Refused(f"'days' must be 1 to {DAYS_LIMIT}")
    units = args.get("units", "metric")
    if units not in UNITS:
        raise skillkit.Refused("'units' must be 'metric' or 'imperial'")
    place = locate(args)
    params = {
        "latitude": place["latitude"],
        "longitude": place["longitude"],
        "current": CURRENT,
        "daily": DAILY,
        "timezone": "auto",
        "forecast_days": days,
        **UNITS[units],
    }
    data = get_json("OPEN_METEO_URL", FORECAST_URL, params, "forecast")
    place["timezone"] = webkit.clip(data.get("timezone") or "", 60)
    cu, du = obj(data.get("current_units")), obj(data.get("daily_units"))
    now = obj(data.get("current"))
    current = {
        "time": now.get("time"),
        "temperature": now.get("temperature_2m"),
        "feels_like": now.get("apparent_temperature"),
        "humidity": now.get("relative_humidity_2m"),
        "precipitation": now.get("precipitation"),
        "wind_speed": now.get("wind_speed_10m"),
        "wind_direction": now.get("wind_direction_10m"),
        "weather_code": now.get("weather_code"),
        "weather": describe_code(now.get("weather_code")),
    }
    out = {
        "place": place,
        "units": {
            "temperature": webkit.clip(cu.get("temperature_2m") or du.get("temperature_2m_max"), 8),
            "wind_speed": webkit.clip(cu.get("wind_speed_10m") or du.get("wind_speed_10m_max"), 8),
            "precipitation": webkit.clip(cu.get("precipitation") or du.get("precipitation_sum"), 8),
        },
        "current": current,
        "daily": daily_rows(obj(data.get("daily")), days),
    }
    out["summary"] = summary(out)
    return out


def obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def daily_rows(daily: dict[str, Any], days: int) -> list[dict[str, Any]]:
    def col(key: str) -> list[Any]:
        values = daily.get(key)
        return values if isinstance(values, list) else []

    rows = []
    for i, date in enumerate(col("time")[:days]):

        def at(key: str, i: int = i) -> Any:
            values = col(key)
            return values[i] if i < len(values) else None

        rows.append(
            {
                "date": date,
                "weather_code": at("weather_code"),
                "weather": describe_code(at("weather_code")),
                "temp_max": at("temperature_2m_max"),
                "temp_min": at("temperature_2m_min"),
                "precipitation": at("precipitation_sum"),
                "precipitation_probability": at("precipitation_probability_max"),
                "wind_max": at("wind_speed_10m_max"),
            }
        )
    return rows


def summary(out: dict[str, Any]) -> str:
    place, units, now = out["place"], out["units"], out["current"]
    where = ", ".join(p for p in (place["name"], place.get("country")) if p)
    text = f"{where}: {now['weather']}, {now['temperature']}{units['temperature']}"
    if now["feels_like"] is not None:
        text += f" (feels like {now['feels_like']}{units['temperature']})"
    if now["wind_speed"] is not None:
        text += f", wind {now['wind_speed']} {units['wind_speed']}"
    for day in out["daily"]:
        text += (
            f"; {day['date']}: {day['weather']}, {day['temp_min']}…{day['temp_max']}"
            f"{units['temperature']}"
        )
    return text


if __name__ == "__main__":
    skillkit.main("weather", forecast)

from tests.scheduling.helpers import station_env  # noqa: F401  (fixture)

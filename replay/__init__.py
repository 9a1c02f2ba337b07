"""Historical data and backtests: bar files and the cache, the replay runner, batches, reports."""

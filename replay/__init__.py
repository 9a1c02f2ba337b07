"""Historical data: loading and validation, the replay feed, the replay runner and statistics."""

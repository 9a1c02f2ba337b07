"""Live feeds: the Binance-compatible kline protocol (pure codec + aiohttp shell) and its
local simulation. Only this package talks to exchanges; everything after it is shared code."""

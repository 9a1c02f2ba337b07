"""The trading kernel: bars in, orders, fills and events out; no I/O, imports nothing but itself."""

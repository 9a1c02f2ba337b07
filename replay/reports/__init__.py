"""Pictures and pages of replay results, one module each.

``run_chart`` (one replay: price with trades, equity, drawdown), ``accounts_chart`` (the
accounts of a ``replay --config`` run), ``heatmap`` (a metric over a two-parameter grid),
``batch_page`` (a batch's ``index.html``) and ``batch_report`` (what a finished batch writes
next to its tables). ``plotting`` holds what every figure shares (the Agg canvas, the PNG
writer, colours, the UTC time axis) and ``results_table`` what the pictures read of a results
table. Presentation only: the figures come from :mod:`replay.stats`.
"""

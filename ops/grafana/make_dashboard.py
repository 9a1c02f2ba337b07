"""Generate ops/grafana/barbus.json: run `python ops/grafana/make_dashboard.py` after editing.

The panel list below is the single source of the dashboard's PromQL; tests parse the JSON and
run every expression against a real Prometheus scraping a real daemon and batch.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# (title, unit, [(expr, legend)], width)
PANELS: list[tuple[str, str, list[tuple[str, str]], int]] = [
    (
        "Bars processed / s",
        "ops",
        [
            (
                'sum by (symbol, source) (rate(barbus_bars_processed_total{job="barbus"}[$__rate_interval]))',
                "{{symbol}} {{source}}",
            ),
        ],
        12,
    ),
    (
        "Decision lag (candle received -> decision durable)",
        "s",
        [
            (
                'histogram_quantile(0.5, sum by (le) (rate(barbus_decision_lag_seconds_bucket{job="barbus"}[$__rate_interval])))',
                "p50",
            ),
            (
                'histogram_quantile(0.99, sum by (le) (rate(barbus_decision_lag_seconds_bucket{job="barbus"}[$__rate_interval])))',
                "p99",
            ),
        ],
        12,
    ),
    (
        "Feed connected, daemon ready",
        "short",
        [
            ('barbus_feed_connected{job="barbus"}', "connected {{instance}}"),
            ('barbus_ready{job="barbus"}', "ready {{instance}}"),
        ],
        6,
    ),
    (
        "Reconnects and recorded gaps",
        "short",
        [
            ('increase(barbus_feed_reconnects_total{job="barbus"}[$__range])', "reconnects"),
            ('increase(barbus_feed_gaps_total{job="barbus"}[$__range])', "gaps recorded"),
        ],
        6,
    ),
    (
        "Feed errors / s",
        "ops",
        [
            (
                'rate(barbus_feed_messages_malformed_total{job="barbus"}[$__rate_interval])',
                "malformed",
            ),
            (
                'rate(barbus_feed_messages_duplicated_total{job="barbus"}[$__rate_interval])',
                "duplicated",
            ),
            (
                'rate(barbus_feed_messages_out_of_order_total{job="barbus"}[$__rate_interval])',
                "out of order",
            ),
            (
                'rate(barbus_feed_bars_backfilled_total{job="barbus"}[$__rate_interval])',
                "backfilled",
            ),
            (
                'rate(barbus_feed_messages_unexpected_total{job="barbus"}[$__rate_interval])',
                "unexpected streams",
            ),
            (
                'sum by (reason) (rate(barbus_feed_bars_rejected_total{job="barbus"}[$__rate_interval]))',
                "rejected {{reason}}",
            ),
            (
                'sum by (symbol) (rate(barbus_bars_dropped_total{job="barbus"}[$__rate_interval]))',
                "refused by the daemon {{symbol}}",
            ),
        ],
        6,
    ),
    (
        "Strategy errors and halts",
        "short",
        [
            (
                'sum by (strategy) (barbus_bus_subscriber_errors_total{job="barbus"})',
                "errors {{strategy}}",
            ),
            ('barbus_strategy_halted{job="barbus"}', "halted {{strategy}}"),
        ],
        6,
    ),
    (
        "Equity per strategy",
        "currencyUSD",
        [('barbus_equity_quote{job="barbus"}', "{{strategy}}")],
        12,
    ),
    ("PnL per strategy", "currencyUSD", [('barbus_pnl_quote{job="barbus"}', "{{strategy}}")], 12),
    (
        "Position per strategy",
        "short",
        [('barbus_position_units{job="barbus"}', "{{strategy}}")],
        8,
    ),
    (
        "Fills / h",
        "short",
        [
            (
                'sum by (strategy, side) (increase(barbus_fills_total{job="barbus"}[1h]))',
                "{{strategy}} {{side}}",
            ),
        ],
        8,
    ),
    (
        "State write p99",
        "s",
        [
            (
                'histogram_quantile(0.99, sum by (le) (rate(barbus_state_write_seconds_bucket{job="barbus"}[$__rate_interval])))',
                "p99",
            ),
        ],
        8,
    ),
    (
        "Batch jobs",
        "short",
        [
            ('sum by (state) (barbus_batch_jobs{job="barbus-batch"})', "{{state}}"),
            (
                'sum by (status) (barbus_batch_jobs_finished_total{job="barbus-batch"})',
                "finished {{status}}",
            ),
        ],
        12,
    ),
    (
        "Replay bars / s per worker",
        "ops",
        [
            (
                'sum by (worker) (rate(barbus_replay_bars_total{job="barbus-batch"}[$__rate_interval]))',
                "worker {{worker}}",
            ),
        ],
        12,
    ),
    (
        "Cache",
        "short",
        [
            ('sum(barbus_cache_hits_total{job="barbus-batch"})', "hits"),
            ('sum(barbus_cache_misses_total{job="barbus-batch"})', "misses"),
        ],
        12,
    ),
]


def dashboard() -> dict[str, object]:
    panels = []
    x = y = 0
    for number, (title, unit, targets, width) in enumerate(PANELS, start=1):
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(
            {
                "id": number,
                "type": "timeseries",
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"x": x, "y": y, "w": width, "h": 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": DATASOURCE,
                    }
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )
        x += width
    return {
        "uid": "barbus-overview",
        "title": "barbus",
        "tags": ["barbus", "trading"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "DS_PROMETHEUS",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
            ]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("barbus.json")
    target.write_text(json.dumps(dashboard(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")

"""The process test kit: the one way tests start sims and daemons, write their config and wait.

- ``scenario``: the engines of a daemon config, the config file, the bar slice, the sim's faults;
- ``processes``: this checkout's (or an installed) ``barbus`` as child processes, a sim's port;
- ``waiting``: :func:`~tests.kit.waiting.wait_until`, the one polling loop with a timeout;
- ``probes``: HTTP answers, ``/status``, Prometheus samples of a running daemon;
- ``recorded``: what a daemon left in its state file, and the replay it must equal;
- ``notify``: systemd's end of sd_notify.
"""

"""`make bench`: speed and memory of the sync, measured side by side in one invocation.

The emulator runs in its own process (one core for it, one for the system under test). Every
case checks row counts against the emulator's truth before a time is reported. Results go to
stdout and to docs/benchmarks.md. `QUICK=1` shrinks every case for a smoke run; `CASES=...`
runs some of them (the doc is then left alone).

`harness` holds what every case shares (the emulator process, timing, peak memory, the rows and
the doc); each other module one group of cases: `throughput` (1, 3, 4), `scale` (2, 5), `pace`
(7), `history` (8 and 6) and `lake` (9).
"""

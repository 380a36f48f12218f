"""Performance measurements of csgen: how fast, how exact, how much.

``python -m benchmarks`` (or ``make bench``) runs every measure side by side
and writes ``results/latest.json`` and ``results/summary.png``; see
docs/benchmarks.md for what each measure means and how it is taken.

Modules, one per measure: ``generation`` (events per CPU second against a
naive baseline), ``delivery`` (CPU per event into a local Kinesis),
``pacing`` (achieved rate and gaps), ``control`` (the HTTP API's stop and
rate change), ``fleet`` (the operator's pause and scale on the local control
plane), ``memory`` (peak RSS with a full sink). ``measuring`` holds what they
share; ``reporting`` writes the JSON and draws the chart.

Figures are never asserted anywhere: machines differ, and these shared ones
vary from run to run. Each measure is run several times and reported as the
median, with every run kept.
"""

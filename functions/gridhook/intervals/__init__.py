"""Interval data from the store: the one place that reads and writes it for settlement,
reports and charts (the settlement core, ``gridhook.settlement``, is pure and never
touches a store).

- ``rollups``: hourly rollups of DPS samples — written by ``sample_load`` once an hour is
  complete, and by ``gridhook samples rollup`` for samples already stored; insert-if-absent,
  so concurrent and repeated runs are safe.
- ``load``: a feed's interval load over a range at a resolution, from rollups for the
  hours that have one and raw samples only for the others (the open hour), or from meter
  data where present (``source=auto|meter|samples``): O(intervals), not O(samples).
- ``readings``: what a report's and a chart's timeline draws: 5-minute means from rollups
  for complete hours, raw samples for the rest.
- ``meter``: ``gridhook meter import``: a meter file stored all or nothing, with revisions.

Nothing is imported here: ``readings`` stays free of numpy, which the others need.
"""

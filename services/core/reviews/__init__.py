"""The yearly review of each SOP a satker runs: when it falls due, the review record
the Kasubbag completes, and the performance figures that feed it."""

"""The pure heart of Alur: catalog model, time standards, calendar, state machine.

Nothing here performs I/O or reads a clock; `now` and ids are passed in.
"""

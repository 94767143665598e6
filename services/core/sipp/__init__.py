"""SOP 10: did last night's SIPP backup and synchronisation really happen?

`verify.verify_backup` runs every check (backup file, archive, dump, sync log, data probe)
and returns a verdict whose reason codes are listed in `verify`'s docstring.
"""

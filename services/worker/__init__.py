"""arq workers: the time-bound and automated steps of the SOPs."""

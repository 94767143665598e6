"""`/v1/backup-checks` and each satker's SIPP check configuration."""

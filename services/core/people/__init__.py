"""People of each satker, their roles and contacts, and acting officials (Plh/Plt)."""

"""Reports: the papers a court is judged by (SOP performance, the Monev SOP form, the
AMPUH evidence pack, the SAKIP indicators), made from what Alur recorded."""

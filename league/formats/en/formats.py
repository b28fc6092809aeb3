"""Date formats for English pages, overriding Django's only where a zone must show.

Every time the league stores is UTC (``TIME_ZONE``), and the admin lists times in the default format, which has
no zone: "T" appends it, so an admin scheduling a race reads "14:00 UTC", not a bare time that looks local.
"""

DATETIME_FORMAT = "N j, Y, P T"

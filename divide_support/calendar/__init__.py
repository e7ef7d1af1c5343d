"""Calendar invites (.ics) and feeds: RFC 5545 files built with icalendar."""

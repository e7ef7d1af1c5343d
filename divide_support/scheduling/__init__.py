"""Venues, courses, sessions, supporter assignments, registrations, attendance, visits.
Importing the package registers scheduling's answers with the areas below it: whether a
planned message about a seat or a session still applies (notices), what a follow-up's
registration or visit is (links), and giving up a seat from a call (registrations)."""

from divide_support.scheduling import links as _links  # noqa: F401
from divide_support.scheduling import notices as _notices  # noqa: F401
from divide_support.scheduling import registrations as _registrations  # noqa: F401

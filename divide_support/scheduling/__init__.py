"""Venues, courses, sessions, supporter assignments, registrations, attendance, visits.
Importing the package registers scheduling's answers with the areas below it: whether a
planned message about a seat or a session still applies (notices), and what a follow-up's
registration or visit is (links)."""

from divide_support.scheduling import links as _links  # noqa: F401
from divide_support.scheduling import notices as _notices  # noqa: F401

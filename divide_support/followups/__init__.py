"""Follow-up tasks and outcomes. Importing the package registers, with messaging, whether a
follow-up's planned message still applies (notices)."""

from divide_support.followups import notices as _notices  # noqa: F401

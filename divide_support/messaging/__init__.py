"""SMS: the outbox, planning, templates, segment counting, the dispatcher and its backends.
A lower layer: the areas a message is about hand it down (messaging.service.Occasion) and
answer whether it still applies (messaging.occasions). Importing the package has people tell
messaging when a resident's SMS details change."""

from divide_support.messaging.planning import revive_for_resident
from divide_support.people.service import when_sms_details_change

when_sms_details_change(revive_for_resident)

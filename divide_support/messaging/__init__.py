"""SMS: the outbox, planning, templates, segment counting, the dispatcher and its backends."""

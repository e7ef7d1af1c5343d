"""Paper: the monthly schedule for counters and the 回覧板, and a resident's confirmation slip."""

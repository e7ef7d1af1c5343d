"""What browsers get: security headers, static assets, GraphiQL (and later the staff console)."""

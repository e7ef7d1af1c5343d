"""The console's pages, one module an area; each exports ROUTES."""

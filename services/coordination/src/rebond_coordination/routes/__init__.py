"""The console's pages, one module per area; each route only translates (form in, a store use
case or a port call, a page out)."""

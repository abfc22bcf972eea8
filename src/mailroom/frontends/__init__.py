"""Protocol front-ends: each unpacks a request, calls the runner and packs the result."""

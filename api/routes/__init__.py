"""One router per resource; each route is thin: parse, call the engine, shape the response."""

"""esafety: an event-driven case engine for a children's charity's e-safety policy."""

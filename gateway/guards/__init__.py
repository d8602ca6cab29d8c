"""Before (and around) execution: operation limits, the cost estimate, trusted documents and
persisted queries, who may introspect, rate limits, and execution within a time budget."""

"""The stores in one process's memory, for unit tests; `memory_store.memory_stores` builds them."""

"""One replication at run time: the batch engine, ramp policy and operations."""

"""Applying chunks: the processor, the writer processes, the one transaction, the failure
policy and the parking of chunks waiting for a retry."""

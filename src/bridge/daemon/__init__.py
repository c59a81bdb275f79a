"""The long-running service: scheduled cycles per tracker, leases shared by replicas, health and metrics."""

"""Kafka client details that Faust and aiokafka leave to us."""

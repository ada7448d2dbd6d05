"""What Sluice puts on Kafka: the Avro codec, chunk records and progress events."""
